/* The call: one downstream stream bridged to one upstream stream, the only object that knows
 * both sides.
 *
 * Back-pressure: each direction has a buffer of CALL_BUFFER_BYTES. DATA from one side
 * goes into it; the other side's stream pulls from it (ops->read) when its connection can send;
 * only then are the bytes consumed on the receiving side, which reopens that peer's HTTP/2
 * window. The windows we advertise are never larger than the buffer, so it cannot overflow, and
 * a slow reader anywhere stops the writer at the other end.
 *
 * Lifetime: the call lives while it has a downstream stream, an upstream stream, or a place in
 * a pool's queue; when all three are gone it is freed at the end of the event (never inside
 * the callback that ended it, where callers up the stack may still refer to it). */
#include "proxy/call.h"

#include "balance/balance.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "grpc/message.h"
#include "grpc/status-t.h"
#include "h2/h2.h"
#include "h2/hdrs.h"
#include "meshlet_config.h"
#include "proxy/proxy_int.h"
#include "proxy/route.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* :path kept for logs and status messages; longer ones are cut. */
#define CALL_PATH_MAX 200

/* Bytes buffered per direction. Windows we advertise are never larger than
 * CONFIG_ML_CALL_BUFFER_BYTES, but until a peer has our SETTINGS it may send HTTP/2's default
 * 65,535 bytes on a stream, so a smaller Kconfig value is raised to that. */
#define CALL_BUFFER_BYTES                                                                          \
    (CONFIG_ML_CALL_BUFFER_BYTES > 65535 ? CONFIG_ML_CALL_BUFFER_BYTES : 65535)

struct ml_call {
    struct ml_proxy *proxy;
    uint64_t id;
    struct ml_snapshot *snap; /* the config the call started on (a reference) */
    struct ml_listener *listener;
    struct ml_cluster *cluster;      /* NULL until picked; then counted in its max_requests */
    struct ml_h2_stream *down;       /* NULL once gone */
    struct ml_h2_stream *up;         /* NULL before it is opened and once gone */
    struct ml_balance_waiter waiter; /* waiter.pool != NULL while waiting for a slot */
    struct ml_h2_hdrs req_hdrs;      /* request headers, until the upstream request is sent */
    struct ml_h2_hdrs req_trailers;  /* from downstream, for upstream after the body */
    struct ml_h2_hdrs resp_trailers; /* from upstream, for downstream after the body */
    struct ml_buf req;               /* request body on its way upstream */
    struct ml_buf resp;              /* response body on its way downstream */
    bool grpc;                       /* content-type application/grpc*: answer in gRPC */
    bool req_ended;                  /* downstream sent END_STREAM */
    bool up_done;      /* the upstream side is over (closed, failed, or never needed): request
                          bytes from now on are dropped */
    bool resp_started; /* response headers went downstream */
    bool resp_ended;   /* the whole response is known (upstream END_STREAM, or our answer) */
    struct ml_defer free_defer;
    char path[CALL_PATH_MAX + 1];
};

static const struct ml_h2_stream_ops down_ops;
static const struct ml_h2_stream_ops up_ops;

/* ---- the end of a call ------------------------------------------------------------------- */

static void call_free_deferred(struct ml_defer *d)
{
    struct ml_call *call = ML_CONTAINER_OF(d, struct ml_call, free_defer);

    ML_LOG_DBG("call %llu: done", (unsigned long long)call->id);
    if (call->cluster != NULL) {
        ml_cluster_call_end(call->cluster);
    }
    ml_buf_deinit(&call->req);
    ml_buf_deinit(&call->resp);
    ml_h2_hdrs_deinit(&call->req_hdrs);
    ml_h2_hdrs_deinit(&call->req_trailers);
    ml_h2_hdrs_deinit(&call->resp_trailers);
    ml_snapshot_unref(call->snap);
    call->proxy->n_live_calls--;
    ml_free(call);
}

static void call_maybe_done(struct ml_call *call)
{
    if (call->down == NULL && call->up == NULL && call->waiter.pool == NULL) {
        ml_loop_defer(call->proxy->loop, &call->free_defer, call_free_deferred);
    }
}

/* Request bytes held for upstream are not going anywhere: let downstream send more. */
static void drop_request_body(struct ml_call *call)
{
    uint8_t scrap[1024];
    size_t held = ml_buf_len(&call->req);

    while (ml_buf_read(&call->req, scrap, sizeof(scrap)) > 0) {
    }
    if (call->down != NULL && held > 0) {
        ml_h2_stream_consume(call->down, held);
    }
}

/* meshlet answers the request itself: a trailers-only gRPC status, or a plain HTTP status with
 * the reason as its body. Once response headers went downstream that is impossible: the
 * downstream stream is reset instead. */
static void call_answer(struct ml_call *call, int grpc_status, int http_status, const char *msg)
{
    struct ml_h2_hdrs h;
    char status[16], value[512];
    int rv;

    call->up_done = true;
    drop_request_body(call);
    if (call->down == NULL) {
        return;
    }
    if (call->resp_started) {
        ML_LOG_INF("call %llu: %s: %s after the response started: reset",
                   (unsigned long long)call->id, call->path, msg);
        ml_h2_stream_reset(call->down, ML_H2_INTERNAL_ERROR);
        call->down = NULL;
        return;
    }
    ML_LOG_INF("call %llu: %s: %s (%s %d)", (unsigned long long)call->id, call->path, msg,
               call->grpc ? "grpc-status" : "HTTP", call->grpc ? grpc_status : http_status);
    call->resp_started = true;
    call->resp_ended = true;
    ml_h2_hdrs_init(&h, CONFIG_ML_MAX_HEADER_LIST_BYTES);
    if (call->grpc) {
        snprintf(status, sizeof(status), "%d", grpc_status);
        rv = ml_h2_hdrs_add_str(&h, ":status", "200");
        rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, "content-type", "application/grpc");
        rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, "grpc-status", status);
        rv = rv < 0 ? rv
                    : ml_h2_hdrs_add_str(&h, "grpc-message",
                                         ml_grpc_message_encode(msg, value, sizeof(value)));
        rv = rv < 0 ? rv : ml_h2_stream_respond(call->down, &h, true);
    } else {
        snprintf(status, sizeof(status), "%d", http_status);
        snprintf(value, sizeof(value), "%s\n", msg);
        rv = ml_h2_hdrs_add_str(&h, ":status", status);
        rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, "content-type", "text/plain; charset=utf-8");
        rv = rv < 0 ? rv : ml_buf_append(&call->resp, (const uint8_t *)value, strlen(value));
        rv = rv < 0 ? rv : ml_h2_stream_respond(call->down, &h, false);
    }
    ml_h2_hdrs_deinit(&h);
    if (rv < 0) {
        ml_h2_stream_reset(call->down, ML_H2_INTERNAL_ERROR);
        call->down = NULL;
    }
}

static void call_unavailable(struct ml_call *call, const char *msg)
{
    call_answer(call, ML_GRPC_UNAVAILABLE, 503, msg);
}

/* ---- upstream -------------------------------------------------------------------------- */

static void call_open_upstream(struct ml_call *call, struct ml_h2_conn *conn)
{
    bool no_body =
        call->req_ended && ml_buf_len(&call->req) == 0 && call->req_trailers.n_fields == 0;
    char msg[160];
    int rv;

    rv = ml_h2_conn_request(conn, &call->req_hdrs, no_body, &up_ops, call, &call->up);
    if (rv < 0) {
        snprintf(msg, sizeof(msg), "cluster %s: upstream connection c%u cannot take the call (%s)",
                 ml_cluster_name(call->cluster), ml_h2_conn_id(conn), strerror(-rv));
        call_unavailable(call, msg);
        return;
    }
    ML_LOG_DBG("call %llu: %s -> cluster %s c%u s%d", (unsigned long long)call->id, call->path,
               ml_cluster_name(call->cluster), ml_h2_conn_id(conn), ml_h2_stream_id(call->up));
    ml_h2_hdrs_deinit(&call->req_hdrs); /* nghttp2 copied them */
}

static void waiter_on_ready(struct ml_balance_waiter *w, struct ml_h2_conn *conn)
{
    struct ml_call *call = ML_CONTAINER_OF(w, struct ml_call, waiter);

    call_open_upstream(call, conn);
    call_maybe_done(call);
}

static void waiter_on_fail(struct ml_balance_waiter *w, int reason, const char *why)
{
    struct ml_call *call = ML_CONTAINER_OF(w, struct ml_call, waiter);

    call_unavailable(call, why);
    call_maybe_done(call);
}

static int up_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    struct ml_call *call = owner;
    int rv;

    if (trailers) {
        ml_h2_hdrs_move(&call->resp_trailers, hdrs);
        return 0; /* on_end follows */
    }
    if (call->down == NULL) {
        return 0;
    }
    /* Relayed as they came; end_stream keeps a trailers-only response trailers-only. */
    if ((rv = ml_h2_stream_respond(call->down, hdrs, end_stream)) < 0) {
        ML_LOG_INF("call %llu: %s: cannot relay the response headers (%s)",
                   (unsigned long long)call->id, call->path, strerror(-rv));
        return rv; /* h2 resets upstream; our on_close resets downstream */
    }
    call->resp_started = true;
    return 0;
}

static int up_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct ml_call *call = owner;
    int rv;

    if (call->down == NULL) {
        ml_h2_stream_consume(call->up, n); /* nobody to relay to */
        return 0;
    }
    if ((rv = ml_buf_append(&call->resp, p, n)) < 0) {
        /* -ENOBUFS would mean the peer ignored our window; -ENOMEM */
        ML_LOG_INF("call %llu: response body: %s", (unsigned long long)call->id, strerror(-rv));
        return rv;
    }
    ml_h2_stream_resume(call->down);
    return 0;
}

static void up_on_end(void *owner)
{
    struct ml_call *call = owner;

    call->resp_ended = true;
    if (call->down != NULL) {
        ml_h2_stream_resume(call->down); /* the end of the body, and trailers, can go */
    }
}

/* The request body for upstream (upstream's connection pulls it). */
static ssize_t up_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    struct ml_call *call = owner;
    size_t n = ml_buf_read(&call->req, buf, cap);

    if (n > 0 && call->down != NULL) {
        ml_h2_stream_consume(call->down, n); /* taken by upstream: downstream may send more */
    }
    if (ml_buf_len(&call->req) == 0 && call->req_ended) {
        *eof = true;
        *trailers = &call->req_trailers;
    } else if (n == 0) {
        return -EAGAIN;
    }
    return (ssize_t)n;
}

static void up_on_close(void *owner, uint32_t error_code)
{
    struct ml_call *call = owner;
    char msg[160];

    call->up = NULL;
    call->up_done = true;
    if (!call->resp_ended) {
        if (!call->resp_started) {
            if (error_code == ML_H2_REFUSED_STREAM) {
                snprintf(msg, sizeof(msg), "cluster %s: upstream refused the stream (GOAWAY)",
                         ml_cluster_name(call->cluster));
            } else if (error_code == ML_H2_CANCEL) {
                snprintf(msg, sizeof(msg), "cluster %s: upstream connection lost",
                         ml_cluster_name(call->cluster));
            } else {
                snprintf(msg, sizeof(msg), "cluster %s: upstream reset the stream (0x%x)",
                         ml_cluster_name(call->cluster), error_code);
            }
            call_unavailable(call, msg);
        } else if (call->down != NULL) {
            ML_LOG_INF("call %llu: %s: upstream ended mid-response (0x%x): reset",
                       (unsigned long long)call->id, call->path, error_code);
            ml_h2_stream_reset(call->down,
                               error_code != ML_H2_NO_ERROR ? error_code : ML_H2_CANCEL);
            call->down = NULL;
        }
    }
    drop_request_body(call);
    call_maybe_done(call);
}

static const struct ml_h2_stream_ops up_ops = {
    .on_headers = up_on_headers,
    .on_data = up_on_data,
    .on_end = up_on_end,
    .read = up_read,
    .on_close = up_on_close,
};

/* ---- downstream -------------------------------------------------------------------------- */

static int down_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    struct ml_call *call = owner;

    if (!call->up_done) {
        ml_h2_hdrs_move(&call->req_trailers, hdrs); /* sent upstream after the body */
    }
    return 0; /* on_end follows */
}

static int down_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct ml_call *call = owner;
    int rv;

    if (call->up_done) {
        ml_h2_stream_consume(call->down, n); /* nowhere to go */
        return 0;
    }
    if ((rv = ml_buf_append(&call->req, p, n)) < 0) {
        ML_LOG_INF("call %llu: request body: %s", (unsigned long long)call->id, strerror(-rv));
        return rv;
    }
    if (call->up != NULL) {
        ml_h2_stream_resume(call->up);
    }
    return 0;
}

static void down_on_end(void *owner)
{
    struct ml_call *call = owner;

    call->req_ended = true;
    if (call->up != NULL) {
        ml_h2_stream_resume(call->up);
    }
}

/* The response body for downstream (downstream's connection pulls it). */
static ssize_t down_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                         const struct ml_h2_hdrs **trailers)
{
    struct ml_call *call = owner;
    size_t n = ml_buf_read(&call->resp, buf, cap);

    if (n > 0 && call->up != NULL) {
        ml_h2_stream_consume(call->up, n); /* taken by downstream: upstream may send more */
    }
    if (ml_buf_len(&call->resp) == 0 && call->resp_ended) {
        *eof = true;
        *trailers = &call->resp_trailers;
    } else if (n == 0) {
        return -EAGAIN;
    }
    return (ssize_t)n;
}

static void down_on_close(void *owner, uint32_t error_code)
{
    struct ml_call *call = owner;

    call->down = NULL;
    ml_balance_waiter_cancel(&call->waiter);
    if (call->up != NULL) {
        /* The client went away (or the call is complete downstream while upstream still has
         * the request open): nobody wants the rest. */
        if (error_code != ML_H2_NO_ERROR || !call->resp_ended) {
            ML_LOG_DBG("call %llu: downstream closed (0x%x): cancelling upstream",
                       (unsigned long long)call->id, error_code);
        }
        ml_h2_stream_reset(call->up, ML_H2_CANCEL);
        call->up = NULL;
    }
    call->up_done = true;
    call_maybe_done(call);
}

static const struct ml_h2_stream_ops down_ops = {
    .on_headers = down_on_headers,
    .on_data = down_on_data,
    .on_end = down_on_end,
    .read = down_read,
    .on_close = down_on_close,
};

/* ---- the start ----------------------------------------------------------------------------- */

static struct ml_slice field(const struct ml_h2_hdrs *h, const char *name)
{
    int i = ml_h2_hdrs_find(h, name, 0);

    return i >= 0 ? ml_h2_hdrs_value(h, (uint32_t)i) : (struct ml_slice){(const uint8_t *)"", 0};
}

void ml_call_start(struct ml_proxy *p, struct ml_listener *l, struct ml_h2_stream *down,
                   struct ml_h2_hdrs *hdrs, bool end_stream)
{
    struct ml_route_request req;
    struct ml_h2_conn *conn;
    struct ml_call *call;
    struct ml_slice path;
    char msg[CALL_PATH_MAX + 160];
    int route, rv;

    if ((call = ml_calloc(1, sizeof(*call))) == NULL) {
        ML_LOG_WRN("c%u s%d: out of memory for a call: refused",
                   ml_h2_conn_id(ml_h2_stream_conn(down)), ml_h2_stream_id(down));
        return; /* not attached: h2 refuses the stream */
    }
    call->proxy = p;
    call->id = ++p->call_ids;
    call->snap = ml_snapshot_ref(p->snap);
    call->listener = l;
    call->down = down;
    call->waiter.on_ready = waiter_on_ready;
    call->waiter.on_fail = waiter_on_fail;
    call->req_ended = end_stream;
    ml_h2_hdrs_init(&call->req_hdrs, CONFIG_ML_MAX_HEADER_LIST_BYTES);
    ml_h2_hdrs_init(&call->req_trailers, CONFIG_ML_MAX_HEADER_LIST_BYTES);
    ml_h2_hdrs_init(&call->resp_trailers, CONFIG_ML_MAX_HEADER_LIST_BYTES);
    ml_buf_init(&call->req, CALL_BUFFER_BYTES);
    ml_buf_init(&call->resp, CALL_BUFFER_BYTES);
    ml_h2_hdrs_move(&call->req_hdrs, hdrs);
    p->n_live_calls++;
    ml_h2_stream_attach(down, &down_ops, call);

    path = field(&call->req_hdrs, ":path");
    snprintf(call->path, sizeof(call->path), "%.*s", (int)path.n, (const char *)path.p);
    call->grpc = ml_grpc_is_content_type(field(&call->req_hdrs, "content-type"));
    req.path = path;
    req.authority = field(&call->req_hdrs, ":authority");
    if (req.authority.n == 0) {
        req.authority = field(&call->req_hdrs, "host");
    }
    req.hdrs = &call->req_hdrs;

    route = ml_route_match(call->snap, l->index, &req);
    if (route < 0) {
        snprintf(msg, sizeof(msg), "no route for %s on listener %s", call->path, l->cfg->name);
        call_answer(call, ML_GRPC_UNIMPLEMENTED, 404, msg);
        return;
    }
    call->cluster = ml_balance_cluster(
        p->balance, ml_route_pick_cluster(&call->snap->routes[route], ml_proxy_random(p)));
    if (ml_cluster_call_begin(call->cluster, msg, sizeof(msg)) < 0) {
        call->cluster = NULL; /* not counted */
        call_unavailable(call, msg);
        return;
    }
    rv = ml_cluster_pick(call->cluster, &call->waiter, &conn, msg, sizeof(msg));
    if (rv == 0) {
        call_open_upstream(call, conn);
    } else if (rv != -EINPROGRESS) {
        call_unavailable(call, msg);
    }
}
