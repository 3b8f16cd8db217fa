/* HTTP/2 connections: an nghttp2 session (which does no I/O) glued to a socket of the seam.
 *
 * When things happen: input is handed to nghttp2 in the socket's on_read and the output it
 * produces is written right after, in the same event (no extra turn of the loop); output that a
 * stream owner causes from elsewhere (another connection's callbacks) is written at the end of
 * the event (ml_h2_conn_kick → ml_loop_defer), so one connection's callbacks never run another
 * connection's I/O. A connection is torn down only from those top-level places, never from
 * inside one of its nghttp2 callbacks. */
#include "h2/h2.h"

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/timer.h"
#include "core/transport.h"
#include "h2/h2_int.h"
#include "h2/hdrs.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

static void conn_destroy(struct ml_h2_conn *c, int reason, const char *why);

/* ---- nghttp2 callbacks: receiving --------------------------------------------------------- */

/* The stream of id, or NULL. Callbacks come in runs for one stream (a header block's begin,
 * fields and frame; a DATA frame's chunks and the frame; the close), so the stream found last
 * is tried first: nghttp2's stream map costs ~60 instructions a lookup, and a call made ~11. */
static struct ml_h2_stream *stream_of(struct ml_h2_conn *c, int32_t id)
{
    struct ml_h2_stream *s = c->last_stream;

    if (s != NULL && s->id == id) {
        return s;
    }
    s = nghttp2_session_get_stream_user_data(c->ng, id);
    c->last_stream = s;
    return s;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct ml_h2_conn *c = ud;
    struct ml_h2_stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    if (c->server && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if ((s = ml_h2_stream_new(c, frame->hd.stream_id)) == NULL) {
            ML_LOG_WRN("c%u s%d: out of memory for a new stream: reset", c->id,
                       frame->hd.stream_id);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, s);
        c->last_stream = s;
        return 0;
    }
    if ((s = stream_of(c, frame->hd.stream_id)) != NULL) {
        ml_h2_hdrs_clear(&s->hdrs);
    }
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct ml_h2_conn *c = ud;
    /* The stream whose block this is: the one on_begin_headers found (a header block is never
     * interleaved with another: RFC 9113 6.10). */
    struct ml_h2_stream *s = stream_of(c, frame->hd.stream_id);
    int rv;

    if (s == NULL || frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    rv = ml_h2_hdrs_add(&s->hdrs, name, namelen, value, valuelen,
                        (flags & NGHTTP2_NV_FLAG_NO_INDEX) != 0);
    if (rv == 0) {
        s->hdrs.fields[s->hdrs.n_fields - 1].from_peer = 1; /* nghttp2 checked it */
    }
    if (rv < 0) {
        ML_LOG_INF("c%u s%d: %s: reset", c->id, frame->hd.stream_id,
                   rv == -ENOBUFS ? "header list larger than SETTINGS_MAX_HEADER_LIST_SIZE"
                                  : "out of memory for headers");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

/* The owner refused what it was given: reset the stream once; its on_close follows. */
static void stream_fail(struct ml_h2_conn *c, struct ml_h2_stream *s, uint32_t error_code)
{
    if (!s->failed) {
        s->failed = true;
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, error_code);
    }
}

/* A response header block with a 1xx :status is interim (100-continue and the like). nghttp2
 * (HTTP messaging checks on) refuses a response without :status, with a pseudo-header after a
 * regular field, or with any other pseudo-header: :status is field 0, no lookup needed. */
static bool is_interim(const struct ml_h2_hdrs *h)
{
    struct ml_slice name, value;

    if (h->n_fields == 0) {
        return false;
    }
    name = ml_h2_hdrs_name(h, 0);
    value = ml_h2_hdrs_value(h, 0);
    return name.n == 7 && memcmp(name.p, ":status", 7) == 0 && value.n == 3 && value.p[0] == '1';
}

static int on_headers_frame(struct ml_h2_conn *c, const nghttp2_frame *frame)
{
    struct ml_h2_stream *s = stream_of(c, frame->hd.stream_id);
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0, trailers;

    if (s == NULL) {
        return 0;
    }
    if (c->server && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        c->sops->on_request(c->user, s, &s->hdrs, end);
        if (s->ops == NULL && !s->reset) {
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
            s->reset = true;
        }
        if (end && s->ops != NULL) {
            s->ops->on_end(s->owner);
        }
        ml_h2_hdrs_clear(&s->hdrs);
        return 0;
    }
    trailers = c->server || s->got_response;
    if (!trailers) {
        if (is_interim(&s->hdrs) && !end) {
            ml_h2_hdrs_clear(&s->hdrs);
            return 0;
        }
        s->got_response = true;
    }
    if (s->ops != NULL && s->ops->on_headers(s->owner, &s->hdrs, trailers, end) < 0) {
        stream_fail(c, s, NGHTTP2_INTERNAL_ERROR);
    } else if (end && s->ops != NULL) {
        s->ops->on_end(s->owner);
    }
    ml_h2_hdrs_clear(&s->hdrs);
    return 0;
}

static void tell_slots(struct ml_h2_conn *c)
{
    if (!c->server && !c->dead && !c->owner_gone && c->cops->on_slots != NULL) {
        c->cops->on_slots(c->user, c);
    }
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct ml_h2_conn *c = ud;
    struct ml_h2_stream *s;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        return on_headers_frame(c, frame);
    case NGHTTP2_DATA:
        s = stream_of(c, frame->hd.stream_id);
        if (s != NULL && s->ops != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            s->ops->on_end(s->owner);
        }
        return 0;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
            c->greeted = true; /* nghttp2 takes SETTINGS only after a valid preface */
            tell_slots(c);
        }
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            c->ping_pending = false;
        }
        return 0;
    case NGHTTP2_GOAWAY:
        c->goaway = true;
        ML_LOG_DBG("c%u: GOAWAY received (last stream %d, error 0x%x)", c->id,
                   frame->goaway.last_stream_id, frame->goaway.error_code);
        tell_slots(c);
        return 0;
    default:
        return 0;
    }
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct ml_h2_conn *c = ud;
    struct ml_h2_stream *s = stream_of(c, stream_id);

    if (s == NULL || s->ops == NULL || s->failed) {
        /* Nobody to take it (refused, reset, or failed): give the window back now. */
        nghttp2_session_consume(ng, stream_id, len);
        return 0;
    }
    s->unconsumed += len;
    if (s->ops->on_data(s->owner, data, len) < 0) {
        stream_fail(c, s, NGHTTP2_INTERNAL_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code, void *ud)
{
    struct ml_h2_conn *c = ud;
    struct ml_h2_stream *s = stream_of(c, stream_id);

    if (s != NULL) {
        nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
        ml_h2_stream_gone(c, s, error_code);
    }
    return 0;
}

static int on_error(nghttp2_session *ng, int lib_error_code, const char *msg, size_t len, void *ud)
{
    struct ml_h2_conn *c = ud;

    ML_LOG_DBG("c%u: nghttp2: %.*s", c->id, (int)len, msg);
    return 0;
}

/* ---- the session ------------------------------------------------------------------------- */

static int session_new(struct ml_h2_conn *c)
{
    nghttp2_mem mem = {
        .mem_user_data = &c->mem,
        .malloc = ml_h2_mem_malloc,
        .free = ml_h2_mem_free,
        .calloc = ml_h2_mem_calloc,
        .realloc = ml_h2_mem_realloc,
    };
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[4];
    size_t n_iv = 0;
    int rv;

    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        return -ENOMEM;
    }
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    /* Manual flow control: windows reopen only as stream owners consume (h2.h). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* No priority tree, so no closed streams kept around for it. */
    nghttp2_option_set_no_closed_streams(opt, 1);
    /* nghttp2 copies mem and the callbacks into the session. */
    if (c->server) {
        rv = nghttp2_session_server_new3(&c->ng, cbs, c, opt, &mem);
    } else {
        rv = nghttp2_session_client_new3(&c->ng, cbs, c, opt, &mem);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        return -ENOMEM;
    }
    if (c->settings.max_streams > 0) {
        iv[n_iv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                              c->settings.max_streams};
    }
    iv[n_iv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                          c->settings.stream_window_bytes};
    iv[n_iv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                                          c->settings.max_header_list_bytes};
    if (!c->server) {
        iv[n_iv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
    }
    rv = nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, n_iv);
    if (rv == 0 && c->settings.conn_window_bytes > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
        rv = nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
                                                   (int32_t)c->settings.conn_window_bytes);
    }
    if (rv != 0) {
        nghttp2_session_del(c->ng);
        c->ng = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* ---- output -------------------------------------------------------------------------------- */

/* Writes what nghttp2 has, as long as the socket takes it. Top level only. Returns -1 when c
 * was torn down (an error, or the session has nothing left to do), else 0. */
static int conn_flush(struct ml_h2_conn *c)
{
    bool drained = false;
    int rv;

    if (c->dead || c->tp == NULL || !c->connected) {
        return 0;
    }
    ml_loop_defer_cancel(c->loop, &c->flush_defer);
    while (!drained) {
        if (!ml_transport_can_write(c->tp)) {
            ml_transport_want_writable(c->tp); /* on_writable brings us back */
            return 0;
        }
        while (c->out_len + H2_PIECE_MAX <= sizeof(c->out)) {
            const uint8_t *p;
            nghttp2_ssize n;

            c->in_ng++;
            n = nghttp2_session_mem_send2(c->ng, &p);
            c->in_ng--;
            if (n < 0) {
                ML_LOG_WRN("c%u: nghttp2: %s: closing", c->id, nghttp2_strerror((int)n));
                conn_destroy(c, -EPROTO, nghttp2_strerror((int)n));
                return -1;
            }
            if (n == 0) {
                drained = true;
                break;
            }
            if ((size_t)n > sizeof(c->out) - c->out_len) {
                ML_LOG_ERR("c%u: nghttp2 produced %zd bytes at once: closing", c->id, n);
                conn_destroy(c, -EPROTO, "output piece too large");
                return -1;
            }
            memcpy(c->out + c->out_len, p, (size_t)n);
            c->out_len += (size_t)n;
        }
        if (c->out_len > 0) {
            rv = ml_transport_write(c->tp, c->out, c->out_len);
            if (rv == -EAGAIN) {
                return 0; /* on_writable follows */
            }
            if (rv < 0) {
                conn_destroy(c, rv, "write failed");
                return -1;
            }
            c->out_len = 0;
        }
    }
    if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng)) {
        ML_LOG_DBG("c%u: session done", c->id);
        conn_destroy(c, 0, "closed");
        return -1;
    }
    return 0;
}

static void flush_deferred(struct ml_defer *d)
{
    conn_flush(ML_CONTAINER_OF(d, struct ml_h2_conn, flush_defer));
}

void ml_h2_conn_kick(struct ml_h2_conn *c)
{
    if (c->dead || c->in_ng > 0 || c->loop == NULL) {
        /* A memory connection (no loop) writes at its next ml_h2_conn_feed. */
        return; /* inside this connection's own nghttp2 call: its caller writes right after */
    }
    ml_loop_defer(c->loop, &c->flush_defer, flush_deferred);
}

/* ---- socket events --------------------------------------------------------------------- */

static void sock_on_connected(void *user)
{
    struct ml_h2_conn *c = user;

    c->connected = true;
    ML_LOG_DBG("c%u: connected", c->id);
    if (c->cops->on_ready != NULL) {
        c->cops->on_ready(c->user, c); /* may submit requests: they go out with the preface */
    }
    conn_flush(c);
}

static void sock_on_read(void *user, const uint8_t *p, size_t n)
{
    struct ml_h2_conn *c = user;
    nghttp2_ssize rv;

    if (c->dead) {
        return;
    }
    c->last_read_ms = ml_time_now_ms();
    c->in_ng++;
    /* A server's input passes the gate: frames on closed streams are answered (gate.c). */
    rv = c->server ? ml_h2_gate_recv(c, p, n) : nghttp2_session_mem_recv2(c->ng, p, n);
    c->in_ng--;
    if (rv < 0) {
        ML_LOG_INF("c%u: %s: closing", c->id, nghttp2_strerror((int)rv));
        if (conn_flush(c) == 0) { /* a GOAWAY nghttp2 queued, if any */
            conn_destroy(c, -EPROTO, nghttp2_strerror((int)rv));
        }
        return;
    }
    conn_flush(c);
}

static void sock_on_writable(void *user)
{
    conn_flush(user);
}

static void sock_on_close(void *user, int reason, const char *why)
{
    struct ml_h2_conn *c = user;

    c->tp = NULL; /* the seam frees it after this returns */
    if (reason != 0) {
        ML_LOG_DBG("c%u: socket closed: %s", c->id, why);
    }
    conn_destroy(c, reason, why);
}

static const struct ml_sock_ops h2_sock_ops = {
    .on_connected = sock_on_connected,
    .on_read = sock_on_read,
    .on_writable = sock_on_writable,
    .on_close = sock_on_close,
};

/* ---- lifetime -------------------------------------------------------------------------------- */

/* Frees c once its session is gone (or was never made). */
static void conn_free(struct ml_h2_conn *c)
{
    ml_h2_stream_spares_free(c);
    ml_h2_mem_deinit(&c->mem);
    ml_free(c);
}

/* Tears c down: every stream's owner hears on_close(CANCEL), the socket is closed (what it keeps
 * back still goes out), the owner hears on_close unless it closed c itself, c is freed. */
static void conn_destroy(struct ml_h2_conn *c, int reason, const char *why)
{
    c->dead = true;
    ml_loop_defer_cancel(c->loop, &c->flush_defer);
    for (struct ml_list *n; (n = ml_list_first(&c->streams)) != NULL;) {
        ml_h2_stream_gone(c, ML_CONTAINER_OF(n, struct ml_h2_stream, node), NGHTTP2_CANCEL);
    }
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    if (c->tp != NULL) {
        ml_transport_close(c->tp);
        c->tp = NULL;
    }
    if (!c->owner_gone) {
        if (c->server) {
            c->sops->on_close(c->user, c);
        } else {
            c->cops->on_close(c->user, c, reason, why);
        }
    }
    conn_free(c);
}

static struct ml_h2_conn *conn_alloc(struct ml_loop *loop, uint32_t id, bool server,
                                     const struct ml_h2_settings *settings, void *user)
{
    struct ml_h2_conn *c = ml_malloc(sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    /* Not calloc: out[] need not be zeroed. */
    memset(c, 0, offsetof(struct ml_h2_conn, out));
    c->loop = loop;
    c->id = id;
    c->server = server;
    c->user = user;
    c->settings = *settings;
    c->last_read_ms = ml_time_now_ms();
    c->idle_since_ms = c->last_read_ms;
    ml_list_init(&c->streams);
    ml_list_init(&c->spare_streams);
    ml_h2_mem_init(&c->mem);
    ml_h2_gate_init(&c->gate, server);
    return c;
}

int ml_h2_server_new(struct ml_loop *loop, struct ml_transport *tp, uint32_t id,
                     const struct ml_h2_settings *settings, const struct ml_h2_server_ops *ops,
                     void *user, struct ml_h2_conn **out)
{
    struct ml_h2_conn *c = conn_alloc(loop, id, true, settings, user);
    int rv;

    *out = NULL;
    if (c == NULL) {
        return -ENOMEM;
    }
    c->sops = ops;
    c->connected = true;
    if ((rv = session_new(c)) < 0) {
        conn_free(c);
        return rv;
    }
    c->tp = tp;
    ml_transport_set_ops(tp, &h2_sock_ops, c);
    ml_h2_conn_kick(c); /* our SETTINGS go out at the end of this event */
    *out = c;
    return 0;
}

int ml_h2_client_new(struct ml_loop *loop, const struct ml_sock_addr *addr,
                     uint32_t connect_timeout_ms, uint32_t id,
                     const struct ml_h2_settings *settings, ml_transport_wrap_fn *wrap,
                     void *wrap_user, const struct ml_h2_client_ops *ops, void *user,
                     struct ml_h2_conn **out)
{
    struct ml_h2_conn *c = conn_alloc(loop, id, false, settings, user);
    struct ml_sock *sock;
    int rv;

    *out = NULL;
    if (c == NULL) {
        return -ENOMEM;
    }
    c->cops = ops;
    if ((rv = session_new(c)) < 0) {
        conn_free(c);
        return rv;
    }
    rv = ml_sock_connect(loop, addr, connect_timeout_ms, &h2_sock_ops, c, &sock);
    if (rv < 0) {
        nghttp2_session_del(c->ng);
        conn_free(c);
        return rv;
    }
    c->tp = ml_sock_transport(sock);
    if (wrap != NULL) {
        struct ml_transport *tp;

        /* Nothing happens on sock before the loop runs again: it may still change hands. */
        if ((rv = wrap(wrap_user, c->tp, &tp)) < 0) {
            ml_sock_close(sock);
            nghttp2_session_del(c->ng);
            conn_free(c);
            return rv;
        }
        c->tp = tp;
        ml_transport_set_ops(tp, &h2_sock_ops, c);
    }
    *out = c;
    return 0;
}

void ml_h2_conn_close(struct ml_h2_conn *c)
{
    if (c == NULL) {
        return;
    }
    c->owner_gone = true;
    if (c->connected && c->tp != NULL) {
        nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR); /* GOAWAY, best effort */
        if (conn_flush(c) < 0) {
            return; /* torn down already (the session had nothing left to do) */
        }
    }
    conn_destroy(c, 0, "closed");
}

void ml_h2_conn_shutdown(struct ml_h2_conn *c)
{
    if (c->dead || c->goaway_sent || c->owner_gone) {
        return;
    }
    c->goaway_sent = true;
    /* The last stream we processed: every stream the peer opened so far may finish. */
    nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    ml_h2_conn_kick(c);
}

bool ml_h2_conn_going_away(const struct ml_h2_conn *c)
{
    return c->goaway || c->goaway_sent;
}

int ml_h2_conn_ping(struct ml_h2_conn *c)
{
    if (c->dead || !c->connected || c->tp == NULL) {
        return -EPIPE;
    }
    if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) != 0) {
        return -ENOMEM;
    }
    c->ping_pending = true;
    ml_h2_conn_kick(c);
    return 0;
}

bool ml_h2_conn_ping_pending(const struct ml_h2_conn *c)
{
    return c->ping_pending;
}

uint64_t ml_h2_conn_last_read_ms(const struct ml_h2_conn *c)
{
    return c->last_read_ms;
}

uint64_t ml_h2_conn_idle_since_ms(const struct ml_h2_conn *c)
{
    uint64_t t = c->idle_since_ms > c->last_read_ms ? c->idle_since_ms : c->last_read_ms;

    return c->n_streams == 0 ? t : 0;
}

/* A connection with no socket and no loop: its output goes to output(), its input comes from
 * ml_h2_conn_feed (fuzzers and unit tests drive the protocol engine from memory). */
static int mem_conn_new(bool server, uint32_t id, const struct ml_h2_settings *settings,
                        const void *ops, void *user, ml_h2_output_fn *output, void *output_user,
                        struct ml_h2_conn **out)
{
    struct ml_h2_conn *c = conn_alloc(NULL, id, server, settings, user);
    int rv;

    *out = NULL;
    if (c == NULL) {
        return -ENOMEM;
    }
    if (server) {
        c->sops = ops;
    } else {
        c->cops = ops;
    }
    c->connected = true;
    if ((rv = ml_transport_mem_new(output, output_user, &c->tp)) < 0) {
        conn_free(c);
        return rv;
    }
    ml_transport_set_ops(c->tp, &h2_sock_ops, c);
    if ((rv = session_new(c)) < 0) {
        ml_transport_close(c->tp);
        conn_free(c);
        return rv;
    }
    *out = c;
    return 0;
}

int ml_h2_server_new_mem(uint32_t id, const struct ml_h2_settings *settings,
                         const struct ml_h2_server_ops *ops, void *user, ml_h2_output_fn *output,
                         void *output_user, struct ml_h2_conn **out)
{
    return mem_conn_new(true, id, settings, ops, user, output, output_user, out);
}

int ml_h2_client_new_mem(uint32_t id, const struct ml_h2_settings *settings,
                         const struct ml_h2_client_ops *ops, void *user, ml_h2_output_fn *output,
                         void *output_user, struct ml_h2_conn **out)
{
    return mem_conn_new(false, id, settings, ops, user, output, output_user, out);
}

void ml_h2_conn_feed(struct ml_h2_conn *c, const uint8_t *p, size_t n)
{
    sock_on_read(c, p, n);
}

bool ml_h2_conn_greeted(const struct ml_h2_conn *c)
{
    return c->greeted;
}

char *ml_h2_conn_peer_text(const struct ml_h2_conn *c, char *buf, size_t cap)
{
    return ml_transport_peer_text(c->tp, buf, cap);
}

const char *ml_h2_conn_peer_identity(const struct ml_h2_conn *c)
{
    return ml_transport_peer_identity(c->tp);
}

const char *ml_h2_conn_alpn(const struct ml_h2_conn *c)
{
    return ml_transport_alpn(c->tp);
}

uint32_t ml_h2_conn_id(const struct ml_h2_conn *c)
{
    return c->id;
}

uint32_t ml_h2_conn_free_slots(const struct ml_h2_conn *c, uint32_t limit)
{
    uint32_t peer;

    if (c->server || c->dead || !c->connected || c->goaway || c->owner_gone) {
        return 0;
    }
    /* Until the peer's SETTINGS arrive nghttp2 assumes 100 (its default). */
    peer = nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (peer < limit) {
        limit = peer;
    }
    return c->n_streams < limit ? limit - c->n_streams : 0;
}

uint32_t ml_h2_conn_n_streams(const struct ml_h2_conn *c)
{
    return c->n_streams;
}
