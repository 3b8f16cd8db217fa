/* The call: one downstream stream bridged to one upstream stream, the only object that knows
 * both sides.
 *
 * Back-pressure: each direction has a buffer of CALL_BUFFER_BYTES. DATA from one side
 * goes into it; the other side's stream pulls from it (ops->read) when its connection can send;
 * only then are the bytes consumed on the receiving side, which reopens that peer's HTTP/2
 * window. The windows we advertise are never larger than the buffer, so it cannot overflow, and
 * a slow reader anywhere stops the writer at the other end.
 *
 * Before the upstream: the request-policy steps (proxy/step.h: route, deadline, pick) decide
 * where the call goes or answer it; this file only bridges the two sides and ends attempts.
 *
 * Lifetime: the call lives while it has a downstream stream, an upstream stream, or a place in
 * a pool's queue; when all three are gone it is freed at the end of the event (never inside
 * the callback that ended it, where callers up the stack may still refer to it). */
#include "proxy/call.h"

#include "balance/balance.h"
#include "balance/lb.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/fmt.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/stats.h"
#include "core/timer.h"
#include "grpc/framing.h"
#include "grpc/message.h"
#include "grpc/status-t.h"
#include "grpc/timeout.h"
#include "h2/h2.h"
#include "h2/hdrs.h"
#include "meshlet_config.h"
#include "proxy/call_int.h"
#include "proxy/obs.h"
#include "proxy/proxy_int.h"
#include "proxy/step.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const struct ml_h2_stream_ops down_ops;
static const struct ml_h2_stream_ops up_ops;
static void call_attempt_over(struct ml_call *call, enum ml_attempt_end end, uint32_t h2_error);

/* What a missing header field reads as: empty, never NULL. */
static const struct ml_slice absent_field = {(const uint8_t *)"", 0};

/* The value of header name in h, or an empty slice. */
static struct ml_slice field(const struct ml_h2_hdrs *h, const char *name)
{
    int i = ml_h2_hdrs_find(h, name, 0);

    return i >= 0 ? ml_h2_hdrs_value(h, (uint32_t)i) : absent_field;
}

struct ml_slice ml_call_header(const struct ml_call *call, const char *name)
{
    return field(&call->req_hdrs, name);
}

/* s is the name lit (of lit_len bytes): names arrive lower case (HTTP/2 forbids upper case),
 * so an exact compare. */
static bool name_is(struct ml_slice s, const char *lit, size_t lit_len)
{
    return s.n == lit_len && memcmp(s.p, lit, lit_len) == 0;
}

#define LIT(s) s, sizeof(s) - 1

void ml_call_fields_find(const struct ml_h2_hdrs *h, struct ml_call_fields *f)
{
    struct ml_slice *want;
    struct ml_slice *absent_empty[] = {&f->path, &f->authority, &f->host, &f->method,
                                       &f->content_type};

    *f = (struct ml_call_fields){0};
    for (uint32_t i = 0; i < h->n_fields; i++) {
        struct ml_slice name = ml_h2_hdrs_name(h, i);

        /* by length first: most names have none of these lengths */
        switch (name.n) {
        case 4:
            want = name_is(name, LIT("host")) ? &f->host : NULL;
            break;
        case 5:
            want = name_is(name, LIT(":path")) ? &f->path : NULL;
            break;
        case 7:
            want = name_is(name, LIT(":method")) ? &f->method : NULL;
            break;
        case 10:
            want = name_is(name, LIT(":authority")) ? &f->authority : NULL;
            break;
        case 12:
            want = name_is(name, LIT("content-type"))   ? &f->content_type
                   : name_is(name, LIT("grpc-timeout")) ? &f->grpc_timeout
                                                        : NULL;
            break;
        default:
            want = NULL;
            break;
        }
        if (want != NULL && want->p == NULL) {
            *want = ml_h2_hdrs_value(h, i);
        }
    }
    for (size_t i = 0; i < sizeof(absent_empty) / sizeof(absent_empty[0]); i++) {
        if (absent_empty[i]->p == NULL) {
            *absent_empty[i] = absent_field; /* as field() says of a missing one */
        }
    }
}

/* ---- spare calls -------------------------------------------------------------------------- */

void ml_call_spares_init(struct ml_proxy *p)
{
    ml_list_init(&p->spare_calls);
    p->n_spare_calls = 0;
    ml_buf_spare_init(&p->spare_chunks, CALL_SPARE_CHUNKS, CALL_SPARE_SMALL_CHUNKS);
    p->up_refs = NULL;
    p->cap_up_refs = 0;
}

static void call_free(struct ml_call *call)
{
    ml_timer_free(call->expiry);
    ml_timer_free(call->stall);
    ml_timer_free(call->hold);
    ml_h2_hdrs_deinit(&call->req_hdrs);
    ml_h2_hdrs_deinit(&call->req_trailers);
    ml_h2_hdrs_deinit(&call->resp_trailers);
    ml_free(call);
}

void ml_call_spares_free(struct ml_proxy *p)
{
    for (struct ml_list *n; (n = ml_list_first(&p->spare_calls)) != NULL;) {
        ml_list_remove(n);
        call_free(ML_CONTAINER_OF(n, struct ml_call, spare));
    }
    p->n_spare_calls = 0;
    ml_buf_spare_deinit(&p->spare_chunks);
    ml_free(p->up_refs);
    p->up_refs = NULL;
}

/* A zeroed call for p, with header lists ready: a spare one (whose lists keep their memory and
 * whose deadline and stall timers, disarmed, call back the same functions on the same object),
 * else a new one. NULL when out of memory. */
static struct ml_call *call_get(struct ml_proxy *p)
{
    struct ml_list *n = ml_list_first(&p->spare_calls);
    struct ml_h2_hdrs req_hdrs, req_trailers, resp_trailers;
    struct ml_timer *expiry, *stall;
    struct ml_call *call;

    if (n == NULL) {
        if ((call = ml_calloc(1, sizeof(*call))) == NULL) {
            return NULL;
        }
        ml_h2_hdrs_init(&call->req_hdrs, CONFIG_ML_MAX_HEADER_LIST_BYTES);
        ml_h2_hdrs_init(&call->req_trailers, CONFIG_ML_MAX_HEADER_LIST_BYTES);
        ml_h2_hdrs_init(&call->resp_trailers, CONFIG_ML_MAX_HEADER_LIST_BYTES);
        return call;
    }
    ml_list_remove(n);
    p->n_spare_calls--;
    call = ML_CONTAINER_OF(n, struct ml_call, spare);
    req_hdrs = call->req_hdrs;
    req_trailers = call->req_trailers;
    resp_trailers = call->resp_trailers;
    expiry = call->expiry;
    stall = call->stall;
    memset(call, 0, sizeof(*call));
    call->req_hdrs = req_hdrs;
    call->req_trailers = req_trailers;
    call->resp_trailers = resp_trailers;
    call->expiry = expiry;
    call->stall = stall;
    return call;
}

/* The finished call goes to its proxy's spares (bounded by CALL_SPARES), or is freed. */
static void call_put(struct ml_call *call)
{
    struct ml_proxy *p = call->proxy;

    if (p->n_spare_calls >= CALL_SPARES) {
        call_free(call);
        return;
    }
    if (call->expiry != NULL) {
        ml_timer_disarm(call->expiry);
    }
    if (call->stall != NULL) {
        ml_timer_disarm(call->stall);
    }
    ml_timer_free(call->hold); /* a retry's or a fault's: each makes its own */
    call->hold = NULL;
    ml_h2_hdrs_trim(&call->req_hdrs, CALL_HDRS_KEEP_BYTES);
    ml_h2_hdrs_trim(&call->req_trailers, CALL_HDRS_KEEP_BYTES);
    ml_h2_hdrs_trim(&call->resp_trailers, CALL_HDRS_KEEP_BYTES);
    ml_list_add_tail(&p->spare_calls, &call->spare);
    p->n_spare_calls++;
}

/* ---- the end of a call ------------------------------------------------------------------- */

static void call_free_deferred(struct ml_defer *d)
{
    struct ml_call *call = ML_CONTAINER_OF(d, struct ml_call, free_defer);

    ML_LOG_DBG("call %llu: done", (unsigned long long)call->id);
    ml_call_obs_end(&call->obs, call->proxy, call->path);
    ml_balance_waiter_release(&call->waiter); /* a no-op: every way the upstream ends did it */
    call_attempt_over(call, ML_ATTEMPT_NOT_SENT, 0); /* a no-op too, for the same reason */
    if (call->cluster != NULL) {
        ml_cluster_call_end(call->cluster);
    }
    ml_buf_deinit(&call->req);
    ml_buf_deinit(&call->req_copy);
    ml_buf_deinit(&call->resp);
    ml_snapshot_unref(call->snap);
    call->proxy->n_live_calls--;
    ml_proxy_call_gone(call->proxy);
    call_put(call);
}

void ml_call_maybe_done(struct ml_call *call)
{
    if (call->down == NULL && call->up == NULL && call->waiter.pool == NULL) {
        ml_loop_defer(call->proxy->loop, &call->free_defer, call_free_deferred);
    }
}

/* The attempt on the host the balance picked is over, as end says: the host's counters and the
 * cluster's policy hear it (balance/balance.h). A no-op when no attempt is in progress. */
static void call_attempt_over(struct ml_call *call, enum ml_attempt_end end, uint32_t h2_error)
{
    struct ml_attempt_outcome o = {
        .end = end,
        .grpc_status = end == ML_ATTEMPT_RESPONDED ? call->up_grpc_status : -1,
        .http_status = call->up_http_status,
        .h2_error = h2_error,
    };

    if (call->cluster != NULL) {
        ml_cluster_attempt_end(call->cluster, &call->waiter, &o);
    }
    if (call->retrying) { /* the retried attempt is over (or the call, during its backoff) */
        call->retrying = false;
        ml_cluster_retry_end(call->cluster);
    }
    call->up_grpc_status = -1;
    call->up_http_status = 0;
}

/* The upstream stream is over (or was never opened on the connection the balance gave): its
 * stream slot stops counting in the downstream connection's fair share of the cluster, and the
 * attempt ends as end says. */
static void call_up_gone(struct ml_call *call, enum ml_attempt_end end, uint32_t h2_error)
{
    call->up = NULL;
    ml_balance_waiter_release(&call->waiter);
    call_attempt_over(call, end, h2_error);
}

/* The call stops waiting for a stream slot (client gone, deadline, stall): that attempt never
 * reached its host. */
static void call_cancel_wait(struct ml_call *call)
{
    if (call->waiter.pool != NULL) {
        ml_balance_waiter_cancel(&call->waiter);
        call_attempt_over(call, ML_ATTEMPT_NOT_SENT, 0);
    }
}

/* Request bytes held for upstream are not going anywhere: let downstream send more. */
static void drop_request_body(struct ml_call *call)
{
    uint8_t scrap[1024];
    size_t held = ml_buf_len(&call->req) - call->req_reread;

    while (ml_buf_read(&call->req, scrap, sizeof(scrap)) > 0) {
    }
    call->req_reread = 0;
    call->no_replay = true;
    ml_buf_deinit(&call->req_copy);
    if (call->down != NULL && held > 0) {
        ml_h2_stream_consume(call->down, held);
    }
}

/* meshlet answers the request itself: a trailers-only gRPC status, or a plain HTTP status with
 * the reason as its body. Once response headers went downstream that is impossible: the
 * downstream stream is reset instead. */
void ml_call_answer(struct ml_call *call, int grpc_status, int http_status, const char *msg)
{
    struct ml_h2_hdrs h;
    char status[16], value[512];
    int rv;

    call->up_done = true;
    drop_request_body(call);
    if (call->down == NULL) {
        return;
    }
    ml_call_obs_fail(&call->obs, msg);
    if (call->resp_started) {
        ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF,
                       "call %llu: %s: %s after the response started: reset",
                       (unsigned long long)call->id, call->path, msg);
        ml_h2_stream_reset(call->down, ML_H2_INTERNAL_ERROR);
        call->down = NULL;
        return;
    }
    ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF, "call %llu: %s: %s (%s %d)",
                   (unsigned long long)call->id, call->path, msg,
                   call->grpc ? "grpc-status" : "HTTP", call->grpc ? grpc_status : http_status);
    call->resp_started = true;
    call->resp_ended = true;
    ml_call_obs_answer(&call->obs, call->grpc, grpc_status, http_status);
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

int ml_call_http_status(int grpc_status)
{
    switch (grpc_status) {
    case ML_GRPC_INVALID_ARGUMENT:
        return 400;
    case ML_GRPC_UNAUTHENTICATED:
        return 401;
    case ML_GRPC_PERMISSION_DENIED:
        return 403;
    case ML_GRPC_NOT_FOUND:
        return 404;
    case ML_GRPC_RESOURCE_EXHAUSTED:
        return 429;
    case ML_GRPC_UNIMPLEMENTED:
        return 501;
    case ML_GRPC_UNAVAILABLE:
        return 503;
    case ML_GRPC_DEADLINE_EXCEEDED:
        return 504;
    default:
        return 500;
    }
}

void ml_call_unavailable(struct ml_call *call, const char *msg)
{
    ml_call_answer(call, ML_GRPC_UNAVAILABLE, 503, msg);
}

/* ---- upstream -------------------------------------------------------------------------- */

/* Room for n references in p->up_refs (one array, reused call after call). 0; -ENOMEM. */
static int up_refs_reserve(struct ml_proxy *p, size_t n)
{
    struct ml_h2_field_ref *refs;
    size_t cap = p->cap_up_refs != 0 ? p->cap_up_refs : 32;

    if (n <= p->cap_up_refs) {
        return 0;
    }
    while (cap < n) {
        cap *= 2; /* n is bounded by the request's header list (max_header_list_bytes / 32) */
    }
    if ((refs = ml_realloc(p->up_refs, cap * sizeof(*refs))) == NULL) {
        return -ENOMEM;
    }
    p->up_refs = refs;
    p->cap_up_refs = cap;
    return 0;
}

/* The request headers for upstream, by reference in call->proxy->up_refs (*n of them): as they
 * came, except grpc-timeout, which says the time left of the call's deadline (right after the
 * pseudo-headers, as gRPC asks; its text in timeout), and grpc-previous-rpc-attempts on a retry
 * (its text in attempts). The references borrow call->req_hdrs, timeout and attempts. 0;
 * -ENOBUFS (the list would pass the header list limit, as the request's own list may not);
 * -ENOMEM. */
static int upstream_headers(struct ml_call *call, char *timeout, char *attempts, size_t *n)
{
    const struct ml_h2_hdrs *h = &call->req_hdrs;
    bool rewrite = call->has_deadline && call->grpc; /* plain HTTP passes as it came */
    bool timeout_added = !rewrite;
    uint64_t now = ml_time_now_ms();
    struct ml_h2_field_ref *f, grpc_timeout;
    size_t list_bytes = 0;
    int rv;

    if ((rv = up_refs_reserve(call->proxy, h->n_fields + 2u)) < 0) {
        return rv;
    }
    f = call->proxy->up_refs;
    *n = 0;
    /* At least 1 ms: an expired call is ended by its timer, not by upstream. */
    ml_grpc_timeout_format(call->deadline_ms > now ? call->deadline_ms - now : 1, timeout,
                           ML_GRPC_TIMEOUT_TEXT_MAX);
    grpc_timeout = (struct ml_h2_field_ref){
        .name = {(const uint8_t *)"grpc-timeout", 12},
        .value = {(const uint8_t *)timeout, strlen(timeout)},
    };
    for (uint32_t i = 0; i < h->n_fields; i++) {
        struct ml_slice name = ml_h2_hdrs_name(h, i);

        if (!timeout_added && (name.n == 0 || name.p[0] != ':')) {
            timeout_added = true;
            f[(*n)++] = grpc_timeout;
        }
        if (rewrite && name.n == 12 && memcmp(name.p, "grpc-timeout", 12) == 0) {
            continue; /* names arrive lower case: HTTP/2 forbids upper case */
        }
        if (name.n == 26 && memcmp(name.p, "grpc-previous-rpc-attempts", 26) == 0) {
            continue; /* ours says it (below): the client's attempts are not this hop's */
        }
        f[(*n)++] = (struct ml_h2_field_ref){name, ml_h2_hdrs_value(h, i), h->fields[i].never_index,
                                             h->fields[i].from_peer};
    }
    if (!timeout_added) {
        f[(*n)++] = grpc_timeout;
    }
    if (call->n_attempts > 0) {
        /* gRPC's retry design (A6): a retried attempt says how many went before it */
        f[(*n)++] = (struct ml_h2_field_ref){
            .name = {(const uint8_t *)"grpc-previous-rpc-attempts", 26},
            .value = {(const uint8_t *)attempts,
                      ml_fmt_u64(attempts, ML_FMT_U64_DIGITS + 1, call->n_attempts)},
        };
    }
    for (size_t i = 0; i < *n; i++) {
        list_bytes += f[i].name.n + f[i].value.n + 32; /* RFC 9113 6.5.2 */
    }
    return list_bytes > CONFIG_ML_MAX_HEADER_LIST_BYTES ? -ENOBUFS : 0;
}

int ml_call_open_upstream(struct ml_call *call, struct ml_h2_conn *conn)
{
    bool no_body =
        call->req_ended && ml_buf_len(&call->req) == 0 && call->req_trailers.n_fields == 0;
    char timeout[ML_GRPC_TIMEOUT_TEXT_MAX], attempts[ML_FMT_U64_DIGITS + 1], msg[160];
    size_t n;
    int rv;

    rv = upstream_headers(call, timeout, attempts, &n);
    if (rv == 0) {
        rv = ml_h2_conn_request_refs(conn, call->proxy->up_refs, n, no_body, &up_ops, call,
                                     &call->up);
    }
    if (rv == 0) {
        ml_call_obs_upstream_open(&call->obs); /* the upstream's own time starts here */
    }
    if (rv < 0) {
        call_up_gone(call, ML_ATTEMPT_NOT_SENT, 0);
        /* Never sent (a connection that is closing): as safe to send again as a refused one. */
        if (ml_call_retry(call, ML_RETRY_REFUSED, -1)) {
            return 0;
        }
        snprintf(msg, sizeof(msg), "cluster %s: upstream connection c%u cannot take the call (%s)",
                 ml_cluster_name(call->cluster), ml_h2_conn_id(conn), strerror(-rv));
        ml_call_unavailable(call, msg);
        return rv;
    }
    call->n_attempts++;
    ML_LOG_DBG("call %llu: %s -> cluster %s c%u s%d", (unsigned long long)call->id, call->path,
               ml_cluster_name(call->cluster), ml_h2_conn_id(conn), ml_h2_stream_id(call->up));
    return 0;
}

static void waiter_on_ready(struct ml_balance_waiter *w, struct ml_h2_conn *conn)
{
    struct ml_call *call = ML_CONTAINER_OF(w, struct ml_call, waiter);

    ml_call_open_upstream(call, conn);
    ml_call_maybe_done(call);
}

static void waiter_on_fail(struct ml_balance_waiter *w, int reason, const char *why)
{
    struct ml_call *call = ML_CONTAINER_OF(w, struct ml_call, waiter);

    call_attempt_over(call, ML_ATTEMPT_CONNECT_FAILED, 0);
    if (!ml_call_retry(call, ML_RETRY_CONNECT_FAILED, -1)) {
        ml_call_unavailable(call, why);
    }
    ml_call_maybe_done(call);
}

/* :status and grpc-status of an upstream header block (the first of each; empty when absent),
 * in one walk with exact compares: names arrive lower case (nghttp2 refuses upper case), and
 * grpc-status is usually absent from the headers, which two case-insensitive lookups scanned in
 * full each (~250 instructions per call). Trailers carry no pseudo-header (nghttp2 refuses one
 * there), so :status stays empty for them. */
static void status_fields(const struct ml_h2_hdrs *h, struct ml_slice *status,
                          struct ml_slice *grpc)
{
    *status = absent_field;
    *grpc = absent_field;
    for (uint32_t i = h->n_fields; i-- > 0;) {
        struct ml_slice name = ml_h2_hdrs_name(h, i);

        /* from the last: the first of each name wins */
        if (name_is(name, LIT(":status"))) {
            *status = ml_h2_hdrs_value(h, i);
        } else if (name_is(name, LIT("grpc-status"))) {
            *grpc = ml_h2_hdrs_value(h, i);
        }
    }
}

/* The attempt's outcome as upstream says it: :status, grpc-status (trailers, or trailers-only
 * headers), for the call and for its observation; each field looked up once for both. */
static void call_note_status(struct ml_call *call, const struct ml_h2_hdrs *hdrs, bool trailers)
{
    struct ml_slice status, grpc;
    int n = 0;

    status_fields(hdrs, &status, &grpc);
    if (trailers) {
        status = absent_field; /* as before: none in trailers */
    }

    ml_call_obs_status(&call->obs, status, grpc);
    if (status.n > 0) {
        for (size_t i = 0; i < status.n && status.p[i] >= '0' && status.p[i] <= '9' && n < 1000;
             i++) {
            n = n * 10 + (status.p[i] - '0');
        }
        call->up_http_status = n;
    }
    if (grpc.n > 0) {
        n = 0;
        /* gRPC status codes are 0..16; more digits than that is not a status we relay as one */
        for (size_t i = 0; i < grpc.n && i < 3 && grpc.p[i] >= '0' && grpc.p[i] <= '9'; i++) {
            n = n * 10 + (grpc.p[i] - '0');
        }
        call->up_grpc_status = n;
    }
}

static int up_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    struct ml_call *call = owner;
    int rv;

    call_note_status(call, hdrs, trailers);
    if (trailers) {
        ml_h2_hdrs_move(&call->resp_trailers, hdrs);
        return 0; /* on_end follows */
    }
    if (call->down == NULL) {
        return 0;
    }
    if (end_stream && call->up_grpc_status >= 0 &&
        ml_call_retry_wanted(call, ML_RETRY_STATUS, call->up_grpc_status)) {
        /* A trailers-only answer this call retries on: nothing goes downstream yet; up_on_close
         * sends the call again, or relays this answer when it cannot go after all. */
        ml_h2_hdrs_move(&call->resp_trailers, hdrs);
        call->resp_held = true;
        call->held_grpc_status = call->up_grpc_status;
        return 0;
    }
    /* Relayed as they came; end_stream keeps a trailers-only response trailers-only. */
    if ((rv = ml_h2_stream_respond(call->down, hdrs, end_stream)) < 0) {
        ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF,
                       "call %llu: %s: cannot relay the response headers (%s)",
                       (unsigned long long)call->id, call->path, strerror(-rv));
        return rv; /* h2 resets upstream; our on_close resets downstream */
    }
    call->resp_started = true;
    call->no_replay = true; /* upstream answered: it took the call; the copy can go */
    ml_buf_deinit(&call->req_copy);
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
    call->moved_ms = ml_time_now_ms();
    if ((rv = ml_buf_append(&call->resp, p, n)) < 0) {
        /* -ENOBUFS would mean the peer ignored our window; -ENOMEM */
        ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF, "call %llu: response body: %s",
                       (unsigned long long)call->id, strerror(-rv));
        return rv;
    }
    if (call->grpc) {
        ml_grpc_framer_feed(&call->resp_framer, p, n);
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

int ml_call_rewind_request(struct ml_call *call)
{
    struct ml_buf all;
    uint8_t scrap[1024];
    size_t n, again = ml_buf_len(&call->req_copy);

    if (again == 0) {
        return 0;
    }
    /* Twice a buffer: what went (at most a buffer) and what the window lets come. */
    ml_buf_init_spare(&all, 2 * (size_t)CALL_BUFFER_BYTES, call->req.spare);
    while ((n = ml_buf_read(&call->req_copy, scrap, sizeof(scrap))) > 0) {
        if (ml_buf_append(&all, scrap, n) < 0) {
            ml_buf_deinit(&all);
            return -ENOMEM;
        }
    }
    while ((n = ml_buf_read(&call->req, scrap, sizeof(scrap))) > 0) {
        if (ml_buf_append(&all, scrap, n) < 0) {
            ml_buf_deinit(&all);
            return -ENOMEM;
        }
    }
    ml_buf_deinit(&call->req);
    call->req = all;
    call->req_reread += again;
    return 0;
}

/* The request body for upstream (upstream's connection pulls it). */
static ssize_t up_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    struct ml_call *call = owner;
    size_t n = ml_buf_read(&call->req, buf, cap),
           again = n < call->req_reread ? n : call->req_reread;

    call->req_reread -= again;
    if (n > 0) {
        call->moved_ms = ml_time_now_ms();
    }
    if (n > again && call->down != NULL) {
        /* taken by upstream: downstream may send more */
        ml_h2_stream_consume(call->down, n - again);
    }
    if (n > 0 && !call->no_replay && ml_buf_append(&call->req_copy, buf, n) < 0) {
        call->no_replay = true; /* more than a buffer's worth went: no replay */
        ml_buf_deinit(&call->req_copy);
    }
    if (ml_buf_len(&call->req) == 0 && call->req_ended) {
        *eof = true;
        *trailers = &call->req_trailers;
    } else if (n == 0) {
        return -EAGAIN;
    }
    return (ssize_t)n;
}

/* A held trailers-only answer (up_on_headers) goes downstream after all: the retry could not
 * go. */
static void call_relay_held(struct ml_call *call)
{
    struct ml_h2_hdrs h;

    call->resp_held = false;
    ml_h2_hdrs_init(&h, CONFIG_ML_MAX_HEADER_LIST_BYTES);
    ml_h2_hdrs_move(&h, &call->resp_trailers);
    if (call->down != NULL) {
        if (ml_h2_stream_respond(call->down, &h, true) < 0) {
            ml_h2_stream_reset(call->down, ML_H2_INTERNAL_ERROR);
            call->down = NULL;
        } else {
            call->resp_started = true;
        }
    }
    ml_h2_hdrs_deinit(&h);
}

static void up_on_close(void *owner, uint32_t error_code)
{
    struct ml_call *call = owner;
    char msg[160];

    call_up_gone(call,
                 call->resp_ended                     ? ML_ATTEMPT_RESPONDED
                 : error_code == ML_H2_REFUSED_STREAM ? ML_ATTEMPT_REFUSED
                                                      : ML_ATTEMPT_RESET,
                 error_code);
    if (call->resp_held) {
        /* The answer came whole (a trailers-only retryable status): again, or relay it. */
        call->resp_ended = false;
        if (ml_call_retry(call, ML_RETRY_STATUS, call->held_grpc_status)) {
            call->resp_held = false;
            ml_h2_hdrs_clear(&call->resp_trailers);
            ml_call_maybe_done(call);
            return;
        }
        call->resp_ended = true;
        call_relay_held(call);
    } else if (!call->resp_started &&
               ml_call_retry(call,
                             error_code == ML_H2_REFUSED_STREAM ? ML_RETRY_REFUSED : ML_RETRY_RESET,
                             -1)) {
        /* Refused (GOAWAY below its id, or REFUSED_STREAM: never processed), or reset and the
         * route retries on that: it goes again through the pick step, to another host where
         * there is one (the call's tried set has this one). */
        ml_call_maybe_done(call);
        return;
    }
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
            ml_call_unavailable(call, msg);
        } else if (call->down != NULL) {
            ml_call_obs_fail(&call->obs, "upstream ended mid-response");
            ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF,
                           "call %llu: %s: upstream ended mid-response (0x%x): reset",
                           (unsigned long long)call->id, call->path, error_code);
            ml_h2_stream_reset(call->down,
                               error_code != ML_H2_NO_ERROR ? error_code : ML_H2_CANCEL);
            call->down = NULL;
        }
    }
    drop_request_body(call);
    ml_call_maybe_done(call);
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

    ml_call_obs_bytes_in(&call->obs, n); /* also what is dropped: the client sent it */
    if (call->up_done) {
        ml_h2_stream_consume(call->down, n); /* nowhere to go */
        return 0;
    }
    call->moved_ms = ml_time_now_ms();
    if ((rv = ml_buf_append(&call->req, p, n)) < 0) {
        ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF, "call %llu: request body: %s",
                       (unsigned long long)call->id, strerror(-rv));
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
    size_t n;

    if (call->resp_limit - call->resp_out < cap) {
        cap = (size_t)(call->resp_limit - call->resp_out); /* the body was cut (deadline) */
    }
    n = ml_buf_read(&call->resp, buf, cap);
    if (n > 0) {
        call->moved_ms = ml_time_now_ms();
    }
    call->resp_out += n;
    ml_call_obs_bytes_out(&call->obs, n);
    if (n > 0 && call->up != NULL) {
        ml_h2_stream_consume(call->up, n); /* taken by downstream: upstream may send more */
    }
    if ((ml_buf_len(&call->resp) == 0 || call->resp_out == call->resp_limit) && call->resp_ended) {
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
    call_cancel_wait(call);
    if (call->up != NULL) {
        /* The client went away (or the call is complete downstream while upstream still has
         * the request open): nobody wants the rest. */
        if (error_code != ML_H2_NO_ERROR || !call->resp_ended) {
            ML_LOG_DBG("call %llu: downstream closed (0x%x): cancelling upstream",
                       (unsigned long long)call->id, error_code);
        }
        ml_h2_stream_reset(call->up, ML_H2_CANCEL);
        call_up_gone(call, ML_ATTEMPT_CANCELLED, ML_H2_CANCEL);
    }
    call->up_done = true;
    ml_call_maybe_done(call);
}

static const struct ml_h2_stream_ops down_ops = {
    .on_headers = down_on_headers,
    .on_data = down_on_data,
    .on_end = down_on_end,
    .read = down_read,
    .on_close = down_on_close,
};

/* ---- the deadline ---------------------------------------------------------------------------- */

/* Ends the response body after the last whole message that came, with trailers carrying
 * DEADLINE_EXCEEDED and msg. 0; -ENOMEM (then the caller resets the stream). */
static int call_cut_response(struct ml_call *call, const char *msg)
{
    char value[160];
    int rv;

    ml_h2_hdrs_clear(&call->resp_trailers);
    rv = ml_h2_hdrs_add_str(&call->resp_trailers, "grpc-status", "4");
    rv = rv < 0 ? rv
                : ml_h2_hdrs_add_str(&call->resp_trailers, "grpc-message",
                                     ml_grpc_message_encode(msg, value, sizeof(value)));
    if (rv < 0) {
        return rv;
    }
    call->resp_limit = call->resp_framer.boundary;
    call->resp_ended = true;
    ml_h2_stream_resume(call->down);
    return 0;
}

/* The call's time is up: upstream is cancelled, downstream gets DEADLINE_EXCEEDED: a
 * trailers-only answer; once response headers went, the messages that came whole and then
 * trailers with grpc-status 4; when part of a message went already, RST_STREAM(CANCEL) (a gRPC
 * client whose own deadline passed reports that as DEADLINE_EXCEEDED too). */
static void call_on_expiry(void *user)
{
    struct ml_call *call = user;
    char msg[96];

    if (call->resp_ended) {
        return; /* the whole response is here: it only has to reach the client */
    }
    call_cancel_wait(call);
    if (call->up != NULL) {
        ml_h2_stream_reset(call->up, ML_H2_CANCEL);
        call_up_gone(call, ML_ATTEMPT_CANCELLED, ML_H2_CANCEL);
    }
    snprintf(msg, sizeof(msg), "deadline exceeded (%llu ms)", (unsigned long long)call->budget_ms);
    if (!call->resp_started) {
        ml_call_answer(call, ML_GRPC_DEADLINE_EXCEEDED, 504, msg);
    } else {
        call->up_done = true;
        drop_request_body(call);
        ml_call_obs_fail(&call->obs, msg);
        if (call->down != NULL && call->grpc && call->resp_out <= call->resp_framer.boundary &&
            call_cut_response(call, msg) == 0) {
            ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF,
                           "call %llu: %s: %s after the response started: ended after %llu "
                           "body bytes",
                           (unsigned long long)call->id, call->path, msg,
                           (unsigned long long)call->resp_framer.boundary);
        } else if (call->down != NULL) {
            /* Part of a message went already: only a reset can end it. */
            ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF,
                           "call %llu: %s: %s after the response started: reset",
                           (unsigned long long)call->id, call->path, msg);
            ml_h2_stream_reset(call->down, ML_H2_CANCEL);
            call->down = NULL;
        }
    }
    ml_call_maybe_done(call);
}

/* The call's deadline: the client's grpc-timeout and the route's timeout, whichever is sooner,
 * on the monotonic clock. 0 (armed, or none applies); otherwise the call was answered
 * (malformed grpc-timeout: INTERNAL, already expired: DEADLINE_EXCEEDED, no memory: UNAVAILABLE)
 * and a negative errno says so. */
int ml_call_arm_deadline(struct ml_call *call, const struct ml_cfg_route *route)
{
    uint64_t budget_ms = route->timeout_ms, ms;

    if (call->fields.grpc_timeout.p != NULL) {
        if (ml_grpc_timeout_parse(call->fields.grpc_timeout, &ms) < 0) {
            /* The gRPC grammar is strict (1-8 digits and a unit); gRPC servers (grpc-go) fail
             * such a call with INTERNAL rather than guess. */
            ml_call_answer(call, ML_GRPC_INTERNAL, 400, "malformed grpc-timeout");
            return -EINVAL;
        }
        ms = (ms + 999999) / 1000000; /* ns to whole ms, rounded up: "1n" is not expired yet */
        if (route->timeout_ms == 0 || ms < budget_ms) {
            budget_ms = ms;
        }
    } else if (route->timeout_ms == 0) {
        return 0;
    }
    call->has_deadline = true;
    call->budget_ms = budget_ms;
    call->deadline_ms = ml_time_now_ms() + budget_ms;
    if (budget_ms == 0) {
        ml_call_answer(call, ML_GRPC_DEADLINE_EXCEEDED, 504, "deadline exceeded (0 ms)");
        return -ETIMEDOUT;
    }
    if (call->expiry == NULL &&
        (call->expiry = ml_timer_new(call->proxy->loop, call_on_expiry, call)) == NULL) {
        ml_call_unavailable(call, "out of memory for the call's deadline");
        return -ENOMEM;
    }
    /* Absolute on the 64-bit monotonic clock: a grpc-timeout of up to 99999999H (41,000 years)
     * is waited out in steps by the timer, never cut to what one uint32 ms wait holds. */
    ml_timer_arm_at(call->expiry, call->deadline_ms);
    return 0;
}

/* ---- stalls --------------------------------------------------------------------------------- */

/* Bytes wait to move: response bytes downstream does not take (a client that stopped reading:
 * its window stays shut), or request bytes an open upstream stream does not take. A call that is
 * only quiet (nothing buffered: a stream waiting for its next message) is not stalled; deadlines
 * bound those. */
static bool call_stalled(const struct ml_call *call)
{
    return (call->down != NULL && ml_buf_len(&call->resp) > 0 &&
            call->resp_out < call->resp_limit) ||
           (call->up != NULL && ml_buf_len(&call->req) > 0);
}

/* stream_stall_timeout: a call whose bytes have waited that long without any moving holds an
 * upstream stream slot (and its buffers) for a client or backend that does not take them: it is
 * ended. Downstream gets UNAVAILABLE while no response headers went, else RST_STREAM(CANCEL);
 * upstream gets RST_STREAM(CANCEL). Counted per listener (downstream_rq_stalled). */
static void call_on_stall_check(void *user)
{
    struct ml_call *call = user;
    uint64_t now = ml_time_now_ms(), quiet = now - call->moved_ms;
    char msg[128];

    if (!call_stalled(call) || quiet < call->stall_ms) {
        /* Next look: when it would have stalled for stall_ms if nothing moves meanwhile. */
        ml_timer_arm(call->stall,
                     call_stalled(call) ? (uint32_t)(call->stall_ms - quiet) : call->stall_ms);
        return;
    }
    snprintf(msg, sizeof(msg), "stream stalled: no bytes moved for %llu ms (stream_stall_timeout)",
             (unsigned long long)quiet);
    ml_stats_downstream(call->obs.stats, call->obs.sc.listener, ML_STATS_DOWN_RQ_STALLED);
    call_cancel_wait(call);
    if (call->up != NULL) {
        ml_h2_stream_reset(call->up, ML_H2_CANCEL);
        call_up_gone(call, ML_ATTEMPT_CANCELLED, ML_H2_CANCEL);
    }
    if (!call->resp_started) {
        ml_call_answer(call, ML_GRPC_UNAVAILABLE, 504, msg);
    } else {
        call->up_done = true;
        drop_request_body(call);
        if (call->down != NULL) {
            ml_call_obs_fail(&call->obs, msg);
            ML_LOG_LIMITED(&call->proxy->call_log, ML_LOG_LEVEL_INF, "call %llu: %s: %s: reset",
                           (unsigned long long)call->id, call->path, msg);
            ml_h2_stream_reset(call->down, ML_H2_CANCEL);
            call->down = NULL;
        }
    }
    ml_call_maybe_done(call);
}

/* Arms the stall check of a call on listener lcfg. 0; -ENOMEM (answered UNAVAILABLE). */
int ml_call_arm_stall(struct ml_call *call, const struct ml_cfg_listener *lcfg)
{
    call->stall_ms = lcfg->stream_stall_timeout_ms;
    call->moved_ms = ml_time_now_ms();
    if (call->stall_ms == 0) {
        return 0;
    }
    if (call->stall == NULL &&
        (call->stall = ml_timer_new(call->proxy->loop, call_on_stall_check, call)) == NULL) {
        ml_call_unavailable(call, "out of memory for the call's stall check");
        return -ENOMEM;
    }
    ml_timer_arm(call->stall, call->stall_ms);
    return 0;
}

/* ---- the start ----------------------------------------------------------------------------- */

void ml_call_start(struct ml_proxy *p, struct ml_listener *l, struct ml_h2_stream *down,
                   struct ml_h2_hdrs *hdrs, bool end_stream)
{
    struct ml_call *call;

    if ((call = call_get(p)) == NULL) {
        ML_LOG_WRN("c%u s%d: out of memory for a call: refused",
                   ml_h2_conn_id(ml_h2_stream_conn(down)), ml_h2_stream_id(down));
        return; /* not attached: h2 refuses the stream */
    }
    call->proxy = p;
    call->id = ++p->call_ids;
    call->snap = ml_snapshot_ref(p->snap);
    call->down = down;
    call->waiter.on_ready = waiter_on_ready;
    call->waiter.on_fail = waiter_on_fail;
    /* Its calls count in one share of a cluster's stream slots (balance/share.c). */
    call->waiter.tenant = ml_h2_stream_conn(down);
    call->req_ended = end_stream;
    call->listener = l->index;
    call->route = -1;
    call->up_grpc_status = -1;
    ml_buf_init_spare(&call->req, CALL_BUFFER_BYTES, &p->spare_chunks);
    ml_buf_init_spare(&call->req_copy, CALL_RETRY_BUFFER_BYTES, &p->spare_chunks);
    ml_buf_init_spare(&call->resp, CALL_BUFFER_BYTES, &p->spare_chunks);
    call->resp_limit = UINT64_MAX;
    ml_h2_hdrs_move(&call->req_hdrs, hdrs);
    ml_call_fields_find(&call->req_hdrs, &call->fields);
    ml_call_obs_begin(&call->obs, p, call->snap, l->index, call->fields.method,
                      call->fields.authority.n > 0 ? call->fields.authority : call->fields.host,
                      &call->req_hdrs);
    ml_call_obs_client(&call->obs, p, down);
    p->n_live_calls++;
    ml_h2_stream_attach(down, &down_ops, call);

    ml_fmt_copy(call->path, sizeof(call->path), call->fields.path.p, call->fields.path.n);
    call->grpc = ml_grpc_is_content_type(call->fields.content_type);
    ml_call_steps_run(call); /* route, deadline, pick: proxy/steps.c */
    /* Every way out, once: an answer that could not be sent (ENOMEM) reset the downstream
     * stream, whose on_close then never runs, so nothing else would free the call. */
    ml_call_maybe_done(call);
}
