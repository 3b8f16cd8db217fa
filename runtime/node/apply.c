/* The one path of every new configuration (runtime/fleet/README.md "Which configuration runs"),
 * whatever brings it — a fleet push, SIGHUP, POST /config — one at a time, in order:
 *
 *   1. check: the text is parsed and validated completely (ml_config_load_text); a push whose
 *      version is the one running is answered at once, nothing re-applied; a push or POST is
 *      made whole with our [node] and [fleet] (node/merge.c: the bootstrap comes from the local
 *      file only) and refused if it sets any of their keys to another value;
 *   2. prepare: new listener binds are made, clusters built (ml_proxy_prepare), on every worker
 *      ([node] workers, node/workers.h) — a bind that fails on any ends the apply here, the
 *      others' prepares are undone, nothing changed;
 *   3. save: the text and version go to state_dir atomically (ml_config_store_save), on a worker
 *      thread because fsync may take long on flash and the data plane never waits; a save that
 *      fails undoes the prepare;
 *   4. commit: every worker's proxy switches (calls in flight finish on the old config), the
 *      fleet client learns the new version and [fleet], then the answer goes out: Ack, 200, or
 *      a log line.
 *
 * Any failure is answered with the reason (a Nack, a 400, a log line) and leaves everything that
 * ran running. Who owns what: the node owns each job from ml_node_apply until apply_finish; a job
 * owns its text copy, its snapshot reference and its prepared change. */
#include "node/node_int.h"

#include "admin/admin.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "config/store.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "fleet/client.h"
#include "node/merge.h"
#include "node/workers.h"
#include "proxy/proxy.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The error text of one apply: the config's error lines, or one line saying why. */
#define APPLY_ERROR_BYTES 4096

struct ml_apply_job {
    struct ml_list node; /* in node->queue while queued */
    struct ml_node *owner;
    enum ml_apply_source src;
    char version[ML_CONFIG_STORE_VERSION_MAX + 1]; /* a push's; "" for a local apply */
    uint64_t nonce;                                /* a push's */
    uint32_t token;                                /* POST /config's request */
    /* the failure is of this moment, not of the config (a bind, a save): the Nack says so, so
     * the controller may push the same version again later (fleet.proto Nack.transient) */
    bool transient;
    char *text; /* the text to check, then to save (ml_malloc) */
    size_t n;
    struct ml_snapshot *next;       /* checked (a reference) */
    struct ml_proxy_change *change; /* prepared */
    /* the save, on a worker thread */
    pthread_t thread;
    bool thread_running; /* joined when false */
    int save_rv;
    struct ml_loop_post done; /* the worker's way back to the loop */
};

static const char *source_name(enum ml_apply_source src)
{
    switch (src) {
    case ML_APPLY_FILE:
        return "SIGHUP";
    case ML_APPLY_ADMIN:
        return "POST /config";
    case ML_APPLY_PUSH:
        return "push";
    }
    return "?";
}

static void start_next(struct ml_node *node);

void ml_node_note_apply(struct ml_node *node, enum ml_apply_source src, int rv, const char *version,
                        const char *error)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    node->last_apply = rv == 0 ? ML_ADMIN_APPLY_OK : ML_ADMIN_APPLY_REFUSED;
    node->last_apply_source = source_name(src);
    node->last_apply_unix_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    snprintf(node->last_apply_version, sizeof(node->last_apply_version), "%s",
             version != NULL ? version : "");
    snprintf(node->last_apply_error, sizeof(node->last_apply_error), "%s",
             rv == 0 || error == NULL ? "" : error);
    if (rv == 0) {
        node->config_source = src == ML_APPLY_PUSH    ? "fleet"
                              : src == ML_APPLY_ADMIN ? "admin"
                                                      : "file";
    }
}

static void job_free(struct ml_apply_job *job)
{
    ml_free(job->text);
    ml_snapshot_unref(job->next);
    ml_free(job);
}

/* Answers the job's source: rv 0 applied (version), else error (the reason). Then the next. */
static void apply_finish(struct ml_apply_job *job, int rv, const char *version, const char *error)
{
    struct ml_node *node = job->owner;

    ml_node_note_apply(node, job->src, rv, rv == 0 ? version : job->version, error);
    if (rv == 0) {
        node->applies_total++;
    } else {
        node->apply_failures_total++;
        ML_LOG_WRN("apply (%s%s%s) refused, the running config (version %s) stays:\n%s",
                   source_name(job->src), job->version[0] ? " of version " : "", job->version,
                   node->snap->version, error);
    }
    switch (job->src) {
    case ML_APPLY_PUSH:
        if (rv == 0) {
            if (node->fleet != NULL) {
                ml_fleet_client_ack(node->fleet, job->version, job->nonce);
            }
        } else {
            node->fleet_nacks_total++;
            snprintf(node->last_nack_version, sizeof(node->last_nack_version), "%s", job->version);
            snprintf(node->last_nack_error, sizeof(node->last_nack_error), "%s", error);
            if (node->fleet != NULL) {
                if (job->transient) {
                    ml_fleet_client_nack_transient(node->fleet, job->version, job->nonce, error,
                                                   strlen(error));
                } else {
                    ml_fleet_client_nack(node->fleet, job->version, job->nonce, error,
                                         strlen(error));
                }
            }
        }
        break;
    case ML_APPLY_ADMIN: {
        char body[ML_CONFIG_STORE_VERSION_MAX + 32];
        if (rv == 0) {
            snprintf(body, sizeof(body), "version: %s\n", version);
            ml_admin_apply_done(node->admin, job->token, 200, body);
        } else {
            ml_admin_apply_done(node->admin, job->token, 400, error);
        }
        break;
    }
    case ML_APPLY_FILE:
        break;
    }
    node->current = NULL;
    job_free(job);
    start_next(node);
}

/* Step 4, on the loop: the proxy switches, then the answer. */
static void apply_commit(struct ml_apply_job *job)
{
    struct ml_node *node = job->owner;
    struct ml_snapshot *old = node->snap;
    char summary[160];

    ml_proxy_commit(node->proxy, job->change);
    /* the answer waits for every worker: "applied" means applied everywhere */
    ml_workers_commit(node->workers);
    job->change = NULL;
    node->snap = job->next; /* the job's reference becomes the node's */
    job->next = NULL;
    ml_log_level = node->snap->node.log_level;
    if (node->snap->fleet.present && node->fleet != NULL) {
        ml_fleet_client_update(node->fleet, &node->snap->fleet, ml_node_hello_version(node));
    } else if (node->fleet != NULL) {
        ML_LOG_INF("fleet: the new config has no [fleet]: the control-plane client stops");
        ml_fleet_client_free(node->fleet);
        node->fleet = NULL;
    } else if (node->snap->fleet.present) {
        ML_LOG_INF("fleet: the new config has a [fleet]: it takes effect at the next start");
    }
    if (old->node.admin.set != node->snap->node.admin.set ||
        (old->node.admin.set && strcmp(old->node.admin.text, node->snap->node.admin.text) != 0)) {
        ML_LOG_WRN("[node] admin changed to %s: it takes effect at the next start",
                   node->snap->node.admin.set ? node->snap->node.admin.text : "off");
    }
    if (strcmp(old->node.state_dir, node->snap->node.state_dir) != 0) {
        ML_LOG_WRN("[node] state_dir changed to %s: it takes effect at the next start (%s is used "
                   "until then)",
                   node->snap->node.state_dir, node->state_dir);
    }
    if (old->node.access_log != node->snap->node.access_log ||
        old->node.access_log_format != node->snap->node.access_log_format ||
        (old->node.access_log == ML_CFG_ACCESS_LOG_FILE &&
         strcmp(old->node.access_log_path, node->snap->node.access_log_path) != 0)) {
        /* The proxy opened its sink at start; a hot apply keeps it (and its format). */
        ML_LOG_WRN("[node] access_log or access_log_format changed: it takes effect at the next "
                   "start");
    }
    if (node->snap->node.workers != ml_workers_count(node->workers)) {
        /* threads, loops and listeners per worker are made at start */
        ML_LOG_WRN("[node] workers changed to %u: it takes effect at the next start (%u run "
                   "until then)",
                   (unsigned)node->snap->node.workers, ml_workers_count(node->workers));
    }
    if (old->node.log_target != node->snap->node.log_target) {
        /* The log's sink is chosen once, at start, from the local file. */
        ML_LOG_WRN("[node] log_target changed: it takes effect at the next start");
    }
    ml_snapshot_summary(node->snap, summary, sizeof(summary));
    ML_LOG_INF("applied version %s (%s), was %s: %s", node->snap->version, source_name(job->src),
               old->version, summary);
    ml_snapshot_unref(old);
    apply_finish(job, 0, node->snap->version, NULL);
}

/* The worker's result, back on the loop. */
static void on_saved(void *user)
{
    struct ml_apply_job *job = user;
    struct ml_node *node = job->owner;
    char why[512];

    pthread_join(job->thread, NULL);
    job->thread_running = false;
    if (job->save_rv < 0) {
        job->transient = true;
        ml_proxy_abort(node->proxy, job->change);
        ml_workers_abort(node->workers);
        job->change = NULL;
        snprintf(why, sizeof(why), "state_dir %s: cannot save the config: %s", node->state_dir,
                 strerror(-job->save_rv));
        apply_finish(job, job->save_rv, NULL, why);
        return;
    }
    apply_commit(job);
}

/* Step 3, on the worker thread: only the store, with the job's own text and version. */
static void *save_thread(void *arg)
{
    struct ml_apply_job *job = arg;
    struct ml_node *node = job->owner;

    job->save_rv = ml_config_store_save(node->store_ops, node->state_dir, job->next->version,
                                        job->text, job->n);
    ml_loop_post(node->loop, &job->done);
    return NULL;
}

/* Steps 1 and 2, then 3 is handed to the worker. */
static void apply_start(struct ml_apply_job *job)
{
    struct ml_node *node = job->owner;
    struct ml_config_errors errs;
    char error[APPLY_ERROR_BYTES], why[512];
    const char *file = job->src == ML_APPLY_FILE ? node->config_path : "push";
    int rv;

    if (job->src == ML_APPLY_PUSH && strcmp(job->version, node->snap->version) == 0) {
        ML_LOG_INF("push of version %s: already running, acknowledged", job->version);
        apply_finish(job, 0, job->version, NULL);
        return;
    }
    ml_config_errors_init(&errs);
    rv = ml_config_load_text_from(
        job->text, job->n, job->src == ML_APPLY_PUSH ? job->version : NULL,
        job->src == ML_APPLY_FILE ? ML_CONFIG_LOCAL : ML_CONFIG_REMOTE, &errs, &job->next);
    if (rv < 0) {
        if (ml_config_errors_count(&errs) > 0) {
            ml_config_errors_join(&errs, file, error, sizeof(error));
        } else {
            snprintf(error, sizeof(error), "%s: %s", file, strerror(-rv));
        }
        ml_config_errors_deinit(&errs);
        apply_finish(job, rv, NULL, error);
        return;
    }
    ml_config_errors_deinit(&errs);

    if (job->src == ML_APPLY_PUSH || job->src == ML_APPLY_ADMIN) {
        /* [node] and [fleet] are the bootstrap: from the local file only (SIGHUP) */
        char *whole = NULL;
        size_t whole_n = 0;
        if ((rv = ml_node_merge_push(node->snap, job->next, &whole, &whole_n, error,
                                     sizeof(error))) < 0) {
            if (rv == -ENOMEM) {
                snprintf(error, sizeof(error), "push: out of memory");
            }
            apply_finish(job, rv, NULL, error);
            return;
        }
        if (whole != NULL) {
            /* check again what will run and be saved: with our [node] and [fleet]. The version
             * stays the one of the text as it came (a push's; for POST /config local- and the
             * hash of the body, as the fleet protocol defines a local apply's version), not of
             * the merged text. */
            char version[sizeof(job->next->version)];

            snprintf(version, sizeof(version), "%s", job->next->version);
            ml_snapshot_unref(job->next);
            job->next = NULL;
            ml_free(job->text);
            job->text = whole;
            job->n = whole_n;
            ml_config_errors_init(&errs);
            rv = ml_config_load_text(job->text, job->n, version, &errs, &job->next);
            if (rv < 0) {
                ml_config_errors_join(&errs, "push (with this node's [node] and [fleet])", error,
                                      sizeof(error));
                ml_config_errors_deinit(&errs);
                apply_finish(job, rv, NULL, error);
                return;
            }
            ml_config_errors_deinit(&errs);
        }
    }

    if ((rv = ml_proxy_prepare(node->proxy, job->next, why, sizeof(why), &job->change)) == 0 &&
        (rv = ml_workers_prepare(node->workers, job->next, why, sizeof(why))) < 0) {
        /* another worker could not bind or build: worker 0's prepare goes too */
        ml_proxy_abort(node->proxy, job->change);
        job->change = NULL;
    }
    if (rv < 0) {
        /* a bind conflict (a port still held), an address not up yet, no memory: of now */
        job->transient = rv == -EADDRINUSE || rv == -EADDRNOTAVAIL || rv == -ENOMEM;
        snprintf(error, sizeof(error), "%s: %s", file, why);
        apply_finish(job, rv, NULL, error);
        return;
    }
    job->done.fn = on_saved;
    job->done.user = job;
    if (pthread_create(&job->thread, NULL, save_thread, job) != 0) {
        /* no thread to be had: save here, the loop waits this once */
        ML_LOG_WRN("apply: no worker thread, saving on the loop");
        job->save_rv = ml_config_store_save(node->store_ops, node->state_dir, job->next->version,
                                            job->text, job->n);
        job->thread_running = false;
        if (job->save_rv < 0) {
            job->transient = true;
            ml_proxy_abort(node->proxy, job->change);
            ml_workers_abort(node->workers);
            job->change = NULL;
            snprintf(why, sizeof(why), "state_dir %s: cannot save the config: %s",
                     node->state_dir, strerror(-job->save_rv));
            apply_finish(job, job->save_rv, NULL, why);
            return;
        }
        apply_commit(job);
        return;
    }
    job->thread_running = true;
}

static void start_next(struct ml_node *node)
{
    struct ml_apply_job *job;

    if (node->current != NULL) {
        return;
    }
    job = ML_LIST_ENTRY(ml_list_first(&node->queue), struct ml_apply_job, node);
    if (job == NULL) {
        return;
    }
    ml_list_remove(&job->node);
    node->n_queued--;
    node->current = job;
    apply_start(job);
}

void ml_node_apply(struct ml_node *node, enum ml_apply_source src, const char *text, size_t n,
                   const char *version, uint64_t nonce, uint32_t token)
{
    struct ml_apply_job *job = ml_calloc(1, sizeof(*job));
    char why[128] = "";

    if (job == NULL) {
        snprintf(why, sizeof(why), "out of memory");
    } else if (node->n_queued >= ML_NODE_MAX_QUEUED_APPLIES) {
        snprintf(why, sizeof(why), "busy: %d applies wait already (ML_NODE_MAX_QUEUED_APPLIES)",
                 ML_NODE_MAX_QUEUED_APPLIES);
    } else if (version != NULL && strlen(version) > ML_CONFIG_STORE_VERSION_MAX) {
        snprintf(why, sizeof(why), "expected a version of at most %d bytes, got %zu bytes",
                 ML_CONFIG_STORE_VERSION_MAX, strlen(version));
    } else if ((job->text = ml_malloc(n + 1)) == NULL) {
        snprintf(why, sizeof(why), "out of memory");
    }
    if (why[0] != '\0') {
        char error[256];
        snprintf(error, sizeof(error), "%s: %s",
                 src == ML_APPLY_FILE ? node->config_path : "push", why);
        ML_LOG_WRN("apply (%s) refused: %s", source_name(src), error);
        ml_node_note_apply(node, src, -1, version != NULL ? version : "", error);
        node->apply_failures_total++;
        if (src == ML_APPLY_PUSH && node->fleet != NULL) {
            node->fleet_nacks_total++;
            ml_fleet_client_nack(node->fleet, version != NULL ? version : "", nonce, error,
                                 strlen(error));
        } else if (src == ML_APPLY_ADMIN) {
            ml_admin_apply_done(node->admin, token, 503, error);
        }
        if (job != NULL) {
            ml_free(job->text);
            ml_free(job);
        }
        return;
    }
    if (n > 0) { /* text may be NULL for an empty push */
        memcpy(job->text, text, n);
    }
    job->text[n] = '\0';
    job->n = n;
    job->owner = node;
    job->src = src;
    job->nonce = nonce;
    job->token = token;
    snprintf(job->version, sizeof(job->version), "%s", version != NULL ? version : "");
    ml_list_add_tail(&node->queue, &job->node);
    node->n_queued++;
    start_next(node);
}

void ml_node_apply_shutdown(struct ml_node *node)
{
    struct ml_apply_job *job;

    while ((job = ML_LIST_ENTRY(ml_list_first(&node->queue), struct ml_apply_job, node)) != NULL) {
        ml_list_remove(&job->node);
        job_free(job);
    }
    node->n_queued = 0;
    if ((job = node->current) != NULL) {
        if (job->thread_running) {
            pthread_join(job->thread, NULL);
            /* The worker may have posted on_saved before the join: the drain's ml_loop_run would
             * run it on the job freed below. Once joined, nothing posts it again. */
            ml_loop_post_cancel(node->loop, &job->done);
        }
        if (job->change != NULL) {
            ml_proxy_abort(node->proxy, job->change);
            ml_workers_abort(node->workers);
        }
        node->current = NULL;
        job_free(job);
    }
}

const char *ml_node_hello_version(const struct ml_node *node)
{
    return strncmp(node->snap->version, "local-", 6) == 0 ? "" : node->snap->version;
}
