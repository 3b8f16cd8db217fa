/* node/workers.h: workers 1..N-1, each a thread running its own loop and proxy.
 *
 * What crosses threads, and how:
 * - worker 0 hands a worker an operation (prepare, commit, abort, drain) with ml_loop_post, the
 *   loop's one thread-safe entry; the worker runs it on its loop and says done under set->mu;
 * - worker 0 reads a worker's counters (admin, fleet Status) under that worker's lock, which
 *   the worker takes only while its proxy switches tables (commit) and at free: so the table
 *   read is alive; the counters themselves are read with relaxed atomic loads, never locked on
 *   the data path;
 * - the snapshot is shared, immutable, with an atomic refcount (config/snapshot.c). */
#include "node/workers.h"

#include "admin/clusters.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/rand.h"
#include "core/stats.h"
#include "meshlet_config.h"
#include "proxy/obs.h"
#include "proxy/proxy.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* How often the wait for draining workers looks for a second SIGTERM. */
#define WORKERS_WAIT_SLICE_MS 50

enum worker_op { OP_PREPARE, OP_COMMIT, OP_ABORT, OP_DRAIN };

struct worker {
    unsigned int idx; /* 1..n-1 */
    struct ml_workers *set;
    struct ml_loop *loop;
    struct ml_proxy *proxy;
    pthread_t thread;
    bool started; /* the thread was made: joined at free */
    bool alive;   /* its loop runs (under set->mu) */
    /* the proxy's tables stay as they are while held: worker 0 reads them */
    pthread_mutex_t lock;
    /* the operation handed over, and its answer */
    struct ml_loop_post post;
    enum worker_op op;
    struct ml_snapshot *next;
    struct ml_proxy_change *change; /* prepared, not committed yet */
    uint32_t drain_ms;
    bool done; /* under set->mu */
    int rv;
    char why[256];
};

struct ml_workers {
    unsigned int n; /* with worker 0 */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct worker w[CONFIG_ML_MAX_WORKERS]; /* w[0] unused: worker 0 is the node's */
};

unsigned int ml_workers_count(const struct ml_workers *ws)
{
    return ws != NULL ? ws->n : 1;
}

/* On the worker's loop. */
static void on_post(void *user)
{
    struct worker *w = user;

    switch (w->op) {
    case OP_PREPARE:
        w->rv = ml_proxy_prepare(w->proxy, w->next, w->why, sizeof(w->why), &w->change);
        break;
    case OP_COMMIT:
        pthread_mutex_lock(&w->lock);
        ml_proxy_commit(w->proxy, w->change);
        pthread_mutex_unlock(&w->lock);
        w->change = NULL;
        break;
    case OP_ABORT:
        ml_proxy_abort(w->proxy, w->change);
        w->change = NULL;
        break;
    case OP_DRAIN:
        ml_proxy_drain(w->proxy, w->drain_ms); /* stops this loop once drained */
        return;                                /* nobody waits for it */
    }
    pthread_mutex_lock(&w->set->mu);
    w->done = true;
    pthread_cond_broadcast(&w->set->cv);
    pthread_mutex_unlock(&w->set->mu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    ml_log_set_worker(w->idx);
    if (ml_loop_run(w->loop) < 0) {
        ML_LOG_ERR("worker %u: its loop failed", w->idx);
    }
    pthread_mutex_lock(&w->set->mu);
    w->alive = false;
    pthread_cond_broadcast(&w->set->cv);
    pthread_mutex_unlock(&w->set->mu);
    return NULL;
}

/* Hands op to the workers for which want(w) and waits until each did it (or its loop is gone:
 * rv -EIO). */
static void run_on(struct ml_workers *ws, enum worker_op op, bool (*want)(const struct worker *))
{
    for (unsigned int k = 1; k < ws->n; k++) {
        struct worker *w = &ws->w[k];

        pthread_mutex_lock(&ws->mu);
        w->done = !want(w) || !w->alive;
        w->rv = w->done && want(w) ? -EIO : 0;
        pthread_mutex_unlock(&ws->mu);
        if (!w->done) {
            w->op = op;
            w->post.fn = on_post;
            w->post.user = w;
            ml_loop_post(w->loop, &w->post);
        }
    }
    pthread_mutex_lock(&ws->mu);
    for (unsigned int k = 1; k < ws->n; k++) {
        while (!ws->w[k].done && ws->w[k].alive) {
            pthread_cond_wait(&ws->cv, &ws->mu);
        }
        if (!ws->w[k].done) {
            ws->w[k].rv = -EIO;
        }
    }
    pthread_mutex_unlock(&ws->mu);
    /* a worker whose loop ended took no post: it must not stay queued past the wait */
    for (unsigned int k = 1; k < ws->n; k++) {
        ml_loop_post_cancel(ws->w[k].loop, &ws->w[k].post);
    }
}

static bool every(const struct worker *w)
{
    (void)w;
    return true;
}

static bool prepared(const struct worker *w)
{
    return w->change != NULL;
}

int ml_workers_prepare(struct ml_workers *ws, struct ml_snapshot *next, char *why, size_t cap)
{
    int rv = 0;

    if (ws == NULL) {
        return 0;
    }
    for (unsigned int k = 1; k < ws->n; k++) {
        ws->w[k].next = next; /* each prepare takes its own reference */
    }
    run_on(ws, OP_PREPARE, every);
    for (unsigned int k = 1; k < ws->n && rv == 0; k++) {
        if ((rv = ws->w[k].rv) < 0) {
            snprintf(why, cap, "worker %u: %s", k,
                     ws->w[k].why[0] != '\0' ? ws->w[k].why : strerror(-rv));
        }
    }
    if (rv < 0) {
        ml_workers_abort(ws);
    }
    return rv;
}

void ml_workers_abort(struct ml_workers *ws)
{
    if (ws != NULL) {
        run_on(ws, OP_ABORT, prepared);
    }
}

void ml_workers_commit(struct ml_workers *ws)
{
    if (ws != NULL) {
        run_on(ws, OP_COMMIT, prepared);
    }
}

void ml_workers_drain(struct ml_workers *ws, uint32_t timeout_ms)
{
    if (ws == NULL) {
        return;
    }
    for (unsigned int k = 1; k < ws->n; k++) {
        struct worker *w = &ws->w[k];

        w->op = OP_DRAIN;
        w->drain_ms = timeout_ms;
        w->post.fn = on_post;
        w->post.user = w;
        ml_loop_post(w->loop, &w->post);
    }
}

void ml_workers_wait(struct ml_workers *ws)
{
    if (ws == NULL) {
        return;
    }
    pthread_mutex_lock(&ws->mu);
    for (unsigned int k = 1; k < ws->n && ml_loop_pending_signal() == 0; k++) {
        while (ws->w[k].alive && ml_loop_pending_signal() == 0) {
            struct timespec until;

            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += WORKERS_WAIT_SLICE_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&ws->cv, &ws->mu, &until);
        }
    }
    pthread_mutex_unlock(&ws->mu);
}

void ml_workers_free(struct ml_workers *ws)
{
    if (ws == NULL) {
        return;
    }
    for (unsigned int k = 1; k < ws->n; k++) {
        struct worker *w = &ws->w[k];

        if (w->started) {
            ml_loop_stop(w->loop);
            pthread_join(w->thread, NULL);
        }
        ml_loop_post_cancel(w->loop, &w->post);
        pthread_mutex_lock(&w->lock);
        ml_proxy_free(w->proxy); /* also aborts a change left prepared */
        w->proxy = NULL;
        pthread_mutex_unlock(&w->lock);
        ml_loop_free(w->loop);
        pthread_mutex_destroy(&w->lock);
    }
    pthread_cond_destroy(&ws->cv);
    pthread_mutex_destroy(&ws->mu);
    ml_free(ws);
}

int ml_workers_new(struct ml_snapshot *snap, unsigned int n, char *why, size_t cap,
                   struct ml_workers **out)
{
    struct ml_workers *ws;
    int rv = 0;

    *out = NULL;
    if (n <= 1) {
        return 0;
    }
    if (n > CONFIG_ML_MAX_WORKERS || (ws = ml_calloc(1, sizeof(*ws))) == NULL) {
        snprintf(why, cap, "workers: %s", n > CONFIG_ML_MAX_WORKERS ? "too many" : "out of memory");
        return n > CONFIG_ML_MAX_WORKERS ? -EINVAL : -ENOMEM;
    }
    pthread_mutex_init(&ws->mu, NULL);
    pthread_cond_init(&ws->cv, NULL);
    ws->n = 1; /* grows with each worker made: ml_workers_free frees exactly those */
    for (unsigned int k = 1; k < n; k++) {
        struct worker *w = &ws->w[k];
        char inner[200];

        w->idx = k;
        w->set = ws;
        if ((w->loop = ml_loop_new()) == NULL) {
            snprintf(why, cap, "worker %u: cannot make its loop", k);
            rv = -ENOMEM;
            break;
        }
        ml_loop_set_follower(w->loop);
        ml_rand_set_stream(k); /* its own sequence, the same every run with a fixed seed */
        ml_log_set_worker(k);
        rv = ml_proxy_new(w->loop, snap, inner, sizeof(inner), &w->proxy);
        ml_log_set_worker(0);
        ml_rand_set_stream(0);
        if (rv < 0) {
            snprintf(why, cap, "worker %u: %s", k, inner);
            ml_loop_free(w->loop);
            break;
        }
        pthread_mutex_init(&w->lock, NULL);
        ws->n = k + 1;
    }
    if (rv < 0) {
        ml_workers_free(ws);
        return rv;
    }
    *out = ws;
    return 0;
}

int ml_workers_start(struct ml_workers *ws)
{
    sigset_t block, old;
    int rv = 0;

    if (ws == NULL) {
        return 0;
    }
    /* the signals are worker 0's (its loop watches them): the threads inherit this mask */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (unsigned int k = 1; k < ws->n && rv == 0; k++) {
        struct worker *w = &ws->w[k];

        w->alive = true;
        if ((rv = -pthread_create(&w->thread, NULL, worker_main, w)) < 0) {
            w->alive = false;
            break;
        }
        w->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rv;
}

struct ml_stats *ml_workers_stats_sum(struct ml_workers *ws, struct ml_proxy *proxy0)
{
    struct ml_stats *sum = ml_stats_new(ml_proxy_snapshot(proxy0));

    if (sum == NULL) {
        return NULL;
    }
    ml_stats_sum_add(sum, ml_proxy_stats(proxy0));
    for (unsigned int k = 1; ws != NULL && k < ws->n; k++) {
        pthread_mutex_lock(&ws->w[k].lock);
        ml_stats_sum_add(sum, ml_proxy_stats(ws->w[k].proxy));
        pthread_mutex_unlock(&ws->w[k].lock);
    }
    return sum;
}

void ml_workers_totals(struct ml_workers *ws, struct ml_proxy *proxy0, unsigned int k,
                       uint64_t *cx_total, uint64_t *cx_active, uint64_t *calls_total)
{
    if (k == 0 || ws == NULL || k >= ws->n) {
        ml_stats_worker_totals(ml_proxy_stats(proxy0), cx_total, cx_active, calls_total);
        return;
    }
    pthread_mutex_lock(&ws->w[k].lock);
    ml_stats_worker_totals(ml_proxy_stats(ws->w[k].proxy), cx_total, cx_active, calls_total);
    pthread_mutex_unlock(&ws->w[k].lock);
}

long ml_workers_clusters(struct ml_workers *ws, struct ml_proxy *proxy0, int json, char **body)
{
    struct ml_balance *b[CONFIG_ML_MAX_WORKERS];
    unsigned int n = ml_workers_count(ws);
    long rv;

    b[0] = ml_proxy_balance(proxy0);
    /* every worker's lock, in order, for the one rendering (only worker 0 takes more than its
     * own, so the order cannot deadlock) */
    for (unsigned int k = 1; k < n; k++) {
        pthread_mutex_lock(&ws->w[k].lock);
        b[k] = ml_proxy_balance(ws->w[k].proxy);
    }
    rv = ml_admin_clusters_sum(b, n, json != 0, body);
    for (unsigned int k = n; k-- > 1;) {
        pthread_mutex_unlock(&ws->w[k].lock);
    }
    return rv;
}
