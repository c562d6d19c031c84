/* outfile: the one place that opens, writes and replaces a brief's output file, so that it is
 * written the way careful tools write (docs: README.md, "Output files"):
 *
 *   - "-" is stdout; any other path must be, or become, a regular file: a device (/dev/null),
 *     a FIFO, a socket or a folder is refused with a pointer to `-o -`;
 *   - a symbolic link is followed: the file it points to is replaced and the link stays; a
 *     dangling link is refused, as cp(1) refuses it;
 *   - an existing file must belong to this user and be writable by them (root included: a
 *     read-only file of another user in a shared folder is not replaced); it keeps its
 *     permission bits and group (0600 stays 0600); a new file gets 0666 less the umask;
 *   - the bytes go to an unnamed O_TMPFILE in the target's folder, which is synced, linked
 *     under a temporary name (OUT.tmpXXXXXX) and renamed over the target only when complete:
 *     a failure, or a kill while writing, leaves the old file intact and nothing beside it.
 *     Where the filesystem has no O_TMPFILE the temporary is named from the start; the
 *     handlers of qb_brief_catch_signals remove it (and the Markdown's temporary chart folder)
 *     when the process is interrupted.
 *
 * Every step that writes (create, each write(2), fsync, link, rename) first asks io_step(),
 * which the test hook of qb_brief_set_io_fault can fail with an errno of its choice. */
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "output/brief_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- fault injection */

/* The test hook (qb_brief_set_io_fault). A global because the writers sit several calls below
 * qb_brief_render and tests must reach every step without a parameter on each call, as
 * SQLite's test VFS does; unset (NULL) outside tests. */
static int (*io_fault)(void *ctx, enum qb_brief_io step);
static void *io_fault_ctx;

void qb_brief_set_io_fault(int (*fail)(void *ctx, enum qb_brief_io step), void *ctx)
{
    io_fault = fail;
    io_fault_ctx = ctx;
}

/* 0 to go on, else the errno the step fails with (set in errno too). */
int brief_io_step(enum qb_brief_io step)
{
    int e = io_fault ? io_fault(io_fault_ctx, step) : 0;
    if (e)
        errno = e;
    return e;
}

/* ---------------------------------------------------------------- temporaries to remove on a
 * signal */

/* Temporaries on disk while a brief is written: at most the .md's or .pdf's own and the
 * Markdown's chart folder. Fixed buffers, so that the signal handler reads them without
 * allocating; `used` is set last and cleared first. */
enum { N_TEMPS = 4 };
static struct {
    volatile sig_atomic_t used;
    int is_dir;
    char path[PATH_MAX];
} temps[N_TEMPS];

int brief_temp_register(const char *path, int is_dir)
{
    size_t n = strlen(path);
    for (int i = 0; i < N_TEMPS; i++)
        if (!temps[i].used && n < sizeof temps[i].path) {
            memcpy(temps[i].path, path, n + 1);
            temps[i].is_dir = is_dir;
            temps[i].used = 1;
            return i;
        }
    return -1; /* not kept: only the clean-up on a signal misses it */
}

void brief_temp_forget(int slot)
{
    if (slot >= 0 && slot < N_TEMPS)
        temps[slot].used = 0;
}

/* Empties and removes dir with async-signal-safe calls only (open, getdents64, unlinkat). */
static void remove_dir_now(const char *dir)
{
    char buf[4096];
    long n;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    while ((n = (long)getdents64(fd, buf, sizeof buf)) > 0)
        for (long off = 0; off < n;) {
            struct dirent64 *e = (struct dirent64 *)(buf + off);
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(fd, e->d_name, 0);
            off += e->d_reclen;
        }
    close(fd);
    rmdir(dir);
}

static void remove_temps(void)
{
    for (int i = N_TEMPS - 1; i >= 0; i--)
        if (temps[i].used) {
            temps[i].used = 0;
            if (temps[i].is_dir)
                remove_dir_now(temps[i].path);
            else
                unlink(temps[i].path);
        }
}

static void on_signal(int sig)
{
    int e = errno;
    remove_temps();
    errno = e;
    raise(sig); /* SA_RESETHAND restored the default: the process dies of sig as before */
}

void qb_brief_catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ};
    struct sigaction sa, old;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) /* nohup stays */
            sigaction(sigs[i], &sa, NULL);
}

/* ---------------------------------------------------------------- opening */

/* o->path: the file to replace, symlinks followed. A dangling link is refused. */
static int resolve(struct brief_out *o)
{
    struct stat st;
    if (lstat(o->shown, &st) != 0 || !S_ISLNK(st.st_mode)) {
        o->path = g_strdup(o->shown);
        return 0;
    }
    char *real = realpath(o->shown, NULL);
    if (!real && stat(o->shown, &st) == 0 && !S_ISREG(st.st_mode)) /* /dev/stdout to a pipe */
        return qb_err(QB_EIO,
                      "cannot write '%s': it leads to %s, not a regular file (-o - writes to "
                      "stdout)",
                      o->shown, qb_file_kind(st.st_mode));
    if (!real) {
        int e = errno;
        char *to = g_file_read_link(o->shown, NULL);
        int rc = qb_err(QB_EIO, "cannot write '%s': it is a symbolic link to '%s', %s", o->shown,
                        to ? to : "?", e == ENOENT ? "which does not exist" : strerror(e));
        g_free(to);
        return rc;
    }
    o->path = g_strdup(real);
    free(real);
    return 0;
}

/* The target, if it exists, is a regular file of this user that they may write. */
static int check_target(struct brief_out *o, struct stat *st, int *exists)
{
    *exists = 0;
    if (stat(o->path, st) != 0) {
        if (errno == ENOENT)
            return 0;
        return qb_err(QB_EIO, "cannot write '%s': %s", o->shown, strerror(errno));
    }
    *exists = 1;
    if (!S_ISREG(st->st_mode))
        return qb_err(QB_EIO,
                      "cannot write '%s': it is %s, not a regular file (-o - writes to stdout)",
                      o->shown, qb_file_kind(st->st_mode));
    if (st->st_uid != geteuid())
        return qb_err(QB_EIO,
                      "cannot write '%s': it belongs to another user (uid %u); remove it or write "
                      "elsewhere",
                      o->shown, (unsigned)st->st_uid);
    if (!(st->st_mode & S_IWUSR))
        return qb_err(QB_EIO, "cannot write '%s': it is read-only", o->shown);
    return 0;
}

/* A named temporary beside o->path, created with mode 0666 (less the umask). */
static int open_named(struct brief_out *o)
{
    o->tmp = brief_fmt("%s.tmpXXXXXX", o->path);
    if (brief_io_step(QB_BRIEF_IO_CREATE) ||
        (o->fd = g_mkstemp_full(o->tmp, O_WRONLY | O_CLOEXEC, 0666)) < 0) {
        int rc = qb_err(QB_EIO, "cannot write '%s': %s", o->shown, strerror(errno));
        g_free(o->tmp);
        o->tmp = NULL;
        return rc;
    }
    o->slot = brief_temp_register(o->tmp, 0);
    return 0;
}

/* An unnamed O_TMPFILE in o->path's folder; 1 when the filesystem (or the kernel, or a
 * missing /proc to link it through) has none: the caller falls back to a named one. */
static int open_anon(struct brief_out *o)
{
    char *dir = g_path_get_dirname(o->path);
    int e = 0;
    if (access("/proc/self/fd", X_OK) != 0)
        e = EOPNOTSUPP;
    else if (!(e = brief_io_step(QB_BRIEF_IO_CREATE)) &&
             (o->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666)) < 0)
        e = errno;
    g_free(dir);
    if (!e) {
        o->anon = 1;
        return 0;
    }
    o->fd = -1;
    if (e == EOPNOTSUPP || e == EISDIR || e == EINVAL)
        return 1;
    return qb_err(QB_EIO, "cannot write '%s': %s", o->shown, strerror(e));
}

int brief_out_open(struct brief_out *o, const char *path)
{
    struct stat st;
    int rc, exists;

    *o = (struct brief_out)BRIEF_OUT_INIT;
    o->shown = path;
    if (!strcmp(path, "-")) {
        o->fd = STDOUT_FILENO;
        return 0;
    }
    if ((rc = resolve(o)) < 0 || (rc = check_target(o, &st, &exists)) < 0 ||
        (rc = open_anon(o)) < 0 || (rc == 1 && (rc = open_named(o)) < 0))
        goto fail;
    if (exists) {
        /* the old file's permissions and group; a failed chown keeps ours */
        if (fchmod(o->fd, st.st_mode & 0777) != 0) {
            rc = qb_err(QB_EIO, "cannot write '%s': %s", o->shown, strerror(errno));
            goto fail;
        }
        if (st.st_gid != getegid() && fchown(o->fd, (uid_t)-1, st.st_gid) != 0)
            errno = 0;
    }
    return 0;
fail:
    brief_out_close(o);
    return rc;
}

/* ---------------------------------------------------------------- writing */

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        if (brief_io_step(QB_BRIEF_IO_WRITE))
            return -1;
        ssize_t w = write(fd, c, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int brief_out_write(struct brief_out *o, const void *p, size_t n)
{
    if (o->fd < 0)
        return qb_err(QB_EIO, "cannot write '%s': not open", o->shown);
    if (n && write_all(o->fd, p, n) < 0)
        return qb_err(QB_EIO, "cannot write '%s': %s", o->shown, strerror(errno));
    return 0;
}

int brief_write_new_file(const char *path, const void *p, size_t n)
{
    int fd = -1, rc = 0;
    if (brief_io_step(QB_BRIEF_IO_CREATE) ||
        (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)) < 0)
        return qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (write_all(fd, p, n) < 0)
        rc = qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (close(fd) != 0 && rc >= 0)
        rc = qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno));
    return rc;
}

/* ---------------------------------------------------------------- replacing */

/* Removes the temporary and closes the file; o->path stays for messages. */
static void discard(struct brief_out *o)
{
    if (o->tmp) {
        unlink(o->tmp);
        brief_temp_forget(o->slot);
        o->slot = -1;
        g_free(o->tmp);
        o->tmp = NULL;
    }
    if (o->path && o->fd >= 0)
        close(o->fd);
    o->fd = -1;
}

/* Links the O_TMPFILE under a free OUT.tmpXXXXXX name (through /proc: AT_EMPTY_PATH would
 * need CAP_DAC_READ_SEARCH). */
static int link_anon(struct brief_out *o)
{
    static const char az[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char proc[64];
    int e = 0;
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", o->fd);
    for (int tries = 0; tries < 100; tries++) {
        g_free(o->tmp);
        o->tmp = brief_fmt("%s.tmpXXXXXX", o->path);
        char *x = o->tmp + strlen(o->tmp) - 6;
        for (int i = 0; i < 6; i++)
            x[i] = az[g_random_int_range(0, (gint32)sizeof az - 1)];
        if (brief_io_step(QB_BRIEF_IO_LINK))
            break;
        o->slot = brief_temp_register(o->tmp, 0); /* before the name exists: no window */
        if (linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        e = errno;
        brief_temp_forget(o->slot);
        o->slot = -1;
        if (e != EEXIST)
            break;
    }
    int rc = qb_err(QB_EIO, "cannot write '%s': %s", o->shown, strerror(e ? e : errno));
    g_free(o->tmp);
    o->tmp = NULL;
    return rc;
}

int brief_out_commit(struct brief_out *o)
{
    int rc = 0;
    if (!o->path || o->committed) /* stdout, or done already */
        return 0;
    if (o->fd < 0)
        return qb_err(QB_EIO, "cannot write '%s': not open", o->shown);
    if (brief_io_step(QB_BRIEF_IO_SYNC) || fsync(o->fd) != 0) {
        rc = qb_err(QB_EIO, "cannot write '%s': %s", o->shown, strerror(errno));
        goto fail;
    }
    if (o->anon && (rc = link_anon(o)) < 0)
        goto fail;
    if (brief_io_step(QB_BRIEF_IO_RENAME) || rename(o->tmp, o->path) != 0) {
        rc = qb_err(QB_EIO, "cannot write '%s': %s", o->shown, strerror(errno));
        goto fail;
    }
    brief_temp_forget(o->slot);
    o->slot = -1;
    g_free(o->tmp);
    o->tmp = NULL;
    close(o->fd);
    o->fd = -1;
    o->committed = 1;
    return 0;
fail:
    discard(o);
    return rc;
}

void brief_out_close(struct brief_out *o)
{
    discard(o);
    g_free(o->path);
    o->path = NULL;
}
