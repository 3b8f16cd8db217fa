/* HTTP/2 streams: what a stream owner (proxy/call) does with one. Every function here only
 * tells nghttp2 and asks for the output to be written at the end of the event
 * (ml_h2_conn_kick); none does I/O itself, so each may be called from any callback. */
#include "h2/h2.h"

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/timer.h"
#include "h2/h2_int.h"
#include "h2/hdrs.h"

#include <errno.h>
#include <string.h>

/* Header lists up to this many fields are converted on the stack. */
#define NVA_STACK 48

struct ml_h2_stream *ml_h2_stream_new(struct ml_h2_conn *c, int32_t id)
{
    struct ml_list *spare = ml_list_first(&c->spare_streams);
    struct ml_h2_hdrs hdrs;
    struct ml_h2_stream *s;
    uint8_t *sent;
    size_t cap_sent;

    if (spare != NULL) {
        /* A closed stream of this connection: its header list keeps its memory. */
        ml_list_remove(spare);
        c->n_spare_streams--;
        s = ML_CONTAINER_OF(spare, struct ml_h2_stream, node);
        hdrs = s->hdrs;
        sent = s->sent;
        cap_sent = s->cap_sent;
        memset(s, 0, sizeof(*s));
        s->hdrs = hdrs;
        s->sent = sent;
        s->cap_sent = cap_sent;
    } else if ((s = ml_calloc(1, sizeof(*s))) != NULL) {
        ml_h2_hdrs_init(&s->hdrs, c->settings.max_header_list_bytes);
    } else {
        return NULL;
    }
    s->conn = c;
    s->id = id;
    ml_list_add_tail(&c->streams, &s->node);
    c->n_streams++;
    return s;
}

static void stream_unlink(struct ml_h2_conn *c, struct ml_h2_stream *s)
{
    if (c->last_stream == s) {
        c->last_stream = NULL;
    }
    ml_list_remove(&s->node);
    if (--c->n_streams == 0) {
        c->idle_since_ms = ml_time_now_ms();
    }
}

/* s (unlinked) goes to its connection's spares, or back to the heap when they are full. */
static void stream_free(struct ml_h2_stream *s)
{
    struct ml_h2_conn *c = s->conn;
    uint32_t keep = c->settings.max_streams > 0 && c->settings.max_streams < H2_SPARE_STREAMS
                        ? c->settings.max_streams
                        : H2_SPARE_STREAMS;

    if (c->n_spare_streams < keep) {
        ml_h2_hdrs_trim(&s->hdrs, H2_HDRS_KEEP_BYTES);
        if (s->cap_sent > H2_HDRS_KEEP_BYTES) {
            ml_free(s->sent);
            s->sent = NULL;
            s->cap_sent = 0;
        }
        ml_list_add_tail(&c->spare_streams, &s->node);
        c->n_spare_streams++;
        return;
    }
    ml_h2_hdrs_deinit(&s->hdrs);
    ml_free(s->sent);
    ml_free(s);
}

void ml_h2_stream_spares_free(struct ml_h2_conn *c)
{
    for (struct ml_list *n; (n = ml_list_first(&c->spare_streams)) != NULL;) {
        struct ml_h2_stream *s = ML_CONTAINER_OF(n, struct ml_h2_stream, node);

        ml_list_remove(n);
        ml_h2_hdrs_deinit(&s->hdrs);
        ml_free(s->sent);
        ml_free(s);
    }
    c->n_spare_streams = 0;
}

void ml_h2_stream_gone(struct ml_h2_conn *c, struct ml_h2_stream *s, uint32_t error_code)
{
    const struct ml_h2_stream_ops *ops = s->ops;
    void *owner = s->owner;

    stream_unlink(c, s);
    if (!c->dead && s->unconsumed > 0) {
        /* Bytes the owner still holds no longer count against the connection's window. */
        nghttp2_session_consume_connection(c->ng, s->unconsumed);
        ml_h2_conn_kick(c);
    }
    s->ops = NULL;
    if (ops != NULL) {
        ops->on_close(owner, error_code);
    }
    stream_free(s);
    if (!c->server && !c->dead && !c->owner_gone && c->cops->on_slots != NULL) {
        c->cops->on_slots(c->user, c);
    }
}

/* Room for n bytes of names and values in s->sent (what was there is dropped: see
 * struct ml_h2_stream). 0; -ENOMEM. n is bounded by the list it copies, itself bounded by
 * its header list limit. */
static int sent_room(struct ml_h2_stream *s, size_t n)
{
    size_t cap = s->cap_sent != 0 ? s->cap_sent : 512;
    uint8_t *p;

    if (n <= s->cap_sent) {
        return 0;
    }
    while (cap < n) {
        cap *= 2;
    }
    /* not realloc: the old bytes are not wanted (nghttp2 serialized them already) */
    if ((p = ml_malloc(cap)) == NULL) {
        return -ENOMEM;
    }
    ml_free(s->sent);
    s->sent = p;
    s->cap_sent = cap;
    return 0;
}

/* A field nghttp2 received may still be HTTP2-Settings (of those RFC 9113 forbids, the one
 * nghttp2 lets through). Names arrive lower case. */
static bool is_http2_settings(struct ml_slice name)
{
    return name.n == 14 && memcmp(name.p, "http2-settings", 14) == 0;
}

/* One nghttp2 name/value pair pointing at name and value in s->sent, which nghttp2 does not
 * copy again (nor lower-case: every name in a list is lower case already, see h2/hdrs.h);
 * false for the fields HTTP/2 forbids, which are left out. A field from the peer is checked for
 * the one nghttp2 does not refuse (struct ml_h2_field's from_peer): the full check, a call per
 * field sent, was ~1.5 % of a proxied call. */
static bool nv_set(nghttp2_nv *v, struct ml_slice name, struct ml_slice value, bool never_index,
                   bool from_peer)
{
    if (from_peer ? is_http2_settings(name) : ml_h2_field_is_connection_specific(name, value)) {
        return false;
    }
    *v = (nghttp2_nv){
        .name = (uint8_t *)name.p,
        .value = (uint8_t *)value.p,
        .namelen = name.n,
        .valuelen = value.n,
        .flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE |
                 (never_index ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE),
    };
    return true;
}

/* Room for n pairs: stack when it has room, else allocated (free with nva_free). */
static nghttp2_nv *nva_room(size_t n, nghttp2_nv *stack)
{
    return n > NVA_STACK ? ml_malloc(n * sizeof(*stack)) : stack;
}

/* hdrs as nghttp2 name/value pairs for stream s, without the fields HTTP/2 forbids: the names
 * and values are copied into s->sent in one piece (a list keeps them back to back) and the
 * pairs point there. *nva is stack (when it has room) or allocated (free with nva_free). */
static int nva_build(struct ml_h2_stream *s, const struct ml_h2_hdrs *h, nghttp2_nv *stack,
                     nghttp2_nv **nva, size_t *n)
{
    nghttp2_nv *v;

    if (sent_room(s, h->n_bytes) < 0 || (v = nva_room(h->n_fields, stack)) == NULL) {
        return -ENOMEM;
    }
    if (h->n_bytes > 0) {
        memcpy(s->sent, h->bytes, h->n_bytes);
    }
    *n = 0;
    for (uint32_t i = 0; i < h->n_fields; i++) {
        const struct ml_h2_field *f = &h->fields[i];

        *n += nv_set(&v[*n], (struct ml_slice){s->sent + f->name_off, f->name_len},
                     (struct ml_slice){s->sent + f->value_off, f->value_len}, f->never_index,
                     f->from_peer);
    }
    *nva = v;
    return 0;
}

/* The same from n_refs references, copied one by one into s->sent. */
static int nva_build_refs(struct ml_h2_stream *s, const struct ml_h2_field_ref *f, size_t n_refs,
                          nghttp2_nv *stack, nghttp2_nv **nva, size_t *n)
{
    size_t bytes = 0, at = 0;
    nghttp2_nv *v;

    for (size_t i = 0; i < n_refs; i++) {
        bytes += f[i].name.n + f[i].value.n;
    }
    if (sent_room(s, bytes) < 0 || (v = nva_room(n_refs, stack)) == NULL) {
        return -ENOMEM;
    }
    *n = 0;
    for (size_t i = 0; i < n_refs; i++) {
        struct ml_slice name = {s->sent + at, f[i].name.n};
        struct ml_slice value = {s->sent + at + f[i].name.n, f[i].value.n};

        memcpy(s->sent + at, f[i].name.p, name.n);
        memcpy(s->sent + at + name.n, f[i].value.p, value.n);
        at += name.n + value.n;
        *n += nv_set(&v[*n], name, value, f[i].never_index, f[i].from_peer);
    }
    *nva = v;
    return 0;
}

static void nva_free(nghttp2_nv *nva, nghttp2_nv *stack)
{
    if (nva != stack) {
        ml_free(nva);
    }
}

static nghttp2_ssize data_read(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t len,
                               uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    struct ml_h2_stream *s = source->ptr;
    const struct ml_h2_hdrs *trailers = NULL;
    nghttp2_nv stack[NVA_STACK], *nva;
    bool eof = false;
    ssize_t n;
    size_t n_nva;

    if (s->ops == NULL) {
        return NGHTTP2_ERR_DEFERRED; /* reset by its owner: the RST_STREAM closes it */
    }
    n = s->ops->read(s->owner, buf, len, &eof, &trailers);
    if (n == -EAGAIN || (n == 0 && !eof)) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n < 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (eof) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (trailers != NULL && trailers->n_fields > 0) {
            /* s->sent's response (or request) headers are serialized: nghttp2 asks for the
             * body only after it sent them. */
            if (nva_build(s, trailers, stack, &nva, &n_nva) < 0) {
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            /* Allowed from inside the read callback; END_STREAM then goes on the trailers. */
            if (nghttp2_submit_trailer(ng, stream_id, nva, n_nva) != 0) {
                nva_free(nva, stack);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            nva_free(nva, stack);
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return (nghttp2_ssize)n;
}

/* A new client stream for ops/owner, its request not submitted yet: request_submit, or
 * request_drop when its nva cannot be built. NULL when out of memory. */
static struct ml_h2_stream *request_stream(struct ml_h2_conn *c, const struct ml_h2_stream_ops *ops,
                                           void *owner)
{
    struct ml_h2_stream *s = ml_h2_stream_new(c, -1);

    if (s != NULL) {
        s->ops = ops;
        s->owner = owner;
    }
    return s;
}

static void request_drop(struct ml_h2_conn *c, struct ml_h2_stream *s)
{
    stream_unlink(c, s);
    stream_free(s);
}

/* Opens stream s (request_stream) with the request nva (pointing into s->sent):
 * ml_h2_conn_request. */
static int request_submit(struct ml_h2_conn *c, struct ml_h2_stream *s, const nghttp2_nv *nva,
                          size_t n_nva, bool end_stream, struct ml_h2_stream **out)
{
    nghttp2_data_provider2 dp;
    int32_t id;

    dp.source.ptr = s;
    dp.read_callback = data_read;
    id = nghttp2_submit_request2(c->ng, NULL, nva, n_nva, end_stream ? NULL : &dp, s);
    if (id < 0) {
        request_drop(c, s);
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
            c->goaway = true; /* out of stream ids: no new streams on this connection */
        }
        return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EAGAIN;
    }
    s->id = id;
    ml_h2_conn_kick(c);
    *out = s;
    return 0;
}

static bool can_request(const struct ml_h2_conn *c)
{
    return !c->server && !c->dead && c->connected && !c->goaway && !c->owner_gone;
}

int ml_h2_conn_request(struct ml_h2_conn *c, const struct ml_h2_hdrs *hdrs, bool end_stream,
                       const struct ml_h2_stream_ops *ops, void *owner, struct ml_h2_stream **out)
{
    nghttp2_nv stack[NVA_STACK], *nva;
    struct ml_h2_stream *s;
    size_t n_nva;
    int rv;

    *out = NULL;
    /* A request has at least its pseudo-headers: an empty list is the caller's bug, refused
     * here rather than sent as a HEADERS frame the peer can only reset. */
    if (hdrs->n_fields == 0) {
        return -EINVAL;
    }
    if (!can_request(c)) {
        return -EAGAIN;
    }
    if ((s = request_stream(c, ops, owner)) == NULL) {
        return -ENOMEM;
    }
    if ((rv = nva_build(s, hdrs, stack, &nva, &n_nva)) < 0) {
        request_drop(c, s);
        return rv;
    }
    rv = request_submit(c, s, nva, n_nva, end_stream, out);
    nva_free(nva, stack);
    return rv;
}

int ml_h2_conn_request_refs(struct ml_h2_conn *c, const struct ml_h2_field_ref *fields,
                            size_t n_fields, bool end_stream, const struct ml_h2_stream_ops *ops,
                            void *owner, struct ml_h2_stream **out)
{
    nghttp2_nv stack[NVA_STACK], *nva;
    struct ml_h2_stream *s;
    size_t n_nva;
    int rv;

    *out = NULL;
    if (n_fields == 0) {
        return -EINVAL; /* as ml_h2_conn_request */
    }
    if (!can_request(c)) {
        return -EAGAIN;
    }
    if ((s = request_stream(c, ops, owner)) == NULL) {
        return -ENOMEM;
    }
    if ((rv = nva_build_refs(s, fields, n_fields, stack, &nva, &n_nva)) < 0) {
        request_drop(c, s);
        return rv;
    }
    rv = request_submit(c, s, nva, n_nva, end_stream, out);
    nva_free(nva, stack);
    return rv;
}

void ml_h2_stream_attach(struct ml_h2_stream *s, const struct ml_h2_stream_ops *ops, void *owner)
{
    s->ops = ops;
    s->owner = owner;
}

int ml_h2_stream_respond(struct ml_h2_stream *s, const struct ml_h2_hdrs *hdrs, bool end_stream)
{
    struct ml_h2_conn *c = s->conn;
    nghttp2_nv stack[NVA_STACK], *nva;
    nghttp2_data_provider2 dp;
    size_t n_nva;
    int rv;

    if (c->dead || s->responded || s->reset || !c->server) {
        return -EPROTO;
    }
    if ((rv = nva_build(s, hdrs, stack, &nva, &n_nva)) < 0) {
        return rv;
    }
    dp.source.ptr = s;
    dp.read_callback = data_read;
    rv = nghttp2_submit_response2(c->ng, s->id, nva, n_nva, end_stream ? NULL : &dp);
    nva_free(nva, stack);
    if (rv != 0) {
        return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
    }
    s->responded = true;
    ml_h2_conn_kick(c);
    return 0;
}

void ml_h2_stream_resume(struct ml_h2_stream *s)
{
    struct ml_h2_conn *c = s->conn;

    if (c->dead || s->reset || !s->deferred) {
        return; /* not waiting: nghttp2 asks ops->read when the stream's turn comes */
    }
    s->deferred = false;
    nghttp2_session_resume_data(c->ng, s->id);
    ml_h2_conn_kick(c);
}

void ml_h2_stream_consume(struct ml_h2_stream *s, size_t n)
{
    struct ml_h2_conn *c = s->conn;

    if (n > s->unconsumed) {
        n = s->unconsumed;
    }
    if (c->dead || n == 0) {
        return;
    }
    s->unconsumed -= n;
    nghttp2_session_consume(c->ng, s->id, n);
    ml_h2_conn_kick(c);
}

void ml_h2_stream_reset(struct ml_h2_stream *s, uint32_t error_code)
{
    struct ml_h2_conn *c = s->conn;

    if (s->reset) {
        return;
    }
    s->ops = NULL;
    s->owner = NULL;
    s->reset = true;
    if (!c->dead) {
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, error_code);
        ml_h2_conn_kick(c);
    }
}

int32_t ml_h2_stream_id(const struct ml_h2_stream *s)
{
    return s->id;
}

struct ml_h2_conn *ml_h2_stream_conn(const struct ml_h2_stream *s)
{
    return s->conn;
}
