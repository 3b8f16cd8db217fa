/* The memory transport: no socket, no loop. Unit tests and fuzzers drive h2 and TLS with it. */
#include "core/alloc.h"
#include "core/transport.h"

#include <errno.h>
#include <string.h>

struct mem_transport {
    struct ml_transport tp; /* first: the op callbacks cast back */
    ml_transport_output_fn *output;
    void *output_user;
    const struct ml_sock_ops *ops;
    void *user;
};

static void mem_set_ops(struct ml_transport *t, const struct ml_sock_ops *ops, void *user)
{
    struct mem_transport *m = (struct mem_transport *)t;

    m->ops = ops;
    m->user = user;
}

static int mem_write(struct ml_transport *t, const uint8_t *p, size_t n)
{
    struct mem_transport *m = (struct mem_transport *)t;

    return m->output(m->output_user, p, n);
}

static bool mem_can_write(const struct ml_transport *t)
{
    (void)t;
    return true;
}

static void mem_want_writable(struct ml_transport *t)
{
    (void)t; /* always writable: the writer tries again at its next feed */
}

static void mem_close(struct ml_transport *t)
{
    ml_free(t);
}

static const char *mem_none(const struct ml_transport *t)
{
    (void)t;
    return NULL;
}

static char *mem_peer_text(const struct ml_transport *t, char *buf, size_t cap)
{
    (void)t;
    if (cap > 0) {
        buf[0] = '\0';
    }
    return buf;
}

static const struct ml_transport_ops mem_ops = {
    .set_ops = mem_set_ops,
    .write = mem_write,
    .can_write = mem_can_write,
    .want_writable = mem_want_writable,
    .close = mem_close,
    .peer_identity = mem_none,
    .alpn = mem_none,
    .peer_text = mem_peer_text,
};

int ml_transport_mem_new(ml_transport_output_fn *output, void *user, struct ml_transport **out)
{
    struct mem_transport *m = ml_calloc(1, sizeof(*m));

    *out = NULL;
    if (m == NULL) {
        return -ENOMEM;
    }
    m->tp.ops = &mem_ops;
    m->output = output;
    m->output_user = user;
    *out = &m->tp;
    return 0;
}

void ml_transport_mem_feed(struct ml_transport *t, const uint8_t *p, size_t n)
{
    struct mem_transport *m = (struct mem_transport *)t;

    if (m->ops != NULL && m->ops->on_read != NULL) {
        m->ops->on_read(m->user, p, n);
    }
}

void ml_transport_mem_connected(struct ml_transport *t)
{
    struct mem_transport *m = (struct mem_transport *)t;

    if (m->ops != NULL && m->ops->on_connected != NULL) {
        m->ops->on_connected(m->user);
    }
}

void ml_transport_mem_hangup(struct ml_transport *t, int reason, const char *why)
{
    struct mem_transport *m = (struct mem_transport *)t;
    const struct ml_sock_ops *ops = m->ops;

    m->ops = NULL;
    if (ops != NULL && ops->on_close != NULL) {
        ops->on_close(m->user, reason, why);
    }
    ml_free(m);
}
