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
/* Hot apply (config/README.md, runtime/fleet/README.md "Which configuration runs"), in two steps so
 * that the node can make the new config durable (state_dir, off the loop) between them:
 *
 * ml_proxy_prepare: binds every listener of next whose bind address no running listener has
 * (those that remain keep their sockets and connections; a prepared socket does not accept until
 * commit, the kernel's backlog holds early clients) and builds next's clusters. Nothing that runs
 * changes. 0 and *out; -EADDRINUSE, -EADDRNOTAVAIL, -EACCES, -ENOMEM: why says what, and nothing
 * is left of the attempt. At most one change is prepared at a time (-EBUSY otherwise).
 *
 * ml_proxy_commit: switches. New calls (also on connections that stay) use next; calls in flight
 * finish on the snapshot, clusters and upstream connections they started with; listeners whose
 * bind is gone stop listening and GOAWAY their connections; changed clusters keep the pooled
 * connections of endpoints that remain; upstream connections of endpoints that are gone close
 * once their streams end. No call fails because of an apply. Frees change.
 *
 * ml_proxy_abort: undoes a prepare (closes the new binds), frees change. */
struct ml_proxy_change;
int ml_proxy_prepare(struct ml_proxy *p, struct ml_snapshot *next, char *why, size_t cap,
                     struct ml_proxy_change **out);
void ml_proxy_commit(struct ml_proxy *p, struct ml_proxy_change *change);
void ml_proxy_abort(struct ml_proxy *p, struct ml_proxy_change *change);

/* Stops listening, ends every connection and call at once (their streams are reset), frees p.
 * A change prepared and neither committed nor aborted is aborted first (its pointer must not be
 * used afterwards). */
void ml_proxy_free(struct ml_proxy *p);

#endif
