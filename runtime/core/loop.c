#include "core/loop.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/fd_budget.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop_int.h"

#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Set from the signal handler; the loop checks it each time lws_service returns (a signal makes
 * poll() return EINTR, so the check comes at once). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* Watched signals received: a count per signal number (< 64), the only thing the handler does.
 * Each watch keeps the count it last saw, so that with [node] workers > 1 every loop that
 * watches a signal (each worker's SIGUSR1: its access log) runs its watch once per arrival,
 * whichever thread the kernel interrupted. */
static volatile unsigned long watched_count[64];

static void on_watched_signal(int sig)
{
    if (sig > 0 && sig < 64) {
        __atomic_fetch_add(&watched_count[sig], 1, __ATOMIC_RELAXED); /* lock-free: signal-safe */
    }
}

/* Every loop alive, so that the loop that sees a signal first wakes the others (the signal only
 * interrupts one thread's poll()). Loops come and go at start and stop only. */
static pthread_mutex_t loops_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ml_loop *loops[ML_LOOP_MAX_LOOPS];

static void loops_register(struct ml_loop *loop, bool add)
{
    pthread_mutex_lock(&loops_lock);
    for (int i = 0; i < ML_LOOP_MAX_LOOPS; i++) {
        if (add ? loops[i] == NULL : loops[i] == loop) {
            loops[i] = add ? loop : NULL;
            break;
        }
    }
    pthread_mutex_unlock(&loops_lock);
}

static void loops_wake_others(struct ml_loop *self)
{
    pthread_mutex_lock(&loops_lock);
    for (int i = 0; i < ML_LOOP_MAX_LOOPS; i++) {
        if (loops[i] != NULL && loops[i] != self) {
            lws_cancel_service(loops[i]->lws);
        }
    }
    pthread_mutex_unlock(&loops_lock);
}

/* Runs the watchers of the signals received since the last look. */
static void run_signal_watches(struct ml_loop *loop)
{
    bool seen = false;

    for (int i = 0; i < ML_LOOP_MAX_SIGNAL_WATCHES; i++) {
        int sig = loop->watch[i].sig;
        unsigned long n;

        if (sig > 0 && (n = __atomic_load_n(&watched_count[sig], __ATOMIC_RELAXED)) !=
                           loop->watch[i].seen) {
            loop->watch[i].seen = n;
            seen = true;
            loop->watch[i].fn(loop->watch[i].user, sig);
        }
    }
    if (seen) {
        loops_wake_others(loop);
    }
}

int ml_loop_watch_signal(struct ml_loop *loop, int sig, ml_loop_signal_fn *fn, void *user)
{
    struct sigaction sa;

    if (sig <= 0 || sig >= 64 || sig == SIGINT || sig == SIGTERM) {
        return -EINVAL;
    }
    for (int i = 0; i < ML_LOOP_MAX_SIGNAL_WATCHES; i++) {
        if (loop->watch[i].sig == 0 || loop->watch[i].sig == sig) {
            loop->watch[i].sig = sig;
            loop->watch[i].seen = __atomic_load_n(&watched_count[sig], __ATOMIC_RELAXED);
            loop->watch[i].fn = fn;
            loop->watch[i].user = user;
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = on_watched_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(sig, &sa, NULL); /* no SA_RESTART: poll() returns at once */
            return 0;
        }
    }
    return -ENOSPC;
}

/* Another loop watches sig too (its disposition must stay ours). */
static bool watched_elsewhere(const struct ml_loop *self, int sig)
{
    bool found = false;

    pthread_mutex_lock(&loops_lock);
    for (int i = 0; i < ML_LOOP_MAX_LOOPS && !found; i++) {
        for (int w = 0; loops[i] != NULL && loops[i] != self && w < ML_LOOP_MAX_SIGNAL_WATCHES;
             w++) {
            found = found || loops[i]->watch[w].sig == sig;
        }
    }
    pthread_mutex_unlock(&loops_lock);
    return found;
}

void ml_loop_unwatch_signal(struct ml_loop *loop, int sig)
{
    for (int i = 0; i < ML_LOOP_MAX_SIGNAL_WATCHES; i++) {
        if (loop->watch[i].sig == sig) {
            loop->watch[i].sig = 0;
            if (!watched_elsewhere(loop, sig)) {
                signal(sig, SIG_DFL);
            }
        }
    }
}

struct lws_context *ml_loop_lws_context(struct ml_loop *loop)
{
    return loop->lws;
}

static void lws_to_ml_log(int level, const char *line)
{
    size_t n = strlen(line);

    /* lws lines end in '\n'; ours are added by ml_log_write. */
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        n--;
    }
    if (level & LLL_ERR) {
        ML_LOG_ERR("lws: %.*s", (int)n, line);
    } else {
        ML_LOG_WRN("lws: %.*s", (int)n, line);
    }
}

/* libwebsockets sizes its fd table from the soft RLIMIT_NOFILE (when lower than
 * fd_limit_per_thread) and refuses any descriptor numbered beyond it: raise the soft limit to
 * the budget when the hard limit allows, else say that the role budgets cannot all be met. */
static void fd_limit_raise(rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) {
        return;
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
        ML_LOG_WRN("loop: open files limited to %llu (ulimit -n), below the %llu the fd budgets "
                   "add up to (core/fd_budget.h, times the loops): the last roles to fill up may "
                   "be refused",
                   (unsigned long long)rl.rlim_cur, (unsigned long long)want);
    }
}

/* Loops the process runs at once ([node] workers): descriptor numbers are the process's, so
 * each loop's table must reach the budget of all of them. Set before the loops are made. */
static unsigned int loops_n = 1;

void ml_loop_set_count(unsigned int n)
{
    loops_n = n >= 1 && n <= ML_LOOP_MAX_LOOPS ? n : 1;
}

void ml_loop_set_follower(struct ml_loop *loop)
{
    loop->follower = true;
}

struct ml_loop *ml_loop_new(void)
{
    struct lws_context_creation_info info;
    struct ml_loop *loop = ml_calloc(1, sizeof(*loop));
    struct sigaction sa;

    if (loop == NULL) {
        ML_LOG_ERR("loop: out of memory");
        return NULL;
    }
    ml_list_init(&loop->deferred);
    ml_list_init(&loop->posts);
    loop->listen_share = loops_n > 1;
    pthread_mutex_init(&loop->posts_lock, NULL);
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_ml_log);
    memset(&info, 0, sizeof(info));
    /* Vhosts (listeners, admin, the fleet client) are added by their owners. */
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    /* Big reads: runtime/README.md "The loop, measured" (the 4 KiB default costs 16-21%). */
    info.pt_serv_buf_size = 32 * 1024;
    /* One table for every role; each keeps to its share of it (core/fd_budget.h). */
    fd_limit_raise((rlim_t)ML_FD_BUDGET_TOTAL * loops_n);
    info.fd_limit_per_thread = ML_FD_BUDGET_TOTAL * loops_n;
    info.user = loop; /* lws_context_user(): how sock.c finds the loop of a wsi */
    loop->lws = lws_create_context(&info);
    if (loop->lws == NULL) {
        ML_LOG_ERR("loop: libwebsockets context creation failed");
        pthread_mutex_destroy(&loop->posts_lock);
        ml_free(loop);
        return NULL;
    }
    loops_register(loop, true);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an EPIPE to handle, not a death */
    return loop;
}

void ml_loop_free(struct ml_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    loops_register(loop, false);
    lws_context_destroy(loop->lws);
    pthread_mutex_destroy(&loop->posts_lock);
    ml_free(loop);
}

void ml_loop_post(struct ml_loop *loop, struct ml_loop_post *post)
{
    pthread_mutex_lock(&loop->posts_lock);
    ml_list_add_tail(&loop->posts, &post->node);
    pthread_mutex_unlock(&loop->posts_lock);
    lws_cancel_service(loop->lws); /* writes lws' wake pipe: safe from any thread */
}

void ml_loop_post_cancel(struct ml_loop *loop, struct ml_loop_post *post)
{
    pthread_mutex_lock(&loop->posts_lock);
    ml_list_remove(&post->node); /* a no-op when not queued (never posted, or taken already) */
    pthread_mutex_unlock(&loop->posts_lock);
}

/* Runs what other threads posted, each on its own (the lock is not held while fn runs). */
static void run_posts(struct ml_loop *loop)
{
    for (;;) {
        struct ml_loop_post *post;

        pthread_mutex_lock(&loop->posts_lock);
        post = ML_LIST_ENTRY(ml_list_first(&loop->posts), struct ml_loop_post, node);
        if (post != NULL) {
            ml_list_remove(&post->node);
        }
        pthread_mutex_unlock(&loop->posts_lock);
        if (post == NULL) {
            return;
        }
        post->fn(post->user);
        ml_loop_run_deferred(loop);
    }
}

int ml_loop_run(struct ml_loop *loop)
{
    loop->signal = 0;
    while (!__atomic_load_n(&loop->stop, __ATOMIC_ACQUIRE) && (loop->follower || !stop_signal)) {
        int rv;

        loop->in_turn = true;
        rv = lws_service(loop->lws, 0);
        loop->in_turn = false;
        if (rv < 0) {
            ML_LOG_ERR("loop: lws_service failed");
            return -EIO;
        }
        ml_loop_run_deferred(loop); /* what the turn's socket readiness left (sock.c) */
        run_signal_watches(loop);
        ml_loop_run_deferred(loop);
        run_posts(loop);
    }
    if (!loop->follower && stop_signal) {
        ML_LOG_INF("loop: %s received, stopping", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
        loop->signal = stop_signal;
        stop_signal = 0; /* taken: a later ml_loop_run (a drain) runs until the next one */
    }
    return 0;
}

int ml_loop_pending_signal(void)
{
    return stop_signal;
}

int ml_loop_signal(const struct ml_loop *loop)
{
    return loop->signal;
}

void ml_loop_stop(struct ml_loop *loop)
{
    __atomic_store_n(&loop->stop, 1, __ATOMIC_RELEASE); /* may come from another worker */
    lws_cancel_service(loop->lws);
}

void ml_loop_defer(struct ml_loop *loop, struct ml_defer *d, ml_defer_fn *fn)
{
    if (!ml_list_linked(&d->node)) {
        d->fn = fn;
        ml_list_add_tail(&loop->deferred, &d->node);
    }
}

void ml_loop_defer_cancel(struct ml_loop *loop, struct ml_defer *d)
{
    ml_list_remove(&d->node);
}

void ml_loop_run_deferred(struct ml_loop *loop)
{
    struct ml_list *n;

    if (loop->in_deferred) {
        return;
    }
    loop->in_deferred = true;
    ml_clock_hold(); /* the deferred work of a turn shares one reading of the clock */
    while ((n = ml_list_first(&loop->deferred)) != NULL) {
        struct ml_defer *d = ML_CONTAINER_OF(n, struct ml_defer, node);

        ml_list_remove(n);
        d->fn(d); /* may queue more, or free d's owner */
    }
    ml_clock_release();
    loop->in_deferred = false;
}

const char *ml_loop_library_version(void)
{
    static char buf[64];

    if (buf[0] == '\0') {
        const char *v = lws_get_library_version(); /* "4.3.5-unknown" from a tarball */
        snprintf(buf, sizeof(buf), "libwebsockets %.*s", (int)strcspn(v, "- "), v);
    }
    return buf;
}
