/* balance/health.h: one checker per checked host, owned by the host (h->health.checker). */
#include "balance/health.h"

#include "balance/balance_int.h"
#include "balance/host.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/timer.h"
#include "grpc/health.h"
#include "h2/h2.h"
#include "h2/hdrs.h"
#include "meshlet_config.h"
#include "tls/tls_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The response body kept: one HealthCheckResponse frame is 7 bytes; a larger body is not one. */
#define HEALTH_RESP_MAX 64
/* Receive window of the checker's connection: responses are tiny; HTTP/2's default. */
#define HEALTH_WINDOW_BYTES 65535
/* Longest dns host name kept for SNI (RFC 1123: 253), with its NUL. */
#define ML_HEALTH_HOST_MAX 256
/* Longest cluster name kept for logs (config names are shorter). */
#define HEALTH_NAME_MAX 64

struct checker {
    struct ml_host *h;
    struct ml_loop *loop;
    uint32_t *conn_ids; /* numbers connections for logs (the proxy's, outlives balances) */
    /* From the owning cluster's config at the last sync: copied, since snapshots come and go. */
    enum ml_cfg_health kind;
    uint32_t interval_ms, timeout_ms, healthy_threshold, unhealthy_threshold;
    char service[ML_GRPC_HEALTH_SERVICE_MAX + 1];
    char cluster[HEALTH_NAME_MAX];
    /* cluster tls: grpc checks go over TLS as the calls do (a reference); NULL: plaintext */
    struct ml_tls_client *tls;
    char host[ML_HEALTH_HOST_MAX]; /* the cluster's dns name, for SNI; "" for IP endpoints */
    struct ml_timer *tick;    /* the next check */
    struct ml_timer *timeout; /* the check in flight takes too long */
    bool in_flight;
    /* tcp */
    struct ml_sock *sock;
    struct ml_defer tcp_done; /* closes the connected socket outside its own callback */
    bool tcp_ok;              /* it connected: tcp_done passes the check */
    /* grpc */
    struct ml_h2_conn *conn; /* NULL: none; connecting until conn_ready */
    bool conn_ready;
    struct ml_h2_stream *stream; /* the Check in flight */
    uint8_t req[ML_GRPC_HEALTH_FRAME_MAX];
    size_t req_len, req_sent;
    uint8_t resp[HEALTH_RESP_MAX];
    size_t resp_len;
    bool resp_too_big;
    int http_status, grpc_status; /* 0 / -1: none seen */
};

static const struct ml_h2_settings health_settings = {
    .max_streams = 0,
    .stream_window_bytes = HEALTH_WINDOW_BYTES,
    .conn_window_bytes = HEALTH_WINDOW_BYTES,
    .max_header_list_bytes = CONFIG_ML_MAX_HEADER_LIST_BYTES,
};

static const char *kind_name(enum ml_cfg_health k)
{
    return k == ML_CFG_HEALTH_GRPC ? "grpc" : "tcp";
}

/* ---- results ------------------------------------------------------------------------------ */

/* The check in flight ended: counters, thresholds, the next check. */
static void check_done(struct checker *c, bool pass, const char *why)
{
    struct ml_host_health *hh = &c->h->health;
    bool unhealthy = (c->h->state & ML_HOST_UNHEALTHY) != 0;

    if (!c->in_flight) {
        return;
    }
    c->in_flight = false;
    ml_timer_disarm(c->timeout);
    c->tcp_ok = false;
    hh->checks++;
    if (pass) {
        hh->failures = 0;
        hh->successes++;
        if (unhealthy && hh->successes >= c->healthy_threshold) {
            ML_LOG_INF("cluster %s: endpoint %s is healthy again (%u %s checks passed)", c->cluster,
                       ml_host_addr_text(c->h), hh->successes, kind_name(c->kind));
            ml_host_state_set(c->h, ML_HOST_UNHEALTHY, false);
        }
    } else {
        hh->check_failures++;
        hh->successes = 0;
        hh->failures++;
        ML_LOG_DBG("cluster %s: endpoint %s: %s check failed: %s", c->cluster,
                   ml_host_addr_text(c->h), kind_name(c->kind), why);
        if (!unhealthy && hh->failures >= c->unhealthy_threshold) {
            ML_LOG_INF("cluster %s: endpoint %s is unhealthy: %s (%u %s checks failed)", c->cluster,
                       ml_host_addr_text(c->h), why, hh->failures, kind_name(c->kind));
            ml_host_state_set(c->h, ML_HOST_UNHEALTHY, true);
        }
    }
    ml_timer_arm(c->tick, c->interval_ms);
}

/* The check could not even start, for a limit of meshlet's own (-EMFILE: the upstream fd budget,
 * core/fd_budget.h, or -ENOMEM), which says nothing about the host, so it counts neither way;
 * the next one comes an interval later. */
static void check_not_made(struct checker *c, const char *why)
{
    ML_LOG_DBG("cluster %s: endpoint %s: no %s check this time: %s", c->cluster,
               ml_host_addr_text(c->h), kind_name(c->kind), why);
    c->in_flight = false;
    ml_timer_disarm(c->timeout);
    ml_timer_arm(c->tick, c->interval_ms);
}

/* ---- tcp: a connect --------------------------------------------------------------------- */

static void tcp_done_deferred(struct ml_defer *d)
{
    struct checker *c = ML_CONTAINER_OF(d, struct checker, tcp_done);

    ml_sock_close(c->sock);
    c->sock = NULL;
    check_done(c, true, NULL);
}

static void tcp_on_connected(void *user)
{
    struct checker *c = user;

    c->tcp_ok = true;
    ml_loop_defer(c->loop, &c->tcp_done, tcp_done_deferred);
}

static void tcp_on_read(void *user, const uint8_t *p, size_t n)
{
    /* whatever the server says first does not matter: it accepted */
}

static void tcp_on_close(void *user, int reason, const char *why)
{
    struct checker *c = user;
    char msg[96];

    c->sock = NULL;
    if (c->tcp_ok) {
        return; /* closed after it connected: tcp_done passes it */
    }
    snprintf(msg, sizeof(msg), "connect: %s", why);
    check_done(c, false, msg);
}

static const struct ml_sock_ops tcp_ops = {
    .on_connected = tcp_on_connected,
    .on_read = tcp_on_read,
    .on_close = tcp_on_close,
};

static void tcp_start(struct checker *c)
{
    char msg[96];
    int rv;

    c->tcp_ok = false;
    rv = ml_sock_connect(c->loop, &c->h->pool->addr, c->timeout_ms, &tcp_ops, c, &c->sock);
    if (rv < 0) {
        c->sock = NULL;
        snprintf(msg, sizeof(msg), "cannot connect: %s", strerror(-rv));
        check_not_made(c, msg);
    }
}

/* ---- grpc: Health/Check ------------------------------------------------------------------ */

static int st_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    struct checker *c = owner;
    int i;

    if (!trailers && (i = ml_h2_hdrs_find(hdrs, ":status", 0)) >= 0) {
        struct ml_slice v = ml_h2_hdrs_value(hdrs, (uint32_t)i);

        c->http_status = 0;
        for (size_t k = 0; k < v.n && k < 3 && v.p[k] >= '0' && v.p[k] <= '9'; k++) {
            c->http_status = c->http_status * 10 + (v.p[k] - '0');
        }
    }
    if ((i = ml_h2_hdrs_find(hdrs, "grpc-status", 0)) >= 0) {
        struct ml_slice v = ml_h2_hdrs_value(hdrs, (uint32_t)i);

        c->grpc_status = 0;
        for (size_t k = 0; k < v.n && k < 3 && v.p[k] >= '0' && v.p[k] <= '9'; k++) {
            c->grpc_status = c->grpc_status * 10 + (v.p[k] - '0');
        }
    }
    return 0;
}

static int st_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct checker *c = owner;

    if (n > sizeof(c->resp) - c->resp_len) {
        c->resp_too_big = true;
    } else {
        memcpy(c->resp + c->resp_len, p, n);
        c->resp_len += n;
    }
    ml_h2_stream_consume(c->stream, n);
    return 0;
}

static void st_on_end(void *owner)
{
}

static ssize_t st_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    struct checker *c = owner;
    size_t n = c->req_len - c->req_sent;

    if (n > cap) {
        n = cap;
    }
    memcpy(buf, c->req + c->req_sent, n);
    c->req_sent += n;
    *eof = c->req_sent == c->req_len;
    return (ssize_t)n;
}

static const char *status_name(int s)
{
    switch (s) {
    case ML_GRPC_HEALTH_SERVING:
        return "SERVING";
    case ML_GRPC_HEALTH_NOT_SERVING:
        return "NOT_SERVING";
    case ML_GRPC_HEALTH_SERVICE_UNKNOWN:
        return "SERVICE_UNKNOWN";
    case ML_GRPC_HEALTH_UNKNOWN:
        return "UNKNOWN";
    }
    return "an unknown status";
}

static void st_on_close(void *owner, uint32_t error_code)
{
    struct checker *c = owner;
    char msg[96];
    int s;

    c->stream = NULL;
    if (error_code != ML_H2_NO_ERROR) {
        snprintf(msg, sizeof(msg), "stream reset (0x%x)", error_code);
        check_done(c, false, msg);
    } else if (c->http_status != 200) {
        snprintf(msg, sizeof(msg), "HTTP %d", c->http_status);
        check_done(c, false, msg);
    } else if (c->grpc_status != 0) {
        /* 4: the server kept to the grpc-timeout we sent (health_timeout); 5: Check's answer
         * for a service the server does not know */
        snprintf(msg, sizeof(msg), "grpc-status %d%s", c->grpc_status,
                 c->grpc_status == 5   ? " (NOT_FOUND: service unknown)"
                 : c->grpc_status == 4 ? " (DEADLINE_EXCEEDED: health_timeout)"
                                       : "");
        check_done(c, false, msg);
    } else if (c->resp_too_big || (s = ml_grpc_health_response_decode(c->resp, c->resp_len)) < 0) {
        check_done(c, false, "not a HealthCheckResponse");
    } else {
        snprintf(msg, sizeof(msg), "status %s", status_name(s));
        check_done(c, s == ML_GRPC_HEALTH_SERVING, msg);
    }
}

static const struct ml_h2_stream_ops st_ops = {
    .on_headers = st_on_headers,
    .on_data = st_on_data,
    .on_end = st_on_end,
    .read = st_read,
    .on_close = st_on_close,
};

/* Sends the Check on the ready connection. */
static void grpc_send(struct checker *c)
{
    struct ml_h2_hdrs h;
    char timeout[16];
    int rv;

    c->req_sent = 0;
    c->resp_len = 0;
    c->resp_too_big = false;
    c->http_status = 0;
    c->grpc_status = -1;
    /* The server may stop working on it when we stop waiting. */
    snprintf(timeout, sizeof(timeout), "%um", c->timeout_ms);
    ml_h2_hdrs_init(&h, CONFIG_ML_MAX_HEADER_LIST_BYTES);
    rv = ml_h2_hdrs_add_str(&h, ":method", "POST");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, ":scheme", "http");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, ":path", ML_GRPC_HEALTH_CHECK_PATH);
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, ":authority", ml_host_addr_text(c->h));
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, "content-type", "application/grpc");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, "te", "trailers");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, "grpc-timeout", timeout);
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, "user-agent", "meshlet-health/" ML_VERSION);
    rv = rv < 0 ? rv : ml_h2_conn_request(c->conn, &h, false, &st_ops, c, &c->stream);
    ml_h2_hdrs_deinit(&h);
    if (rv < 0) {
        c->stream = NULL;
        check_done(c, false, rv == -EAGAIN ? "connection takes no stream" : "out of memory");
    }
}

static void conn_on_ready(void *user, struct ml_h2_conn *conn)
{
    struct checker *c = user;

    c->conn_ready = true;
    if (c->in_flight && c->stream == NULL) {
        grpc_send(c);
    }
}

static void conn_on_slots(void *user, struct ml_h2_conn *conn)
{
}

static void conn_on_close(void *user, struct ml_h2_conn *conn, int reason, const char *why)
{
    struct checker *c = user;
    char msg[96];

    c->conn = NULL;
    c->conn_ready = false;
    snprintf(msg, sizeof(msg), "connection: %s", why != NULL && why[0] ? why : "closed");
    check_done(c, false, msg); /* a no-op unless a check waited for it */
}

static const struct ml_h2_client_ops conn_ops = {
    .on_ready = conn_on_ready,
    .on_slots = conn_on_slots,
    .on_close = conn_on_close,
};

static int checker_wrap(void *user, struct ml_transport *lower, struct ml_transport **out)
{
    struct checker *c = user;

    return ml_tls_connect(c->tls, lower, c->host[0] != '\0' ? c->host : NULL, NULL, NULL, out);
}

static void grpc_start(struct checker *c)
{
    int rv;

    if (c->conn != NULL && ml_h2_conn_going_away(c->conn)) {
        ml_h2_conn_close(c->conn); /* from a timer: not inside its callbacks */
        c->conn = NULL;
        c->conn_ready = false;
    }
    if (c->conn == NULL) {
        rv = ml_h2_client_new(c->loop, &c->h->pool->addr, c->timeout_ms, ++*c->conn_ids,
                              &health_settings, c->tls != NULL ? checker_wrap : NULL, c, &conn_ops,
                              c, &c->conn);
        if (rv < 0) {
            char msg[96];

            c->conn = NULL;
            snprintf(msg, sizeof(msg), "cannot connect: %s", strerror(-rv));
            check_not_made(c, msg);
        }
        return; /* conn_on_ready sends it */
    }
    if (c->conn_ready) {
        grpc_send(c);
    }
}

/* ---- the schedule ----------------------------------------------------------------------- */

static void on_tick(void *user)
{
    struct checker *c = user;

    if (c->in_flight) {
        return;
    }
    c->in_flight = true;
    ml_timer_arm(c->timeout, c->timeout_ms);
    if (c->kind == ML_CFG_HEALTH_TCP) {
        tcp_start(c);
    } else {
        grpc_start(c);
    }
}

/* Stops whatever the check in flight has open; the connection of a grpc checker goes too (a
 * check that timed out may have found it dead). */
static void abandon(struct checker *c)
{
    ml_loop_defer_cancel(c->loop, &c->tcp_done);
    ml_sock_close(c->sock);
    c->sock = NULL;
    if (c->stream != NULL) {
        ml_h2_stream_reset(c->stream, ML_H2_CANCEL);
        c->stream = NULL;
    }
    if (c->conn != NULL) {
        ml_h2_conn_close(c->conn);
        c->conn = NULL;
        c->conn_ready = false;
    }
}

static void on_timeout(void *user)
{
    struct checker *c = user;
    char msg[64];

    abandon(c);
    snprintf(msg, sizeof(msg), "no answer within %u ms (health_timeout)", c->timeout_ms);
    check_done(c, false, msg);
}

static void checker_free(struct checker *c)
{
    abandon(c);
    ml_timer_free(c->tick);
    ml_timer_free(c->timeout);
    ml_tls_client_free(c->tls);
    ml_free(c);
}

void ml_host_health_stop(struct ml_host *h)
{
    if (h->health.checker != NULL) {
        checker_free(h->health.checker);
        h->health.checker = NULL;
    }
}

/* A checker of h (kind, service), its first check due now. NULL: no memory. */
static struct checker *checker_new(struct ml_loop *loop, struct ml_host *h, enum ml_cfg_health kind,
                                   const char *service)
{
    struct checker *c = ml_calloc(1, sizeof(*c));

    if (c == NULL) {
        goto fail;
    }
    if ((c->tick = ml_timer_new(loop, on_tick, c)) == NULL) {
        goto fail_checker;
    }
    if ((c->timeout = ml_timer_new(loop, on_timeout, c)) == NULL) {
        goto fail_tick;
    }
    c->h = h;
    c->loop = loop;
    c->kind = kind;
    snprintf(c->service, sizeof(c->service), "%s", service);
    h->health.checker = c;
    h->health.successes = h->health.failures = 0;
    ml_timer_arm(c->tick, 0);
    return c;

fail_tick:
    ml_timer_free(c->tick);
fail_checker:
    ml_free(c);
fail:
    return NULL;
}

/* Checks h as its owner cluster cl says. */
static void host_sync(struct ml_balance *b, struct ml_host *h, struct ml_cluster *cl)
{
    const struct ml_cfg_cluster *cfg = cl->cfg;
    struct checker *c = h->health.checker;
    const char *service = cfg->health_service != NULL ? cfg->health_service : "";

    if (c != NULL && (cfg->health_check != c->kind || strcmp(service, c->service) != 0)) {
        ml_host_health_stop(h); /* another check: the counts in a row start again */
        c = NULL;
    }
    if (cfg->health_check == ML_CFG_HEALTH_OFF) {
        ml_host_health_stop(h);
        h->health.successes = h->health.failures = 0;
        ml_host_state_set(h, ML_HOST_UNHEALTHY, false);
        return;
    }
    if (c == NULL && (c = checker_new(b->loop, h, cfg->health_check, service)) == NULL) {
        /* Unchecked is what the host was before the check existed: logged, not fatal. */
        ML_LOG_ERR("cluster %s: endpoint %s: out of memory for its health check", cfg->name,
                   ml_host_addr_text(h));
        return;
    }
    c->conn_ids = b->conn_ids;
    if ((c->tls == NULL) != (cl->tls == NULL) && c->conn != NULL && !c->in_flight) {
        /* tls turned on or off: the next check connects as the calls now do */
        ml_h2_conn_close(c->conn);
        c->conn = NULL;
        c->conn_ready = false;
    }
    ml_tls_client_free(c->tls);
    c->tls = ml_tls_client_ref(cl->tls); /* the next connections read this config's files */
    snprintf(c->host, sizeof(c->host), "%s", cfg->dns_host != NULL ? cfg->dns_host : "");
    c->interval_ms = cfg->health_interval_ms;
    c->timeout_ms = cfg->health_timeout_ms;
    c->healthy_threshold = cfg->healthy_threshold;
    c->unhealthy_threshold = cfg->unhealthy_threshold;
    snprintf(c->cluster, sizeof(c->cluster), "%s", cfg->name);
    if (c->kind == ML_CFG_HEALTH_GRPC) {
        int n = ml_grpc_health_request_encode(c->service, c->req, sizeof(c->req));

        c->req_len = n > 0 ? (size_t)n : 0; /* the config check bounds the name */
    }
}

void ml_balance_health_sync(struct ml_balance *b)
{
    for (uint32_t i = 0; i < b->n_clusters; i++) {
        struct ml_cluster *cl = &b->clusters[i];

        for (uint32_t e = 0; e < cl->n_slots; e++) {
            struct ml_pool *p = cl->slots[e].pool;

            if (cl->slots[e].linked && ml_pool_cluster(p) == cl) {
                host_sync(b, p->host, cl);
            }
        }
    }
}
