/* The one event loop: libwebsockets' (lws_service). Everything that waits — sockets, timers —
 * waits here; nothing blocks it. */
#ifndef ML_CORE_LOOP_H
#define ML_CORE_LOOP_H

#include "core/loop-t.h"

/* A new loop (an lws context with no vhosts yet); NULL on failure (logged). Free with
 * ml_loop_free. */
struct ml_loop *ml_loop_new(void);
/* How many loops the process will run at once ([node] workers), before the first ml_loop_new:
 * descriptor numbers are the process's, so each loop's table is sized for all of them. */
void ml_loop_set_count(unsigned int n);
/* loop is a worker's beside the main loop: SIGINT and SIGTERM do not end its ml_loop_run (the
 * main loop's owner stops it with ml_loop_stop, which any thread may call). */
void ml_loop_set_follower(struct ml_loop *loop);
/* Destroys the lws context: every socket still open is closed (their owners must be gone or
 * detached by then; see ml_sock_close). */
void ml_loop_free(struct ml_loop *loop);

/* Runs until ml_loop_stop() or SIGINT/SIGTERM. Returns 0 after a clean stop, or -EIO when lws
 * failed. */
int ml_loop_run(struct ml_loop *loop);
void ml_loop_stop(struct ml_loop *loop); /* thread-safe */
/* SIGINT or SIGTERM when a signal ended the last ml_loop_run (which then may be run again, until
 * ml_loop_stop or the next signal); 0 when ml_loop_stop did. */
int ml_loop_signal(const struct ml_loop *loop);
/* SIGINT or SIGTERM received and not taken by an ml_loop_run yet; 0 = none (a wait outside the
 * loop, node/workers.c, looks at it to stop waiting). */
int ml_loop_pending_signal(void);

/* Queues d to run fn(d) at the end of the current event, after the callback that is running
 * returns (or at the next ml_loop_run_deferred). A no-op when d is already queued. */
void ml_loop_defer(struct ml_loop *loop, struct ml_defer *d, ml_defer_fn *fn);
/* Takes d off the queue if it is queued; fn will not run. */
void ml_loop_defer_cancel(struct ml_loop *loop, struct ml_defer *d);
/* Runs the queued work, including work queued meanwhile, until the queue is empty. Called by the
 * socket and timer glue after each event; does nothing when called from inside deferred work. */
void ml_loop_run_deferred(struct ml_loop *loop);

/* From now on sig (SIGUSR1, SIGHUP, ...) runs fn(user, sig) on the loop: the handler only sets a
 * flag, which the loop checks each time lws_service returns (the signal interrupts its poll()).
 * 0; -ENOSPC when ML_LOOP_MAX_SIGNAL_WATCHES are taken; -EINVAL for a bad signal. */
int ml_loop_watch_signal(struct ml_loop *loop, int sig, ml_loop_signal_fn *fn, void *user);
/* Stops watching sig (its disposition goes back to the default). */
void ml_loop_unwatch_signal(struct ml_loop *loop, int sig);

/* The one thing another thread may do with the loop: queue post to run post->fn(post->user) on
 * the loop soon (it wakes lws_service). post must stay alive and not be posted again until fn ran
 * or ml_loop_post_cancel took it back.
 * Thread-safe; used by the worker that makes a new config durable off the loop (node/). */
void ml_loop_post(struct ml_loop *loop, struct ml_loop_post *post);
/* Takes post off the loop's queue if it is queued there: post->fn will not run, and post may be
 * freed once the thread that posts it is done with it (joined). Thread-safe. The owner of a post
 * calls this before freeing it: a post queued when the loop stops is otherwise run by the next
 * ml_loop_run (a drain), after its owner is gone. */
void ml_loop_post_cancel(struct ml_loop *loop, struct ml_loop_post *post);

/* The libwebsockets context under the loop, for the modules that speak HTTP or WebSocket
 * through libwebsockets themselves (admin/, fleet/); nothing on the data path uses it. */
struct lws_context;
struct lws_context *ml_loop_lws_context(struct ml_loop *loop);

/* "libwebsockets 4.3.5"; static storage. */
const char *ml_loop_library_version(void);

#endif
