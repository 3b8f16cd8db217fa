/* The one event loop: libwebsockets' (lws_service). Everything that waits — sockets, timers —
 * waits here; nothing blocks it. */
#ifndef ML_CORE_LOOP_H
#define ML_CORE_LOOP_H

struct ml_loop;

/* A new loop (an lws context with no vhosts yet); NULL on failure (logged). Free with
 * ml_loop_free. */
struct ml_loop *ml_loop_new(void);
void ml_loop_free(struct ml_loop *loop);

/* Runs until ml_loop_stop() or SIGINT/SIGTERM. Returns 0 after a clean stop, or -EIO when lws
 * failed. */
int ml_loop_run(struct ml_loop *loop);
void ml_loop_stop(struct ml_loop *loop);

/* "libwebsockets 4.3.5"; static storage. */
const char *ml_loop_library_version(void);

#endif
