/* memfile: hands fuzzer bytes to a loader that takes a path, through an anonymous in-memory
 * file (memfd) named /proc/self/fd/N, so no harness writes to the disk. */
#ifndef QB_FUZZ_MEMFILE_H
#define QB_FUZZ_MEMFILE_H

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Returns the fd (close it after use) and writes the path into path; -1 on failure. */
static int memfile(const void *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("qbfuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return -1;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
