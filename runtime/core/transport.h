/* The transport seam (core/transport-t.h): calls through the ops, and the plain and memory
 * implementations. TLS is in tls/tls.h. */
#ifndef ML_CORE_TRANSPORT_H
#define ML_CORE_TRANSPORT_H

#include "core/sock-t.h"
#include "core/transport-t.h"

static inline void ml_transport_set_ops(struct ml_transport *t, const struct ml_sock_ops *ops,
                                        void *user)
{
    t->ops->set_ops(t, ops, user);
}
static inline int ml_transport_write(struct ml_transport *t, const uint8_t *p, size_t n)
{
    return t->ops->write(t, p, n);
}
static inline bool ml_transport_can_write(const struct ml_transport *t)
{
    return t->ops->can_write(t);
}
static inline void ml_transport_want_writable(struct ml_transport *t)
{
    t->ops->want_writable(t);
}
static inline void ml_transport_close(struct ml_transport *t)
{
    if (t != NULL) {
        t->ops->close(t);
    }
}
static inline const char *ml_transport_peer_identity(const struct ml_transport *t)
{
    return t != NULL ? t->ops->peer_identity(t) : NULL;
}
static inline const char *ml_transport_alpn(const struct ml_transport *t)
{
    return t != NULL ? t->ops->alpn(t) : NULL;
}
static inline char *ml_transport_peer_text(const struct ml_transport *t, char *buf, size_t cap)
{
    if (t == NULL) {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return buf;
    }
    return t->ops->peer_text(t, buf, cap);
}

/* A plain socket as a transport (the same object: no allocation; closing it closes s). */
struct ml_transport *ml_sock_transport(struct ml_sock *s);

/* A memory transport: what is written goes to output(user, ...); ml_transport_mem_feed plays
 * bytes in as if read; can_write is always true. 0 and *out; -ENOMEM. */
int ml_transport_mem_new(ml_transport_output_fn *output, void *user, struct ml_transport **out);
/* p[0..n) (borrowed) arrives at t's owner (on_read). */
void ml_transport_mem_feed(struct ml_transport *t, const uint8_t *p, size_t n);
/* An outgoing memory transport "connected": the owner hears on_connected (TLS to upstreams
 * starts its handshake then: unit tests and the tls_client fuzzer). */
void ml_transport_mem_connected(struct ml_transport *t);
/* The peer of a memory transport closed (reason as on_close): the owner hears on_close. */
void ml_transport_mem_hangup(struct ml_transport *t, int reason, const char *why);

#endif
