/* The socket seam: listening and connecting TCP sockets on the loop (libwebsockets' raw-skt
 * role underneath), bytes in and out, nothing else. Together with loop.c and timer.c the only
 * data-path code that includes libwebsockets.
 *
 * Writing: ml_sock_write() writes at once when nothing is kept back for the socket (also from
 * on_read: runtime/README.md "The loop, measured"); what the kernel does not take is kept back (at
 * most one write, ML_SOCK_WRITE_MAX_BYTES) and goes out when the socket drains, then on_writable
 * runs. While something is kept back, writes are refused with -EAGAIN: the caller keeps its
 * data, and on_writable tells it when to try again. */
#ifndef ML_CORE_SOCK_H
#define ML_CORE_SOCK_H

#include "core/loop-t.h"
#include "core/sock-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Listens on addr (an IP literal: "0.0.0.0" / "::" for all). name is for logs. Each accepted
 * connection goes to on_accept(user, sock). Returns 0 and *out; -EADDRINUSE, -EADDRNOTAVAIL,
 * -EACCES (the bind failed: nothing listens), -ENOMEM, -EIO. */
int ml_sock_listen(struct ml_loop *loop, const struct ml_sock_addr *addr, const char *name,
                   ml_sock_accept_fn *on_accept, void *user, struct ml_sock_listener **out);
/* Why addr cannot be bound: tries a bind once (and closes it) to learn the errno, for the reason
 * a failed listen gives (libwebsockets only says it failed). -errno, or -EIO when it binds. */
int ml_sock_bind_errno(const struct ml_sock_addr *addr);
/* Stops listening and frees l. Connections it accepted are not affected. NULL is a no-op. */
void ml_sock_listener_free(struct ml_sock_listener *l);

/* Starts a non-blocking connect to addr. Returns 0 and *out: then exactly one of on_connected
 * (later followed by on_close) or on_close (the connect failed or took longer than timeout_ms;
 * 0 = no limit of ours) runs, never from inside this call, unless the owner closes the socket
 * first. -ENOMEM, or -EMFILE (ML_FD_BUDGET_UPSTREAM sockets made here are open already): nothing
 * was started and no callback runs. */
int ml_sock_connect(struct ml_loop *loop, const struct ml_sock_addr *addr, uint32_t timeout_ms,
                    const struct ml_sock_ops *ops, void *user, struct ml_sock **out);

/* Sets who the socket reports to (after an accept). */
void ml_sock_set_ops(struct ml_sock *s, const struct ml_sock_ops *ops, void *user);

/* Writes p[0..n) (n <= ML_SOCK_WRITE_MAX_BYTES). Returns 0 when the bytes were taken (sent, or
 * the unsent rest kept back; on_writable follows once it has gone out); -EAGAIN when the socket
 * still keeps something back (nothing taken; on_writable follows); -EPIPE when the socket is
 * closing or gone; -EMSGSIZE for n too large. */
int ml_sock_write(struct ml_sock *s, const uint8_t *p, size_t n);
/* true when the socket keeps nothing back, so ml_sock_write would take bytes now. */
bool ml_sock_can_write(const struct ml_sock *s);
/* Asks for one on_writable call when the socket can take more. */
void ml_sock_want_writable(struct ml_sock *s);

/* The owner is done with s: its callbacks never run again and s must not be used. Bytes kept
 * back are still sent (for a few seconds at most), then the connection is closed. */
void ml_sock_close(struct ml_sock *s);

/* "127.0.0.1:15001" / "[::1]:15001" into buf (ML_SOCK_ADDR_TEXT_MAX bytes). Returns buf. */
char *ml_sock_addr_text(const struct ml_sock_addr *a, char *buf, size_t cap);

/* The peer's address as ml_sock_addr_text writes it (an IPv4-mapped IPv6 one as IPv4), or ""
 * when it is not known (the socket is gone). Returns buf. */
char *ml_sock_peer_text(const struct ml_sock *s, char *buf, size_t cap);

#endif
