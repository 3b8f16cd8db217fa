#include "config/lint.h"

#include "config/errors.h"
#include "config/schema.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- parts that are never used ------------------------------------------------------------ */

static bool authority_covers(const struct ml_cfg_route *a, const struct ml_cfg_route *b)
{
    if (a->authority == NULL || strcmp(a->authority, "*") == 0) {
        return true;
    }
    /* Only the same glob is known to match the same hosts: a superset check of two globs would
     * need more than a warning is worth, and a false "never matches" is worse than none. */
    return b->authority != NULL && strcmp(a->authority, b->authority) == 0;
}

static bool path_covers(const struct ml_cfg_route *a, const struct ml_cfg_route *b)
{
    const char *bp = b->path != NULL ? b->path : b->prefix;

    if (a->path == NULL && a->prefix == NULL) {
        return true;
    }
    if (a->path != NULL) {
        return b->path != NULL && strcmp(a->path, b->path) == 0;
    }
    return bp != NULL && strncmp(bp, a->prefix, strlen(a->prefix)) == 0;
}

/* Every header a asks for, b asks for too (the same value, or a asks only for presence). */
static bool headers_cover(const struct ml_cfg_route *a, const struct ml_cfg_route *b)
{
    for (uint32_t i = 0; i < a->n_headers; i++) {
        const struct ml_cfg_header_match *ha = &a->headers[i];
        bool found = false;

        for (uint32_t j = 0; j < b->n_headers && !found; j++) {
            const struct ml_cfg_header_match *hb = &b->headers[j];

            found = strcmp(ha->name, hb->name) == 0 &&
                    (ha->value == NULL || (hb->value != NULL && strcmp(ha->value, hb->value) == 0));
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

/* true when a matches every call b matches (routes are tried in file order). */
static bool route_covers(const struct ml_cfg_route *a, const struct ml_cfg_route *b)
{
    return a->listener == b->listener && authority_covers(a, b) && path_covers(a, b) &&
           headers_cover(a, b);
}

int ml_config_lint_unused(const struct ml_snapshot *s, struct ml_config_errors *warn)
{
    int rv = 0;

    for (uint32_t c = 0; c < s->n_clusters && rv == 0; c++) {
        bool used = false;

        for (uint32_t r = 0; r < s->n_routes && !used; r++) {
            for (uint32_t k = 0; k < s->routes[r].n_split && !used; k++) {
                used = s->routes[r].split[k].cluster == (int)c;
            }
        }
        if (!used) {
            rv = ml_config_errors_add(warn, s->clusters[c].line,
                                      "warning: [cluster %s]: no route sends calls to it",
                                      s->clusters[c].name);
        }
    }
    for (uint32_t l = 0; l < s->n_listeners && rv == 0; l++) {
        bool used = false;

        for (uint32_t r = 0; r < s->n_routes && !used; r++) {
            used = s->routes[r].listener == (int)l;
        }
        if (!used) {
            rv = ml_config_errors_add(warn, s->listeners[l].line,
                                      "warning: [listener %s]: no route is attached to it: every "
                                      "call it accepts is refused",
                                      s->listeners[l].name);
        }
    }
    for (uint32_t b = 0; b < s->n_routes && rv == 0; b++) {
        for (uint32_t a = 0; a < b; a++) {
            if (route_covers(&s->routes[a], &s->routes[b])) {
                rv = ml_config_errors_add(
                    warn, s->routes[b].line,
                    "warning: [route %s]: never matches: [route %s] (line %d) comes first on "
                    "listener %s and matches every call it would",
                    s->routes[b].name, s->routes[a].name, s->routes[a].line,
                    s->routes[b].listener_name);
                break;
            }
        }
    }
    return rv;
}

/* ---- paths the node needs ----------------------------------------------------------------- */

/* What the user running the check may judge: as root it sees what the node (root by default)
 * sees; as the owner of a path, it is likely the user the node runs as. Another user's path may
 * well be fine for the node's user. */
static bool may_judge(const struct stat *st)
{
    return geteuid() == 0 || st->st_uid == geteuid();
}

static const char *kind_name(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISREG(m)  ? "a regular file"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
                         : "not a file";
}

/* path's directory: everything before its last '/' ("/" for "/x", "." for "x"). */
static void parent_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

/* path is missing: the node makes it (state_dir: one directory; access_log: the file) in its
 * parent, which must be a directory it can write. */
static int lint_parent(const char *key, int line, const char *path, struct ml_config_errors *errs,
                       struct ml_config_errors *warn)
{
    char parent[PATH_MAX];
    struct stat st;

    parent_of(path, parent, sizeof(parent));
    if (stat(parent, &st) < 0) {
        if (errno == ENOTDIR || errno == ELOOP) {
            return ml_config_errors_add(errs, line,
                                        "[node] %s: expected a path through directories, got "
                                        "\"%s\": %s",
                                        key, path, strerror(errno));
        }
        if (errno == ENOENT) {
            return ml_config_errors_add(geteuid() == 0 ? errs : warn, line,
                                        "%s[node] %s: expected the directory %s to exist "
                                        "(meshlet makes %s, not its parent), got nothing there",
                                        geteuid() == 0 ? "" : "warning: ", key, parent, path);
        }
        return 0; /* EACCES and the like: the node's user may see more */
    }
    if (!S_ISDIR(st.st_mode)) {
        return ml_config_errors_add(errs, line, "[node] %s: expected %s in a directory, got %s %s",
                                    key, path, parent, kind_name(st.st_mode));
    }
    if (access(parent, W_OK | X_OK) < 0 && (errno == EROFS || may_judge(&st))) {
        return ml_config_errors_add(errs, line,
                                    "[node] %s: expected %s to be made in %s, got %s there", key,
                                    path, parent, strerror(errno));
    }
    return 0;
}

static int lint_path(const char *key, int line, const char *path, bool want_dir,
                     struct ml_config_errors *errs, struct ml_config_errors *warn)
{
    struct stat st;
    bool kind_ok;

    if (stat(path, &st) < 0) {
        if (errno == ENOENT) {
            return lint_parent(key, line, path, errs, warn);
        }
        if (errno == ENOTDIR || errno == ELOOP) {
            return ml_config_errors_add(errs, line,
                                        "[node] %s: expected a path through directories, got "
                                        "\"%s\": %s",
                                        key, path, strerror(errno));
        }
        return 0;
    }
    /* A character device (/dev/null, a console) takes an access log as well as a file does. */
    kind_ok = want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) || S_ISCHR(st.st_mode);
    if (!kind_ok) {
        return ml_config_errors_add(errs, line, "[node] %s: expected %s, got %s %s", key,
                                    want_dir ? "a directory" : "a regular file", path,
                                    kind_name(st.st_mode));
    }
    if (access(path, want_dir ? W_OK | X_OK : W_OK) < 0 && (errno == EROFS || may_judge(&st))) {
        return ml_config_errors_add(errs, line, "[node] %s: expected %s writable, got %s", key,
                                    path, strerror(errno));
    }
    return 0;
}

int ml_config_lint_paths(const struct ml_snapshot *s, struct ml_config_errors *errs,
                         struct ml_config_errors *warn)
{
    int line = s->bootstrap_line[ML_K_node_state_dir];
    int rv;

    rv = lint_path("state_dir", line != 0 ? line : s->node.line, s->node.state_dir, true, errs,
                   warn);
    if (rv == 0 && s->node.access_log == ML_CFG_ACCESS_LOG_FILE) {
        line = s->bootstrap_line[ML_K_node_access_log];
        rv = lint_path("access_log", line != 0 ? line : s->node.line, s->node.access_log_path,
                       false, errs, warn);
    }
    return rv;
}
