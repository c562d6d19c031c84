/* fileio: mmap and whole-file reads with messages that name the file (see fileio.h). */
#include "kernels/base/fileio.h"

#include "kernels/base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int qb_map_open(const char *path, struct qb_map *out)
{
    struct stat st;
    int fd;

    out->data = NULL;
    out->size = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qb_err(QB_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return qb_err(QB_EIO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return qb_err(QB_EIO, "'%s': is a directory", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return qb_err(QB_EIO, "cannot map '%s': %s", path, strerror(e));
        }
        out->data = p;
        out->size = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void qb_map_close(struct qb_map *map)
{
    /* readers see the pages as const; munmap takes the address as mmap gave it */
    union { const unsigned char *ro; void *addr; } m = {.ro = map->data};
    if (m.addr)
        munmap(m.addr, map->size);
    map->data = NULL;
    map->size = 0;
}

int qb_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = 0;

    *out = NULL;
    f = fopen(path, "rb");
    if (!f)
        return qb_err(QB_EIO, "cannot open '%s': %s", path, strerror(errno));
    for (;;) {
        size_t got;
        if (len + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb;
            if (len > max_bytes) {
                rc = qb_err(QB_EFORMAT, "'%s': larger than %zu bytes", path, max_bytes);
                goto fail;
            }
            nb = realloc(buf, ncap);
            if (!nb) {
                rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = qb_err(QB_EIO, "cannot read '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (len > max_bytes) {
        rc = qb_err(QB_EFORMAT, "'%s': larger than %zu bytes", path, max_bytes);
        goto fail;
    }
    fclose(f);
    buf[len] = 0;
    *out = buf;
    if (out_len)
        *out_len = len;
    return 0;
fail:
    free(buf);
    fclose(f);
    return rc;
}

char *qb_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

int qb_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
