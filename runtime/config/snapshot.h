/* Loading a configuration into an immutable snapshot, and holding on to it.
 *
 * The path of every config, whatever brings it (the file at start, SIGHUP, POST /config, a fleet
 * push): text → ml_config_load_text() → a new snapshot with refcount 1, or the error lines. */
#ifndef ML_CONFIG_SNAPSHOT_H
#define ML_CONFIG_SNAPSHOT_H

#include "config/errors-t.h"
#include "config/snapshot-t.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>

/* Checks and builds a snapshot from text[0..n) (need not be NUL-terminated; it is copied).
 * version: the controller's version for a push, or NULL for a local config ("local-" and the
 * first 12 hex digits of the text's SHA-256). On 0, *out holds a new reference. Otherwise *out is
 * NULL and errs holds why: -EINVAL the config is invalid (one error per line), -EILSEQ the text is
 * not text (a NUL byte, bad UTF-8), -EFBIG larger than CONFIG_ML_MAX_CONFIG_BYTES, -ENOMEM. */
int ml_config_load_text(const char *text, size_t n, const char *version,
                        struct ml_config_errors *errs, struct ml_snapshot **out);

/* Where a text comes from. A remote one (a fleet push, POST /config) may not name the node's
 * bootstrap, and its [node] files are not read: a controller or admin client must not learn from
 * the answer whether a path exists on the node or what it holds (the refusal of the key says all
 * there is to say). The merged text, with the node's own [node], is then loaded as local. */
enum ml_config_origin {
    ML_CONFIG_LOCAL,
    ML_CONFIG_REMOTE,
};

/* ml_config_load_text for a text of the given origin. */
int ml_config_load_text_from(const char *text, size_t n, const char *version,
                             enum ml_config_origin origin, struct ml_config_errors *errs,
                             struct ml_snapshot **out);

/* The same for a file; errors that keep it from being read (-ENOENT, -EACCES, -EISDIR, -EFBIG,
 * -EILSEQ, ...) come back as that code with one line-0 error in errs saying why. */
int ml_config_load_file(const char *path, struct ml_config_errors *errs,
                        struct ml_snapshot **out);

/* ml_config_load_file, with every error printed on err as config/README.md says ("FILE:LINE: ...",
 * and a line for running out of memory before any error was found). Returns its code. */
int ml_config_load_file_print(const char *path, FILE *err, struct ml_snapshot **out);

/* true for the codes of ml_config_load_file that mean "could not be read" (exit 2), as opposed to
 * "read and found invalid" (-EINVAL, exit 1). */
static inline int ml_config_load_unreadable(int rv)
{
    return rv < 0 && rv != -EINVAL;
}

struct ml_snapshot *ml_snapshot_ref(struct ml_snapshot *s);
/* Drops a reference; the last one frees the snapshot and everything it owns. NULL is a no-op. */
void ml_snapshot_unref(struct ml_snapshot *s);

/* "1 listener, 2 routes, 3 clusters, 5 endpoints" into buf. */
void ml_snapshot_summary(const struct ml_snapshot *s, char *buf, size_t cap);

#endif
