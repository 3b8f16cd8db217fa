/* The one event loop: libwebsockets' (lws_service). Everything that waits — sockets, timers —
 * waits here; nothing blocks it. */
#ifndef ML_CORE_LOOP_H
#define ML_CORE_LOOP_H

#include "core/loop-t.h"

/* A new loop (an lws context with no vhosts yet); NULL on failure (logged). Free with
 * ml_loop_free. */
struct ml_loop *ml_loop_new(void);
/* Destroys the lws context: every socket still open is closed (their owners must be gone or
 * detached by then; see ml_sock_close). */
void ml_loop_free(struct ml_loop *loop);

/* Runs until ml_loop_stop() or SIGINT/SIGTERM. Returns 0 after a clean stop, or -EIO when lws
 * failed. */
int ml_loop_run(struct ml_loop *loop);
void ml_loop_stop(struct ml_loop *loop);

/* Queues d to run fn(d) at the end of the current event, after the callback that is running
 * returns (or at the next ml_loop_run_deferred). A no-op when d is already queued. */
void ml_loop_defer(struct ml_loop *loop, struct ml_defer *d, ml_defer_fn *fn);
/* Takes d off the queue if it is queued; fn will not run. */
void ml_loop_defer_cancel(struct ml_loop *loop, struct ml_defer *d);
/* Runs the queued work, including work queued meanwhile, until the queue is empty. Called by the
 * socket and timer glue after each event; does nothing when called from inside deferred work. */
void ml_loop_run_deferred(struct ml_loop *loop);

/* "libwebsockets 4.3.5"; static storage. */
const char *ml_loop_library_version(void);

#endif
