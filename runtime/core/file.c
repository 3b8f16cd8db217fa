#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include "core/alloc.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int ml_file_read_all(const char *path, size_t max_bytes, char **buf_out, size_t *size_out)
{
    struct stat st;
    size_t n = 0;
    char *buf;
    int fd, rv;

    *buf_out = NULL;
    *size_out = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) < 0) {
        rv = -errno;
        goto fail_fd;
    }
    if (S_ISDIR(st.st_mode)) {
        rv = -EISDIR;
        goto fail_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        rv = -EINVAL;
        goto fail_fd;
    }
    if ((size_t)st.st_size > max_bytes) {
        *size_out = (size_t)st.st_size;
        rv = -EFBIG;
        goto fail_fd;
    }
    buf = ml_malloc(max_bytes + 1);
    if (buf == NULL) {
        rv = -ENOMEM;
        goto fail_fd;
    }
    /* Read up to one byte past the cap: a file that grew since fstat is still refused. */
    for (;;) {
        ssize_t got = read(fd, buf + n, max_bytes + 1 - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            rv = -errno;
            goto fail_buf;
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
        if (n > max_bytes) {
            *size_out = n;
            rv = -EFBIG;
            goto fail_buf;
        }
    }
    close(fd);
    buf[n] = '\0';
    *buf_out = buf;
    *size_out = n;
    return 0;

fail_buf:
    ml_free(buf);
fail_fd:
    close(fd);
    return rv;
}
