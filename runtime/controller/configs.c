/* The watched configuration directory: each INI file is stat'ed at every poll and read again only
 * when what stat says changed (device, inode, size, mtime or ctime), so a controller with many
 * nodes re-hashes only the files that were edited. A file is offered to nodes only when it can
 * be read, fits in one fleet message, and checks as a meshlet configuration: a node would nack
 * anything else, so the controller says why in its log instead of pushing it. */
#include "controller/controller_int.h"

#include "config/errors.h"
#include "config/snapshot.h"
#include "core/file.h"
#include "core/log.h"
#include "core/sha256.h"
#include "meshlet_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Room in a Push envelope besides the INI: tags, lengths, the version and the nonce. */
#define PUSH_OVERHEAD_BYTES 64
/* The error lines quoted in the log when a file does not check. */
#define LOGGED_ERRORS_BYTES 1024

int ml_ctl_file_init(struct ml_ctl_file *f, const char *dir, const char *name)
{
    int n;

    memset(f, 0, sizeof(*f));
    n = snprintf(f->path, sizeof(f->path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(f->path)) {
        return -ENAMETOOLONG;
    }
    f->error = -ENOENT;
    f->name = strrchr(f->path, '/') + 1;
    return 0;
}

static void drop_content(struct ml_ctl_file *f)
{
    free(f->ini); /* ml_file_read_all's buffer: free() */
    f->ini = NULL;
    f->n = 0;
    f->version[0] = '\0';
}

void ml_ctl_file_deinit(struct ml_ctl_file *f)
{
    drop_content(f);
    ml_ctl_rev_clear(&f->ro.stable);
    ml_ctl_rev_clear(&f->ro.target);
    ml_ctl_rev_clear(&f->ro.previous);
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Checks f->ini as a configuration and logs the first error lines when it does not check. A file
 * that does not check here is still pushed: the node is the judge (its build may have features
 * this one lacks, its files are where it runs), it nacks with its own lines, and the Nack is what
 * `GET /fleet` and the fleet protocol show per node; the node keeps its config either way, and a
 * staged rollout halts at its first stage. Only -ENOMEM keeps the file back. */
static int check(struct ml_ctl_file *f)
{
    struct ml_config_errors errs;
    struct ml_snapshot *snap = NULL;
    char lines[LOGGED_ERRORS_BYTES];
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_text((const char *)f->ini, f->n, f->version, &errs, &snap);
    if (rv == 0) {
        ml_snapshot_unref(snap);
    } else if (rv == -ENOMEM) {
        ML_LOG_ERR("configs: %s: out of memory while checking it: not pushed", f->path);
    } else {
        ml_config_errors_sort(&errs);
        ml_config_errors_join(&errs, f->path, lines, sizeof(lines));
        for (char *c = lines; *c != '\0'; c++) {
            if (*c == '\n') {
                *c = ' '; /* one log line per event */
            }
        }
        ML_LOG_WRN("configs: %s (version %s) does not check here, pushed anyway (each node checks "
                   "it and nacks what it refuses): %s",
                   f->path, f->version, lines);
        rv = 0;
    }
    ml_config_errors_deinit(&errs);
    return rv;
}

/* Reads and checks the file; sets f->error, f->ini and f->version. */
static void load(struct ml_ctl_file *f)
{
    size_t max_bytes = ml_ctl_msg_max_bytes() - PUSH_OVERHEAD_BYTES - ML_CTL_TEXT_MAX;
    char *text = NULL;
    size_t n = 0;
    int rv;

    if (max_bytes > CONFIG_ML_MAX_CONFIG_BYTES) {
        max_bytes = CONFIG_ML_MAX_CONFIG_BYTES;
    }
    drop_content(f);
    rv = ml_file_read_all(f->path, max_bytes, &text, &n);
    if (rv == -EFBIG) {
        ML_LOG_ERR("configs: %s: %zu bytes, over the %zu a push can carry: not pushed", f->path, n,
                   max_bytes);
    } else if (rv < 0) {
        ML_LOG_ERR("configs: %s: cannot read it (%s): not pushed", f->path, strerror(-rv));
    }
    if (rv < 0) {
        f->error = rv;
        return;
    }
    f->ini = (uint8_t *)text;
    f->n = n;
    ml_sha256_hex(text, n, f->version, ML_CTL_VERSION_HEX);
    if ((f->error = check(f)) < 0) {
        drop_content(f);
        return;
    }
    ML_LOG_INF("configs: %s: version %s (%zu bytes)", f->path, f->version, n);
}

bool ml_ctl_file_refresh(struct ml_ctl_file *f)
{
    char old_version[sizeof(f->version)];
    int old_error = f->error;
    struct stat st;

    memcpy(old_version, f->version, sizeof(old_version));
    if (stat(f->path, &st) != 0) {
        bool was = f->present;

        if (errno != ENOENT && errno != ENOTDIR && (!f->seen || was)) {
            ML_LOG_ERR("configs: %s: %s", f->path, strerror(errno));
        }
        f->seen = true;
        f->present = false;
        f->error = -ENOENT;
        drop_content(f);
        if (was) {
            ML_LOG_INF("configs: %s is gone", f->path);
        }
        return was;
    }
    if (f->seen && f->present && st.st_dev == f->dev && st.st_ino == f->ino &&
        st.st_size == f->size && same_time(&st.st_mtim, &f->mtime) &&
        same_time(&st.st_ctim, &f->ctime)) {
        return false;
    }
    f->seen = true;
    f->present = true;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = st.st_size;
    f->mtime = st.st_mtim;
    f->ctime = st.st_ctim;
    load(f);
    return f->error != old_error || strcmp(f->version, old_version) != 0;
}
