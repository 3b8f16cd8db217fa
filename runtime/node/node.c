/* node/node.h: start, run and stop the node; the glue between the fleet client, the admin
 * endpoint, SIGHUP and the apply path (node/apply.c). */
#include "node/node.h"

#include "admin/admin.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "config/store.h"
#include "core/alloc.h"
#include "core/build_info.h"
#include "core/file.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/notify.h"
#include "core/stats.h"
#include "core/timer.h"
#include "fleet/client.h"
#include "node/merge.h"
#include "node/node_int.h"
#include "node/workers.h"
#include "proxy/obs.h"
#include "proxy/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit codes of config/README.md. */
enum {
    EXIT_USABLE = 0,
    EXIT_INVALID = 1,
    EXIT_UNREADABLE = 2,
    EXIT_CANNOT_START = 3,
};

/* Loads path; on failure prints every error on stderr and returns the exit code. */
static int load_file(const char *path, struct ml_snapshot **out)
{
    int rv = ml_config_load_file_print(path, stderr, out);

    if (rv == 0) {
        return EXIT_USABLE;
    }
    return rv == -EINVAL ? EXIT_INVALID : EXIT_UNREADABLE;
}

/* state_dir must exist (it is made if missing), belong to us alone and take a file: the node
 * keeps its last good config there, written as root, read at start (config/store.h). Returns 0
 * or -errno, with the reason on stderr. */
static int check_state_dir(const char *dir)
{
    char why[256];
    int rv = ml_config_store_check_dir(NULL, dir, why, sizeof(why));

    if (rv < 0) {
        fprintf(stderr, "meshlet: state_dir %s: %s\n", dir, why);
    }
    return rv;
}

/* [node] and [fleet] come from the local file only (runtime/fleet/README.md): the saved config
 * runs with the local file's, as it is now (it may have changed since the save). On success
 * *saved is replaced; on error it is unreferenced and errs says why. */
static int with_local_bootstrap(const struct ml_snapshot *local, const char *version,
                                struct ml_config_errors *errs, struct ml_snapshot **saved)
{
    struct ml_snapshot *rebased = NULL;
    char *text = NULL;
    size_t n = 0;
    int rv;

    if ((rv = ml_node_merge_bootstrap(local, *saved, &text, &n)) == 0 && text != NULL) {
        rv = ml_config_load_text(text, n, version, errs, &rebased);
    }
    ml_free(text);
    if (rv < 0 || rebased != NULL) {
        ml_snapshot_unref(*saved);
        *saved = rebased;
    }
    return rv;
}

/* runtime/fleet/README.md "Which configuration runs": a fleet-managed node (the local file has
 * [fleet]) runs the config saved in state_dir if there is a good one; otherwise, and for a node
 * without [fleet], the local file. *snap is the local file's on entry and what runs on return; true
 * when that is the saved config. */
static bool choose_config(const char *path, const char *state_dir, struct ml_snapshot **snap)
{
    char version[ML_CONFIG_STORE_VERSION_MAX + 1];
    struct ml_config_errors errs;
    struct ml_snapshot *saved;
    char *text;
    size_t n;
    bool saved_runs = false;
    int rv;

    if (!(*snap)->fleet.present) {
        ML_LOG_INF("config: using %s (no [fleet]: the local file is what runs)", path);
        return false;
    }
    rv = ml_config_store_load(NULL, state_dir, version, &text, &n);
    if (rv == -ENOENT) {
        ML_LOG_INF("config: using %s (fleet-managed, nothing saved in %s yet)", path, state_dir);
        return false;
    }
    if (rv < 0) {
        ML_LOG_WRN("config: the config saved in %s cannot be used (%s): using %s", state_dir,
                   ml_config_store_strerror(rv), path);
        return false;
    }
    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, n, version, &errs, &saved);
    if (rv == 0) {
        rv = with_local_bootstrap(*snap, version, &errs, &saved);
    }
    if (rv < 0) {
        char lines[1024];
        ml_config_errors_join(&errs, "state", lines, sizeof(lines));
        ML_LOG_WRN("config: the config saved in %s (version %s) is not valid for this build: "
                   "using %s instead:\n%s",
                   state_dir, version, path, lines);
    } else {
        ML_LOG_INF("config: using the last applied config from %s (version %s), not %s "
                   "(fleet-managed; --reset-state discards it)",
                   state_dir, version, path);
        ml_snapshot_unref(*snap);
        *snap = saved;
        saved_runs = true;
    }
    ml_config_errors_deinit(&errs);
    ml_free(text);
    return saved_runs;
}

/* ---- the fleet client's hooks ---------------------------------------------------------------- */

static void on_push(void *user, const char *version, uint64_t nonce, const char *ini, size_t n)
{
    ml_node_apply(user, ML_APPLY_PUSH, ini, n, version, nonce, 0);
}

static void fill_report(void *user, struct ml_fleet_report *r)
{
    struct ml_node *node = user;

    r->config_version = node->snap->version;
    r->uptime_s = (ml_time_now_ms() - node->started_ms) / 1000;
    if (node->workers != NULL) {
        struct ml_stats *sum = ml_workers_stats_sum(node->workers, node->proxy);
        ml_stats_totals(sum, &r->calls_total, &r->calls_failed);
        ml_stats_free(sum);
    } else {
        ml_stats_totals(ml_proxy_stats(node->proxy), &r->calls_total, &r->calls_failed);
    }
    /* healthy: not taken out by active health checks (an unchecked endpoint counts) */
    ml_proxy_endpoints(node->proxy, &r->endpoints_healthy, &r->endpoints_total);
}

/* The client nacked a push whose version is not one: counted and shown like any other Nack. */
static void on_push_refused(void *user, const char *version, uint64_t nonce, const char *error)
{
    struct ml_node *node = user;

    (void)nonce;
    node->fleet_nacks_total++;
    snprintf(node->last_nack_version, sizeof(node->last_nack_version), "%s", version);
    snprintf(node->last_nack_error, sizeof(node->last_nack_error), "%s", error);
}

static const struct ml_fleet_client_ops fleet_ops = {
    .on_push = on_push,
    .fill_report = fill_report,
    .on_push_refused = on_push_refused,
};

static void start_fleet(struct ml_node *node)
{
    const char *const *f = ml_build_features();
    struct ml_fleet_identity id = {
        .node_id = node->snap->node.id,
        .board = ml_build_board(),
        .version = ml_build_version(),
        .features = f,
        .labels = node->snap->node.label,
        .n_labels = node->snap->node.n_labels,
    };
    char why[256];

    while (f[id.n_features] != NULL) {
        id.n_features++;
    }
    if (ml_fleet_client_new(node->loop, &node->snap->fleet, &id, ml_node_hello_version(node),
                            &fleet_ops, node, why, sizeof(why), &node->fleet) < 0) {
        /* the data plane runs without its controller (runtime/fleet/README.md) */
        ML_LOG_ERR("fleet: the control-plane client cannot start: %s", why);
        node->fleet = NULL;
    }
}

/* ---- the admin endpoint's hooks -------------------------------------------------------------- */

static void on_post_config(void *user, const char *text, size_t n, unsigned int token)
{
    ml_node_apply(user, ML_APPLY_ADMIN, text, n, NULL, 0, token);
}

/* [node] workers > 1: each worker's own share, "worker.K.NAME value" (Prometheus:
 * meshlet_worker_NAME{worker="K"}), beside the sums the rest of /stats shows. */
static long render_worker_rows(struct ml_node *node, bool prometheus, char *out, size_t cap)
{
    static const struct {
        const char *name, *type, *help;
    } kinds[] = {
        {"downstream_cx_total", "counter", "downstream connections this worker accepted"},
        {"downstream_cx_active", "gauge", "downstream connections open on this worker"},
        {"calls_total", "counter", "calls ended on this worker"},
    };
    unsigned int n = ml_workers_count(node->workers);
    size_t len = 0;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        int w = 0;

        if (prometheus) {
            w = snprintf(out + len, cap - len,
                         "# HELP meshlet_worker_%s %s\n# TYPE meshlet_worker_%s %s\n",
                         kinds[i].name, kinds[i].help, kinds[i].name, kinds[i].type);
            if (w < 0 || (size_t)w >= cap - len) {
                return -ENOBUFS;
            }
            len += (size_t)w;
        }
        for (unsigned int k = 0; k < n; k++) {
            uint64_t v[3];

            ml_workers_totals(node->workers, node->proxy, k, &v[0], &v[1], &v[2]);
            w = prometheus
                    ? snprintf(out + len, cap - len, "meshlet_worker_%s{worker=\"%u\"} %llu\n",
                               kinds[i].name, k, (unsigned long long)v[i])
                    : snprintf(out + len, cap - len, "worker.%u.%s %llu\n", k, kinds[i].name,
                               (unsigned long long)v[i]);
            if (w < 0 || (size_t)w >= cap - len) {
                return -ENOBUFS;
            }
            len += (size_t)w;
        }
    }
    return (long)len;
}

/* Appends "name value" lines (or Prometheus' format) for what the node itself counts. */
static long render_node_stats(void *user, bool prometheus, char *out, size_t cap)
{
    struct ml_node *node = user;
    const struct ml_fleet_client_counters *fc =
        node->fleet != NULL ? ml_fleet_client_counters(node->fleet) : NULL;
    static const struct ml_fleet_client_counters none;
    struct {
        const char *name, *type, *help;
        uint64_t value;
    } rows[] = {
        {"config_applies_total", "counter", "configurations applied (push, SIGHUP, POST /config)",
         node->applies_total},
        {"config_apply_failures_total", "counter", "configurations refused, nothing changed",
         node->apply_failures_total},
        {"fleet_nacks_total", "counter", "pushes nacked", node->fleet_nacks_total},
        {"fleet_connected", "gauge", "1 while the controller connection is up",
         fc != NULL && fc->connected},
        {"fleet_connect_attempts_total", "counter", "connections to the controller tried",
         (fc ? fc : &none)->connect_attempts},
        {"fleet_connects_total", "counter", "connections to the controller made",
         (fc ? fc : &none)->connects},
        {"fleet_connect_failures_total", "counter", "connection attempts that failed",
         (fc ? fc : &none)->connect_failures},
        {"fleet_disconnects_total", "counter", "connections to the controller lost",
         (fc ? fc : &none)->disconnects},
        {"fleet_protocol_errors_total", "counter",
         "undecodable or oversized envelopes (connection closed)",
         (fc ? fc : &none)->protocol_errors},
        {"fleet_unknown_kinds_total", "counter", "envelopes of an unknown kind (ignored)",
         (fc ? fc : &none)->unknown_kinds},
        {"fleet_pushes_total", "counter", "pushes received", (fc ? fc : &none)->pushes},
        {"fleet_acks_total", "counter", "acks sent", (fc ? fc : &none)->acks},
    };
    size_t len = 0;
    long rows_n;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int w;
        if (prometheus) {
            w = snprintf(out + len, cap - len, "# HELP meshlet_%s %s\n# TYPE meshlet_%s %s\nmeshlet_%s %llu\n",
                         rows[i].name, rows[i].help, rows[i].name, rows[i].type, rows[i].name,
                         (unsigned long long)rows[i].value);
        } else {
            w = snprintf(out + len, cap - len, "%s %llu\n", rows[i].name,
                         (unsigned long long)rows[i].value);
        }
        if (w < 0 || (size_t)w >= cap - len) {
            return -ENOBUFS;
        }
        len += (size_t)w;
    }
    if (node->workers != NULL) {
        if ((rows_n = render_worker_rows(node, prometheus, out + len, cap - len)) < 0) {
            return rows_n;
        }
        len += (size_t)rows_n;
    }
    return (long)len;
}

/* GET /fleet on the node: the control plane as this node sees it. */
static long render_fleet(void *user, bool prometheus, char *out, size_t cap)
{
    struct ml_node *node = user;
    const struct ml_fleet_client_counters *fc =
        node->fleet != NULL ? ml_fleet_client_counters(node->fleet) : NULL;
    int w;

    (void)prometheus;
    w = snprintf(out, cap,
                 "fleet: %s\nconnected: %s\nconfig_version: %s\nhello_config_version: %s\n"
                 "nacks: %llu\nlast_nack_version: %s\nlast_nack_error:\n%s%s",
                 node->snap->fleet.present ? node->snap->fleet.url : "off",
                 fc != NULL && fc->connected ? "yes" : "no", node->snap->version,
                 ml_node_hello_version(node), (unsigned long long)node->fleet_nacks_total,
                 node->last_nack_version, node->last_nack_error,
                 node->last_nack_error[0] != '\0' ? "\n" : "");
    return w < 0 || (size_t)w >= cap ? -ENOBUFS : (long)w;
}

static void node_info(void *user, struct ml_admin_node_info *out)
{
    struct ml_node *node = user;

    out->id = node->snap->node.id;
    out->config_version = node->snap->version;
    out->config_source = node->config_source != NULL ? node->config_source : "file";
    out->uptime_ms = ml_time_now_ms() - node->started_ms;
    out->workers = ml_workers_count(node->workers);
    out->last_apply = (enum ml_admin_apply_result)node->last_apply;
    out->last_apply_source = node->last_apply_source != NULL ? node->last_apply_source : "";
    out->last_apply_version = node->last_apply_version;
    out->last_apply_error = node->last_apply_error;
    out->last_apply_unix_ms = node->last_apply_unix_ms;
}

static struct ml_stats *workers_stats(void *user)
{
    struct ml_node *node = user;

    return ml_workers_stats_sum(node->workers, node->proxy);
}

static long workers_clusters(void *user, bool json, char **body)
{
    struct ml_node *node = user;

    return ml_workers_clusters(node->workers, node->proxy, json, body);
}

static const struct ml_admin_hooks admin_hooks = {
    .apply = on_post_config,
    .render_stats = render_node_stats,
    .render_fleet = render_fleet,
    .node_info = node_info,
};

/* [node] workers > 1: the same, with /stats and /clusters summed over the workers. */
static const struct ml_admin_hooks admin_hooks_workers = {
    .apply = on_post_config,
    .render_stats = render_node_stats,
    .render_fleet = render_fleet,
    .node_info = node_info,
    .stats = workers_stats,
    .clusters = workers_clusters,
};

/* ---- SIGHUP ---------------------------------------------------------------------------------- */

static void on_sighup(void *user, int sig)
{
    struct ml_node *node = user;
    char *text;
    size_t n;
    int rv;

    (void)sig;
    ML_LOG_INF("SIGHUP: re-reading %s", node->config_path);
    if ((rv = ml_file_read_all(node->config_path, CONFIG_ML_MAX_CONFIG_BYTES, &text, &n)) < 0) {
        node->apply_failures_total++;
        ML_LOG_WRN("SIGHUP: %s: cannot read it: %s; the running config (version %s) stays",
                   node->config_path, strerror(-rv), node->snap->version);
        return;
    }
    ml_node_apply(node, ML_APPLY_FILE, text, n, NULL, 0, 0);
    ml_free(text);
}

/* ---- run ------------------------------------------------------------------------------------- */

int ml_node_run(const struct ml_node_options *o)
{
    struct ml_node node = {.config_path = o->config_path};
    char summary[160], why[256];
    int rv, code = EXIT_CANNOT_START;
    bool from_state;

    ml_list_init(&node.queue);
    if ((rv = load_file(o->config_path, &node.snap)) != EXIT_USABLE) {
        return rv;
    }
    ml_log_level = node.snap->node.log_level;
    ml_log_target_set(node.snap->node.log_target);
    if (check_state_dir(node.snap->node.state_dir) < 0) {
        ml_snapshot_unref(node.snap);
        return EXIT_CANNOT_START;
    }
    if ((node.state_dir = ml_malloc(strlen(node.snap->node.state_dir) + 1)) == NULL) {
        ml_snapshot_unref(node.snap);
        return EXIT_CANNOT_START;
    }
    strcpy(node.state_dir, node.snap->node.state_dir);
    if (o->reset_state) {
        if ((rv = ml_config_store_reset(NULL, node.state_dir)) < 0) {
            fprintf(stderr, "meshlet: --reset-state: cannot remove the config saved in %s: %s\n",
                    node.state_dir, strerror(-rv));
            goto out;
        }
        ML_LOG_INF("config: --reset-state: the config saved in %s is discarded", node.state_dir);
    }
    from_state = choose_config(o->config_path, node.state_dir, &node.snap);
    node.config_source = from_state ? "state_dir" : "file";
    ml_log_level = node.snap->node.log_level;
    node.started_ms = ml_time_now_ms();
    ml_loop_set_count(node.snap->node.workers);
    if ((node.loop = ml_loop_new()) == NULL) {
        goto out;
    }
    if (ml_proxy_new(node.loop, node.snap, why, sizeof(why), &node.proxy) < 0) {
        fprintf(stderr, "meshlet: %s\n", why);
        goto out;
    }
    /* the other workers bind the same listeners (SO_REUSEPORT): any failure fails the start */
    if (ml_workers_new(node.snap, node.snap->node.workers, why, sizeof(why), &node.workers) < 0) {
        fprintf(stderr, "meshlet: %s\n", why);
        goto out;
    }
    if (ml_admin_new(node.loop, node.proxy, why, sizeof(why), &node.admin) < 0) {
        fprintf(stderr, "meshlet: %s\n", why);
        goto out;
    }
    ml_admin_set_hooks(node.admin, node.workers != NULL ? &admin_hooks_workers : &admin_hooks,
                       &node);
    if (ml_loop_watch_signal(node.loop, SIGHUP, on_sighup, &node) < 0) {
        ML_LOG_WRN("SIGHUP cannot be watched: a changed file needs a restart or POST /config");
    }
    if (node.snap->fleet.present) {
        start_fleet(&node);
    }
    ml_snapshot_summary(node.snap, summary, sizeof(summary));
    ML_LOG_INF("node %s: running %s%s (version %s): %s", node.snap->node.id,
               from_state ? "the config saved in " : "", from_state ? node.state_dir : o->config_path,
               node.snap->version, summary);
    if ((rv = ml_notify_new(node.loop, &node.notify)) < 0) {
        ML_LOG_WRN("NOTIFY_SOCKET: cannot tell the service manager we are ready: %s",
                   strerror(-rv));
    }
    if ((rv = ml_workers_start(node.workers)) < 0) {
        fprintf(stderr, "meshlet: workers: cannot start their threads: %s\n", strerror(-rv));
        goto out;
    }
    ml_notify_ready(node.notify);
    rv = ml_loop_run(node.loop);
    ml_notify_stopping(node.notify);
    if (rv == 0 && ml_loop_signal(node.loop) == SIGTERM && node.snap->node.drain_timeout_ms > 0) {
        /* Drain: GOAWAY everywhere, calls in flight finish (within drain_timeout); a second
         * SIGTERM or SIGINT ends the wait. The control plane stops first: no apply mid-drain. */
        ml_fleet_client_free(node.fleet);
        node.fleet = NULL;
        ml_node_apply_shutdown(&node);
        ml_workers_drain(node.workers, node.snap->node.drain_timeout_ms);
        ml_proxy_drain(node.proxy, node.snap->node.drain_timeout_ms);
        rv = ml_loop_run(node.loop);
        if (rv == 0 && ml_loop_signal(node.loop) == 0) {
            ml_workers_wait(node.workers); /* the others drain within the same timeout */
        }
    }
    code = rv < 0 ? EXIT_CANNOT_START : EXIT_USABLE;

out:
    /* Stop: what is left of the connections and calls ends now. */
    ml_fleet_client_free(node.fleet);
    if (node.proxy != NULL) {
        ml_node_apply_shutdown(&node);
    }
    ml_admin_free(node.admin);
    ml_workers_free(node.workers);
    ml_proxy_free(node.proxy);
    ml_notify_free(node.notify);
    ml_loop_free(node.loop);
    ml_snapshot_unref(node.snap);
    ml_free(node.state_dir);
    if (code == EXIT_USABLE) {
        ML_LOG_INF("stopped");
    }
    return code;
}
