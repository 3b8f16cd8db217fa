/* The data plane of one loop: the listeners of a snapshot, the calls they take, and the
 * clusters those go to. Everything hangs off one struct ml_proxy (no mutable globals). */
#ifndef ML_PROXY_PROXY_H
#define ML_PROXY_PROXY_H

#include "config/snapshot-t.h"
#include "core/loop-t.h"

#include <stddef.h>

struct ml_proxy;

/* Starts the data plane of snap on loop: builds its clusters and binds every listener (takes a
 * reference on snap). 0 and *out; -EADDRINUSE, -EADDRNOTAVAIL, -EACCES, ... when a listener
 * cannot be bound, -ENOMEM: why then says what, and nothing is left running. */
int ml_proxy_new(struct ml_loop *loop, struct ml_snapshot *snap, char *why, size_t cap,
                 struct ml_proxy **out);
/* Graceful stop, on SIGTERM: stops listening, sends GOAWAY on every downstream connection (calls
 * in flight go on; connections close as their calls end), and stops the loop (ml_loop_stop) once
 * no call is left or timeout_ms passed, whichever comes first. ml_proxy_free then ends what is
 * left. */
void ml_proxy_drain(struct ml_proxy *p, uint32_t timeout_ms);
/* Stops listening, ends every connection and call at once (their streams are reset), frees p. */
void ml_proxy_free(struct ml_proxy *p);

#endif
