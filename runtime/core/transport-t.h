/* The transport seam under h2: a byte stream h2 writes to and hears from, whatever carries it
 * (a plain socket, TLS over a socket, or memory for unit tests and fuzzers). h2 never knows
 * which: it calls these ops and gets the events of struct ml_sock_ops (core/sock-t.h). */
#ifndef ML_CORE_TRANSPORT_T_H
#define ML_CORE_TRANSPORT_T_H

#include "core/sock-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_transport;

/* Each op has the meaning of the ml_sock_* function of the same name (core/sock.h): write takes
 * all n bytes (0) or none (-EAGAIN, on_writable follows), -EPIPE once it is closing. */
struct ml_transport_ops {
    /* Who hears on_read/on_writable/on_close (on_connected only for outgoing plain sockets). */
    void (*set_ops)(struct ml_transport *t, const struct ml_sock_ops *ops, void *user);
    int (*write)(struct ml_transport *t, const uint8_t *p, size_t n);
    bool (*can_write)(const struct ml_transport *t);
    void (*want_writable)(struct ml_transport *t);
    /* The owner is done: no callback runs again and t must not be used. */
    void (*close)(struct ml_transport *t);
    /* The verified peer certificate's URI SAN (else subject CN); NULL when the peer showed no
     * verified certificate (plaintext, or TLS without one). Lives as long as t. */
    const char *(*peer_identity)(const struct ml_transport *t);
    /* The ALPN protocol agreed ("h2"); NULL for plaintext. */
    const char *(*alpn)(const struct ml_transport *t);
    /* The peer's address ("127.0.0.1:5000"), "" when unknown. Returns buf. */
    char *(*peer_text)(const struct ml_transport *t, char *buf, size_t cap);
};

/* Embedded first in each implementation's own struct. */
struct ml_transport {
    const struct ml_transport_ops *ops;
};

/* Wraps an outgoing transport before it connects (TLS to upstreams: tls/tls_client.h): takes
 * lower over and gives the transport to use in *out, whose on_connected means it is usable (0);
 * or a negative errno, lower not taken. */
typedef int ml_transport_wrap_fn(void *user, struct ml_transport *lower, struct ml_transport **out);

/* Where a memory transport's output goes: 0 when taken, -EAGAIN (nothing taken), or another
 * negative errno (the connection fails). */
typedef int ml_transport_output_fn(void *user, const uint8_t *p, size_t n);

#endif
