/* The admin HTTP endpoint ([node] admin): a home page, health, readiness, stats, the running
 * config.
 *
 *   GET /                   the admin page (HTML, compiled in: admin/page.c); it polls the two
 *                           JSON endpoints below
 *   GET /server_info        JSON: id, version, board, features, start time, uptime, config
 *                           version and source, the last apply's result
 *   GET /stats.json         every counter as one JSON object (the page's)
 *   GET /healthz            200 "ok" while the process serves HTTP at all
 *   GET /ready              200 once the config is applied and every listener is bound, else 503
 *   GET /stats              every counter as "name value" lines (text/plain)
 *   GET /stats/prometheus   the same in Prometheus' text exposition format 0.0.4
 *   GET /config             the running INI, after a "# version: V" line; also in the
 *                           X-Meshlet-Config-Version header
 *   POST /config            the body is a whole INI: applied like a push (node/apply.c); 200
 *                           "version: V", or 400 with the error lines ("push:LINE: ..."), or
 *                           413 over CONFIG_ML_MAX_CONFIG_BYTES, 503 when nothing applies
 *   GET /clusters           every cluster's endpoints: health, ejection, calls (admin/clusters.h);
 *                           ?format=json for JSON
 *   GET /fleet              the control plane as this node sees it (text)
 *   anything else           404 (405 for another method)
 * HEAD is answered wherever GET is: the same status and headers, no body.
 *
 * Before any of it, every request passes admin/guard.h's checks: one Content-Length of digits and
 * no Transfer-Encoding (else 400), no Origin (403), a Host naming this endpoint (421), and with
 * [node] admin_token the bearer token, but for /healthz and /ready (401). At most
 * CONFIG_ML_ADMIN_MAX_CONNECTIONS connections at once (more are closed when accepted); one idle
 * for CONFIG_ML_ADMIN_IDLE_TIMEOUT_S is closed.
 *
 * A libwebsockets HTTP server vhost on the one loop. The stats are streamed (chunked), rendered
 * a piece at a time as the socket takes them: no size bound, whatever the clusters and
 * endpoints; other responses are small and built whole. */
#ifndef ML_ADMIN_ADMIN_H
#define ML_ADMIN_ADMIN_H

#include "core/loop-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_admin;
struct ml_proxy;
struct ml_stats;

/* Starts the endpoint on the [node] admin address of proxy's snapshot (proxy borrowed: it must
 * outlive the admin, or be replaced with ml_admin_set_proxy first). admin = off, or a build
 * without CONFIG_ML_ADMIN: 0 and *out = NULL (nothing listens). Otherwise 0 and *out, or
 * -EADDRINUSE, -EADDRNOTAVAIL, -EACCES (the bind failed; why says so: exit 3), -ENOMEM. */
int ml_admin_new(struct ml_loop *loop, struct ml_proxy *proxy, char *why, size_t cap,
                 struct ml_admin **out);
/* Stops listening; requests in progress are dropped. NULL is a no-op. */
void ml_admin_free(struct ml_admin *a);

/* What the node adds to the endpoint (node/node.c). user is passed back to every hook.
 * apply: POST /config's body text[0..n) (borrowed for the call); the node answers later, once,
 *   with ml_admin_apply_done(a, token, ...).
 * render_stats: appends the node's own counters to /stats (prometheus false) and
 *   /stats/prometheus (true): the length written, or -ENOBUFS when out[0..cap) is too small.
 * render_fleet: the body of GET /fleet, the same way. */
struct ml_admin_node_info;
struct ml_admin_hooks {
    void (*apply)(void *user, const char *text, size_t n, unsigned int token);
    long (*render_stats)(void *user, bool prometheus, char *out, size_t cap);
    long (*render_fleet)(void *user, bool prometheus, char *out, size_t cap);
    /* node_info: fills what /server_info, the page and meshlet_config_info say of the node
     * (strings borrowed until the next turn of the loop). NULL: the snapshot's id and version,
     * source "unknown". */
    void (*node_info)(void *user, struct ml_admin_node_info *out);
    /* [node] workers > 1 (node/workers.h): stats, a new reference to the table /stats,
     * /stats.json and /stats/prometheus render (every worker's counters summed; NULL: out of
     * memory); clusters, the body of GET /clusters (as admin/clusters.h ml_admin_clusters).
     * NULL hooks: the proxy's own. */
    struct ml_stats *(*stats)(void *user);
    long (*clusters)(void *user, bool json, char **body);
};

/* The node as /server_info shows it (admin/info.c). */
enum ml_admin_apply_result { ML_ADMIN_APPLY_NONE = 0, ML_ADMIN_APPLY_OK, ML_ADMIN_APPLY_REFUSED };
struct ml_admin_node_info {
    const char *id;
    const char *config_version;
    /* where the running config came from: "file" (the local file), "state_dir" (the last one
     * applied, read at start), "admin" (POST /config), "fleet" (a push) */
    const char *config_source;
    uint64_t uptime_ms;
    unsigned int workers; /* [node] workers running (event loops); 0 is taken as 1 */
    /* the last apply, whatever its source: none yet, applied or refused (with its lines) */
    enum ml_admin_apply_result last_apply;
    const char *last_apply_source; /* "SIGHUP", "POST /config", "push" */
    const char *last_apply_version;
    const char *last_apply_error; /* the error lines of a refusal; "" otherwise */
    uint64_t last_apply_unix_ms;  /* wall clock */
};
void ml_admin_set_hooks(struct ml_admin *a, const struct ml_admin_hooks *hooks, void *user);

/* The answer to the POST /config of token: status and a text body (copied). Dropped when that
 * connection is gone. NULL a: a no-op. */
void ml_admin_apply_done(struct ml_admin *a, unsigned int token, unsigned int status,
                         const char *body);

/* The proxy whose state the endpoint shows from now on (a new configuration; NULL: not ready). */
void ml_admin_set_proxy(struct ml_admin *a, struct ml_proxy *proxy);

#endif
