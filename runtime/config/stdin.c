#include "config/stdin.h"

#include "config/errors.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "meshlet_config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int ml_config_load_fd(int fd, struct ml_config_errors *errs, struct ml_snapshot **out)
{
    size_t cap = CONFIG_ML_MAX_CONFIG_BYTES, n = 0;
    char *buf;
    int rv;

    *out = NULL;
    /* One byte past the cap tells "too large" from "exactly the cap"; a pipe has no size to
     * look at first. */
    if ((buf = ml_malloc(cap + 1)) == NULL) {
        return -ENOMEM;
    }
    for (;;) {
        ssize_t got = read(fd, buf + n, cap + 1 - n);

        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            rv = -errno;
            ml_config_errors_add(errs, 0, "cannot read: %s", strerror(-rv));
            goto out;
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
        if (n > cap) {
            rv = -EFBIG;
            ml_config_errors_add(errs, 0,
                                 "expected at most %d bytes (CONFIG_ML_MAX_CONFIG_BYTES), got more",
                                 CONFIG_ML_MAX_CONFIG_BYTES);
            goto out;
        }
    }
    rv = ml_config_load_text(buf, n, NULL, errs, out);
out:
    ml_free(buf);
    return rv;
}
