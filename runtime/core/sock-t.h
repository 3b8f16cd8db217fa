#ifndef ML_CORE_SOCK_T_H
#define ML_CORE_SOCK_T_H

#include <stddef.h>
#include <stdint.h>

struct ml_sock;          /* one TCP connection, accepted or outgoing */
struct ml_sock_listener; /* one listening socket */

/* An IP literal and a port (the same fields as a config address, without the text). */
struct ml_sock_addr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint16_t port;  /* host byte order */
    uint8_t ip[16]; /* network byte order; 4 bytes used for AF_INET */
};

/* Largest ml_sock_write: also the most a socket ever keeps back (see ml_sock_write). */
#define ML_SOCK_WRITE_MAX_BYTES (64 * 1024)

/* Longest "ip:port" / "[ip6]:port" text, with its NUL. */
#define ML_SOCK_ADDR_TEXT_MAX 48

/* What a socket tells its owner. Each runs on the loop from the socket's own event; none may
 * free the owner's view of the socket except on_close, which is the last. */
struct ml_sock_ops {
    /* Outgoing sockets: the connection is up; writes may start. */
    void (*on_connected)(void *user);
    /* n > 0 bytes arrived; p is borrowed for the duration of the call. */
    void (*on_read)(void *user, const uint8_t *p, size_t n);
    /* The socket can take more: what it kept back went out, or the owner asked with
     * ml_sock_want_writable. */
    void (*on_writable)(void *user);
    /* The socket is gone (peer closed, reset, or an outgoing connect failed): reason is 0 for an
     * orderly close by the peer, else a negative errno (-ECONNREFUSED, -ETIMEDOUT, -EIO); why is
     * a human-readable reason, borrowed. Runs exactly once unless the owner closed the socket
     * first; the socket is freed right after it returns. */
    void (*on_close)(void *user, int reason, const char *why);
};

/* A listener accepted sock: the callee must either ml_sock_set_ops() it (it then owns it) or
 * ml_sock_close() it before returning. */
typedef void ml_sock_accept_fn(void *user, struct ml_sock *sock);

#endif
