/* fileio: mmap and whole-file reads with messages that name the file (see fileio.h). */
#include "kernels/base/fileio.h"

#include "kernels/base/err.h"

#include <errno.h>
#include <glib.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *qb_file_kind(mode_t m)
{
    return S_ISREG(m)    ? "a regular file"
           : S_ISDIR(m)  ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "something else";
}

int qb_open_regular(const char *path, int *fd_out, size_t *size)
{
    struct stat st;
    int fd, flags;

    *fd_out = -1;
    if (size)
        *size = 0;
    /* O_NONBLOCK: opening a FIFO that has no writer returns at once instead of waiting for
     * one; it is cleared below and changes nothing for a regular file */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return qb_err(QB_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return qb_err(QB_EIO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return qb_err(QB_EIO, "'%s': is %s, not a regular file", path, qb_file_kind(st.st_mode));
    }
    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return qb_err(QB_EIO, "cannot open '%s': %s", path, strerror(e));
    }
    if ((uintmax_t)st.st_size > SIZE_MAX) {
        close(fd);
        return qb_err(QB_EIO, "'%s': too large for this machine (%lld bytes)", path,
                      (long long)st.st_size);
    }
    if (size)
        *size = (size_t)st.st_size;
    *fd_out = fd;
    return 0;
}

int qb_fopen_regular(const char *path, FILE **out, size_t *size)
{
    int fd, rc;

    *out = NULL;
    if ((rc = qb_open_regular(path, &fd, size)) < 0)
        return rc;
    if (!(*out = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        return qb_err(QB_EIO, "cannot open '%s': %s", path, strerror(e));
    }
    return 0;
}

int qb_map_open(const char *path, struct qb_map *out)
{
    size_t size;
    int fd, rc;

    out->data = NULL;
    out->size = 0;
    if ((rc = qb_open_regular(path, &fd, &size)) < 0)
        return rc;
    if (size > 0) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return qb_err(QB_EIO, "cannot map '%s': %s", path, strerror(e));
        }
        out->data = p;
        out->size = size;
    }
    close(fd);
    return 0;
}

void qb_map_close(struct qb_map *map)
{
    /* readers see the pages as const; munmap takes the address as mmap gave it */
    union {
        const unsigned char *ro;
        void *addr;
    } m = {.ro = map->data};
    if (m.addr)
        munmap(m.addr, map->size);
    map->data = NULL;
    map->size = 0;
}

int qb_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len)
{
    char *buf = NULL;
    size_t cap, len = 0, size;
    int fd = -1, rc;

    *out = NULL;
    if ((rc = qb_open_regular(path, &fd, &size)) < 0)
        return rc;
    if (size > max_bytes) {
        rc = qb_err(QB_EFORMAT, "'%s': %zu bytes, larger than %zu bytes", path, size, max_bytes);
        goto fail;
    }
    /* the size at open, plus room to notice a file that grows (or a /proc file that says 0) */
    cap = size + 4097;
    for (;;) {
        ssize_t got;
        if (len + 1 >= cap) {
            size_t ncap = cap * 2;
            char *nb;
            if (len > max_bytes) {
                rc = qb_err(QB_EFORMAT, "'%s': larger than %zu bytes", path, max_bytes);
                goto fail;
            }
            if (max_bytes < SIZE_MAX - 2 && ncap > max_bytes + 2)
                ncap = max_bytes + 2; /* enough to see one byte past the limit */
            if (!(nb = realloc(buf, ncap))) {
                rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        } else if (!buf && !(buf = malloc(cap))) {
            rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
            goto fail;
        }
        got = read(fd, buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = qb_err(QB_EIO, "cannot read '%s': %s", path, strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (len > max_bytes) {
        rc = qb_err(QB_EFORMAT, "'%s': larger than %zu bytes", path, max_bytes);
        goto fail;
    }
    close(fd);
    buf[len] = 0;
    *out = buf;
    if (out_len)
        *out_len = len;
    return 0;
fail:
    free(buf);
    close(fd);
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

int qb_file_sha256(const char *path, char out[65])
{
    FILE *f = NULL;
    int rc = qb_fopen_regular(path, &f, NULL); /* a FIFO or device would never end */
    if (rc < 0)
        return rc;
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        g_checksum_update(ck, buf, (gssize)n);
    if (ferror(f))
        rc = qb_err(QB_EIO, "'%s': read error", path);
    else
        g_strlcpy(out, g_checksum_get_string(ck), 65);
    fclose(f);
    g_checksum_free(ck);
    return rc;
}
