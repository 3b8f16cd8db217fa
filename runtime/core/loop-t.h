#ifndef ML_CORE_LOOP_T_H
#define ML_CORE_LOOP_T_H

#include "core/list-t.h"

struct ml_loop;
struct ml_defer;

typedef void ml_defer_fn(struct ml_defer *d);

/* Runs on the loop (never in the signal handler) after sig was received. */
typedef void ml_loop_signal_fn(void *user, int sig);

/* Signals that ml_loop_watch_signal can watch at once, per loop. */
#define ML_LOOP_MAX_SIGNAL_WATCHES 4

/* Loops one process runs at once: [node] workers (CONFIG_ML_MAX_WORKERS is at most this). */
#define ML_LOOP_MAX_LOOPS 64

/* A piece of work deferred to the end of the current event (socket callback or timer), embedded
 * in its owner. Deferring keeps one connection's callbacks from running another connection's
 * I/O, and lets an object that ends deep inside a callback be freed once nothing on the stack
 * refers to it. Queued at most once; cancel it before freeing the owner. */
struct ml_defer {
    struct ml_list node; /* in the loop's queue while queued */
    ml_defer_fn *fn;
};

/* Work handed to the loop by another thread (ml_loop_post), embedded in its owner: fn(user) runs on
 * the loop. */
typedef void ml_loop_post_fn(void *user);
struct ml_loop_post {
    struct ml_list node; /* in the loop's post queue while queued */
    ml_loop_post_fn *fn;
    void *user;
};

#endif
