/* node/-private: the node object shared by node.c (start, run, stop) and apply.c (the one path
 * of every new configuration). */
#ifndef ML_NODE_NODE_INT_H
#define ML_NODE_NODE_INT_H

#include "config/store.h"
#include "core/list-t.h"
#include "core/loop-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_snapshot;
struct ml_proxy;
struct ml_admin;
struct ml_fleet_client;
struct ml_notify;
struct ml_workers;

/* Applies that may wait behind the one in progress; more are refused ("busy"). */
#define ML_NODE_MAX_QUEUED_APPLIES 4
/* The last Nack's error kept for the admin endpoint (the protocol's own cut). */
#define ML_NODE_LAST_ERROR_BYTES 4096

enum ml_apply_source {
    ML_APPLY_FILE,  /* SIGHUP: the local file again */
    ML_APPLY_ADMIN, /* POST /config */
    ML_APPLY_PUSH,  /* the fleet controller */
};

struct ml_apply_job;

struct ml_node {
    struct ml_loop *loop;
    const char *config_path;
    char *state_dir;            /* from the local file at start (ml_malloc) */
    struct ml_snapshot *snap;   /* the config in force (a reference) */
    struct ml_proxy *proxy;     /* worker 0's */
    struct ml_workers *workers; /* workers 1..N-1 ([node] workers); NULL: one worker */
    struct ml_admin *admin;          /* NULL: admin = off */
    struct ml_fleet_client *fleet;   /* NULL: no [fleet] in the running config */
    struct ml_notify *notify;        /* NULL: no service manager to tell (core/notify.h) */
    uint64_t started_ms;

    struct ml_list queue;            /* struct ml_apply_job waiting, FIFO */
    uint32_t n_queued;
    struct ml_apply_job *current;    /* being applied; NULL: idle */
    const struct ml_store_ops *store_ops; /* NULL: the real syscalls */

    /* counters (/stats: node_*, fleet_*) */
    uint64_t applies_total;
    uint64_t apply_failures_total;
    uint64_t fleet_nacks_total;
    char last_nack_version[129];
    char last_nack_error[ML_NODE_LAST_ERROR_BYTES + 1];

    /* for the admin's /server_info and page (admin/admin.h struct ml_admin_node_info) */
    const char *config_source; /* "file", "state_dir", "admin", "fleet": static strings */
    int last_apply;            /* enum ml_admin_apply_result */
    const char *last_apply_source;
    char last_apply_version[129];
    char last_apply_error[ML_NODE_LAST_ERROR_BYTES + 1];
    uint64_t last_apply_unix_ms;
};

/* Keeps what the last apply did, for the admin: rv 0 applied version, else refused with error. */
void ml_node_note_apply(struct ml_node *node, enum ml_apply_source src, int rv, const char *version,
                        const char *error);

/* Queues an apply of text[0..n) (copied). version: the push's, NULL for a local one. For a push,
 * nonce is echoed in its answer; for POST /config, token is the admin's request to answer. The
 * answer goes out when the apply is done (apply.c). */
void ml_node_apply(struct ml_node *node, enum ml_apply_source src, const char *text, size_t n,
                   const char *version, uint64_t nonce, uint32_t token);
/* Ends what is queued or in progress (at stop): a save in progress is waited for, its result is
 * dropped, nothing is answered. */
void ml_node_apply_shutdown(struct ml_node *node);

/* The version the Hello names: "" when the local file runs (runtime/fleet/README.md). */
const char *ml_node_hello_version(const struct ml_node *node);

#endif
