#include "proxy/obs.h"

#include "balance/balance.h"
#include "config/snapshot-t.h"
#include "core/access_log.h"
#include "core/clock.h"
#include "core/fmt.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/stats.h"
#include "core/timer.h"
#include "h2/h2.h"
#include "h2/hdrs.h"
#include "proxy/proxy_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void on_sigusr1(void *user, int sig)
{
    struct ml_proxy *p = user;

    ml_access_log_reopen(p->access_log);
}

int ml_proxy_obs_init(struct ml_proxy *p, char *why, size_t cap)
{
    int rv;

    if ((p->stats = ml_stats_new(p->snap)) == NULL) {
        snprintf(why, cap, "out of memory for the stats");
        return -ENOMEM;
    }
    ml_balance_set_stats(p->balance, p->stats);
    if ((rv = ml_access_log_new(&p->snap->node, why, cap, &p->access_log)) < 0) {
        return rv;
    }
    if ((rv = ml_loop_watch_signal(p->loop, SIGUSR1, on_sigusr1, p)) < 0) {
        snprintf(why, cap, "cannot watch SIGUSR1: %s", strerror(-rv));
        return rv;
    }
    return 0;
}

/* Runs last in ml_proxy_free: after the calls (which count here) and the balance (which counts
 * here too, and is freed already) are gone. */
void ml_proxy_obs_deinit(struct ml_proxy *p)
{
    if (p->access_log != NULL) {
        ml_loop_unwatch_signal(p->loop, SIGUSR1);
    }
    ml_access_log_free(p->access_log);
    p->access_log = NULL;
    ml_stats_free(p->stats);
    p->stats = NULL;
}

const struct ml_stats *ml_proxy_stats(const struct ml_proxy *p)
{
    return p->stats;
}

struct ml_balance *ml_proxy_balance(const struct ml_proxy *p)
{
    return p->balance;
}

void ml_proxy_endpoints(const struct ml_proxy *p, uint32_t *healthy, uint32_t *total)
{
    ml_balance_endpoints(p->balance, healthy, total);
}

const struct ml_snapshot *ml_proxy_snapshot(const struct ml_proxy *p)
{
    return p->snap;
}

bool ml_proxy_ready(const struct ml_proxy *p)
{
    /* ml_proxy_new binds every listener or fails, and so does a hot apply (ml_proxy_prepare):
     * a proxy that exists is serving all of its snapshot's listeners, until it drains (load
     * balancers in front should stop sending then). */
    return p != NULL && !p->draining && p->n_listeners == p->snap->n_listeners;
}

/* ---- the call's hooks ------------------------------------------------------------------ */

/* Monotonic µs: a proxied call takes well under a millisecond, the stats' buckets need finer.
 * The event's reading (core/clock.h): a call's duration runs from the event that began it to
 * the one that ended it. */
static uint64_t now_us(void)
{
    return ml_clock_now_us();
}

static bool is_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* x-request-id as sent (cut), else the trace id of a W3C traceparent
 * ("VV-<32 hex trace id>-<16 hex parent id>-FF"), else "". */
static void request_id(char *dst, size_t cap, const struct ml_h2_hdrs *h)
{
    int i = ml_h2_hdrs_find(h, "x-request-id", 0);
    struct ml_slice v;

    dst[0] = '\0';
    if (i >= 0) {
        v = ml_h2_hdrs_value(h, (uint32_t)i);
        ml_fmt_copy(dst, cap, v.p, v.n);
        return;
    }
    if ((i = ml_h2_hdrs_find(h, "traceparent", 0)) < 0) {
        return;
    }
    v = ml_h2_hdrs_value(h, (uint32_t)i);
    if (v.n >= 55 && is_hex(v.p, 2) && v.p[2] == '-' && is_hex(v.p + 3, 32) && v.p[35] == '-') {
        snprintf(dst, cap, "%.32s", (const char *)v.p + 3);
    }
}

void ml_call_obs_begin(struct ml_call_obs *o, struct ml_proxy *p, const struct ml_snapshot *snap,
                       int listener, struct ml_slice method, struct ml_slice authority,
                       const struct ml_h2_hdrs *req)
{
    memset(o, 0, sizeof(*o));
    o->stats = ml_stats_ref(p->stats);
    o->snap = snap;
    o->start_us = now_us();
    clock_gettime(CLOCK_REALTIME, &o->start_wall);
    o->grpc_status = -1;
    ml_stats_call_begin(o->stats, &o->sc, listener);
    ml_fmt_copy(o->method, sizeof(o->method), method.p, method.n);
    ml_fmt_copy(o->authority, sizeof(o->authority), authority.p, authority.n);
    if (ml_access_log_enabled(p->access_log)) {
        request_id(o->request_id, sizeof(o->request_id), req);
    }
}

void ml_call_obs_client(struct ml_call_obs *o, struct ml_proxy *p, const struct ml_h2_stream *down)
{
    /* The verified client certificate's name on a TLS listener (tls/identity.h); none for a
     * plaintext peer or one without a certificate (one longer than ML_CALL_OBS_PRINCIPAL_MAX:
     * none, never cut). */
    const char *id = ml_h2_conn_peer_identity(ml_h2_stream_conn(down));

    o->principal[0] = '\0';
    if (id != NULL && strlen(id) <= ML_CALL_OBS_PRINCIPAL_MAX) {
        memcpy(o->principal, id, strlen(id) + 1);
    }
    if (ml_access_log_enabled(p->access_log)) {
        ml_h2_conn_peer_text(ml_h2_stream_conn(down), o->client, sizeof(o->client));
    }
}

void ml_call_obs_fail(struct ml_call_obs *o, const char *reason)
{
    if (o->reason[0] == '\0') {
        snprintf(o->reason, sizeof(o->reason), "%s", reason);
    }
}

void ml_call_obs_upstream_open(struct ml_call_obs *o)
{
    o->upstream_us = now_us();
}

void ml_call_obs_route(struct ml_call_obs *o, struct ml_proxy *p, int route,
                       const struct ml_cluster *cl)
{
    ml_stats_call_route(o->stats, &o->sc, route, cl != NULL ? ml_cluster_index(cl) : -1);
}

void ml_call_obs_endpoint(struct ml_call_obs *o, struct ml_proxy *p, int endpoint)
{
    if (o->upstream_start_us == 0) {
        o->upstream_start_us = now_us(); /* the first pick: a retry's time counts too */
    }
    ml_stats_call_endpoint(o->stats, &o->sc, endpoint);
}

/* The value of a status field (1 to 4 digits), or -1 (absent: empty, or not a number). */
static int status_int(struct ml_slice s)
{
    int v = 0;

    if (s.n == 0 || s.n > 4) {
        return -1;
    }
    for (size_t k = 0; k < s.n; k++) {
        if (s.p[k] < '0' || s.p[k] > '9') {
            return -1;
        }
        v = v * 10 + (s.p[k] - '0');
    }
    return v;
}

void ml_call_obs_status(struct ml_call_obs *o, struct ml_slice http_status,
                        struct ml_slice grpc_status)
{
    int v;

    if ((v = status_int(http_status)) >= 0 && o->http_status == 0) {
        o->http_status = v;
    }
    if ((v = status_int(grpc_status)) >= 0) {
        o->grpc_status = v;
    }
}

void ml_call_obs_answer(struct ml_call_obs *o, bool grpc, int grpc_status, int http_status)
{
    o->grpc_status = grpc ? grpc_status : -1;
    o->http_status = grpc ? 200 : http_status;
}

static void write_line(struct ml_call_obs *o, struct ml_proxy *p, const char *path)
{
    const struct ml_snapshot *snap = o->snap; /* the call's own: names as it started */
    const struct ml_stats_call *sc = &o->sc;
    struct ml_access_line line;
    const char *upstream = NULL;
    uint64_t end_us = now_us();
    char ts[40];
    struct tm tm;
    size_t k;

    gmtime_r(&o->start_wall.tv_sec, &tm);
    k = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof(ts) - k, ".%03ldZ", o->start_wall.tv_nsec / 1000000L);
    /* From the snapshot, not the balance: calls are freed last at shutdown, after it. */
    if (sc->cluster >= 0 && sc->endpoint >= 0 &&
        (uint32_t)sc->endpoint < snap->clusters[sc->cluster].n_endpoints) {
        upstream = snap->clusters[sc->cluster].endpoints[sc->endpoint].addr.text;
    }
    ml_access_line_begin(&line, p->access_log);
    ml_access_line_str(&line, "ts", ts);
    ml_access_line_str(&line, "client", o->client);
    ml_access_line_str(&line, "request_id", o->request_id);
    ml_access_line_str(&line, "method", o->method);
    ml_access_line_str(&line, "path", path);
    ml_access_line_str(&line, "authority", o->authority);
    ml_access_line_int_or_none(&line, "grpc_status", o->grpc_status, o->grpc_status >= 0);
    ml_access_line_int_or_none(&line, "http_status", o->http_status, o->http_status > 0);
    ml_access_line_str(&line, "reason", o->reason);
    ml_access_line_uint(&line, "duration_us", end_us - o->start_us);
    ml_access_line_int_or_none(&line, "upstream_us",
                               o->upstream_start_us != 0 ? (int64_t)(end_us - o->upstream_start_us)
                                                         : 0,
                               o->upstream_start_us != 0);
    ml_access_line_str(&line, "upstream", upstream);
    ml_access_line_uint(&line, "bytes_in", o->bytes_in);
    ml_access_line_uint(&line, "bytes_out", o->bytes_out);
    ml_access_line_str(&line, "listener",
                       sc->listener >= 0 ? snap->listeners[sc->listener].name : NULL);
    ml_access_line_str(&line, "route", sc->route >= 0 ? snap->routes[sc->route].name : NULL);
    ml_access_line_str(&line, "cluster",
                       sc->cluster >= 0 ? snap->clusters[sc->cluster].name : NULL);
    ml_access_line_str(&line, "principal", o->principal); /* last: keys before it stay put */
    ml_access_line_write(p->access_log, &line);
}

void ml_call_obs_end(struct ml_call_obs *o, struct ml_proxy *p, const char *path)
{
    uint64_t end_us;

    if (o->ended) {
        return;
    }
    o->ended = true;
    if (ml_access_log_enabled(p->access_log)) {
        write_line(o, p, path); /* before stats_call_end resets o->sc */
    }
    end_us = now_us();
    ml_stats_call_end_us(o->stats, &o->sc, o->grpc_status, end_us - o->start_us,
                         o->upstream_us != 0 ? end_us - o->upstream_us : ML_STATS_NO_UPSTREAM,
                         o->bytes_in, o->bytes_out);
    ml_stats_free(o->stats);
    o->stats = NULL;
}
