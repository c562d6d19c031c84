/* fileio: read-only memory maps of model files, and whole-file reads of small text
 * files (config.json, tokenizer.json, suites, plans).
 *
 *     struct qb_map map;
 *     if ((rc = qb_map_open(path, &map)) < 0) return rc;   // message names the path
 *     ... map.data[0 .. map.size) ...
 *     qb_map_close(&map);
 *
 * An empty file maps to data == NULL, size == 0. Every input is opened through
 * qb_open_regular: a path that names a directory, a FIFO, a device or a socket is refused
 * with a message naming it (a FIFO without a writer would block the open, /dev/zero would
 * never end), and a size limit is checked against the file's size before any byte is read. */
#ifndef QB_FILEIO_H
#define QB_FILEIO_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

struct qb_map {
    const unsigned char *data; /* borrowed from the kernel; valid until qb_map_close */
    size_t size;
};

int qb_map_open(const char *path, struct qb_map *out);
void qb_map_close(struct qb_map *map); /* no-op on a zeroed map */

/* Reads the whole file into a NUL-terminated malloc'd buffer (caller frees). Refuses
 * files larger than max_bytes with a message naming the path, before reading them. */
int qb_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* What a stat mode names, for messages: "a directory", "a FIFO", "a character device" ... */
const char *qb_file_kind(mode_t m);

/* Opens path read-only (O_CLOEXEC) and checks that it is a regular file; anything else is
 * QB_EIO naming what it is. Never blocks on a FIFO. *fd is the caller's to close; size (may
 * be NULL) receives the file's size in bytes. */
int qb_open_regular(const char *path, int *fd /* out */, size_t *size /* out */);
/* The same as a stdio stream opened "rb"; *out is the caller's to fclose. */
int qb_fopen_regular(const char *path, FILE **out /* out */, size_t *size /* out */);

/* sha256 (64 hex digits + NUL) of a regular file's bytes, read in pieces; QB_EIO naming it. */
int qb_file_sha256(const char *path, char out[65]);

/* Joins dir and name with a '/' into a malloc'd string (NULL when out of memory). */
char *qb_path_join(const char *dir, const char *name);

/* 1 when path is a directory, 0 otherwise. */
int qb_is_dir(const char *path);

#endif
