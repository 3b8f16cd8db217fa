/* The proxy context and its listeners: accept → downstream HTTP/2 connection → a call per
 * request. The proxy owns the listeners, their downstream connections (ml_downstream records)
 * and the balance (clusters, upstream pools); calls free themselves (proxy/call.c). */
#include "proxy/proxy.h"

#include "balance/balance.h"
#include "config/features.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/fd_budget.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/stats.h"
#include "core/timer.h"
#include "core/transport.h"
#include "h2/h2.h"
#include "meshlet_config.h"
#include "proxy/call.h"
#include "proxy/obs.h"
#include "proxy/proxy_int.h"
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint32_t ml_proxy_random(struct ml_proxy *p)
{
    return ml_rand_u32(&p->rng);
}

/* ---- downstream connections ---------------------------------------------------------------- */

static void downstream_unlink(struct ml_downstream *d)
{
    struct ml_listener *l = d->listener;

    ml_list_remove(&d->node);
    l->n_conns--;
    if (--l->proxy->n_downstream < ML_FD_BUDGET_DOWNSTREAM && l->proxy->budget_full) {
        l->proxy->budget_full = false;
        ML_LOG_INF("proxy: downstream connections below their fd budget (%d) again: accepting",
                   ML_FD_BUDGET_DOWNSTREAM);
    }
    ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_CLOSED);
    ml_timer_free(d->timer);
    d->timer = NULL;
    if (l->full && l->n_conns < l->cfg->max_connections && !l->retired) {
        l->full = false;
        ML_LOG_INF("listener %s: below max_connections (%u) again: accepting connections",
                   l->cfg->name, l->cfg->max_connections);
    }
}

/* Closes d now, from outside its connection's callbacks: a GOAWAY goes out (best effort), its
 * streams (if any) end, d is freed. ev says why it is counted (besides CLOSED). */
static void downstream_close(struct ml_downstream *d, enum ml_stats_down_event ev)
{
    struct ml_listener *l = d->listener;
    struct ml_h2_conn *c = d->conn;

    ml_stats_downstream(l->stats, l->index, ev);
    downstream_unlink(d);
    ml_free(d);
    ml_h2_conn_close(c); /* no on_conn_close for us: d is gone already */
    if (l->retired && l->n_conns == 0) {
        ML_LOG_INF("listener %s: its last connection closed", l->cfg->name);
        ml_proxy_listener_free(l);
    }
}

/* GOAWAY: the client opens no new streams here (and goes elsewhere); those open finish, then the
 * connection closes (on_conn_close). */
static void downstream_goaway(struct ml_downstream *d, const char *why)
{
    if (d->going_away) {
        return;
    }
    ML_LOG_DBG("c%u: listener %s: %s: GOAWAY", ml_h2_conn_id(d->conn), d->listener->cfg->name, why);
    d->going_away = true;
    if (d->timer != NULL) {
        ml_timer_disarm(d->timer);
    }
    ml_h2_conn_shutdown(d->conn);
}

/* The HTTP/2 handshake (the client's preface and SETTINGS) not done within
 * CONFIG_ML_H2_HANDSHAKE_TIMEOUT_MS closes the connection: silent TCP connections would
 * otherwise hold max_connections for a whole idle_timeout. idle_timeout: no stream open and
 * nothing received for that long; max_connection_age: this old. Either ends the connection with
 * a GOAWAY; otherwise the timer comes back when the soonest of them could be due. */
static void downstream_on_timer(void *user)
{
    struct ml_downstream *d = user;
    uint64_t now = ml_time_now_ms(), next = UINT64_MAX, idle_since;

    if (d->going_away) {
        return;
    }
    if (!ml_h2_conn_greeted(d->conn)) {
        if (now >= d->born_ms + CONFIG_ML_H2_HANDSHAKE_TIMEOUT_MS) {
            ML_LOG_INF("c%u: listener %s: no HTTP/2 preface and SETTINGS within %u ms "
                       "(CONFIG_ML_H2_HANDSHAKE_TIMEOUT_MS): closed",
                       ml_h2_conn_id(d->conn), d->listener->cfg->name,
                       (unsigned)CONFIG_ML_H2_HANDSHAKE_TIMEOUT_MS);
            downstream_close(d, ML_STATS_DOWN_HANDSHAKE_TIMEOUT);
            return;
        }
        next = d->born_ms + CONFIG_ML_H2_HANDSHAKE_TIMEOUT_MS;
    }
    if (d->max_connection_age_ms > 0) {
        if (now >= d->born_ms + d->max_connection_age_ms) {
            downstream_goaway(d, "max_connection_age reached");
            return;
        }
        if (d->born_ms + d->max_connection_age_ms < next) {
            next = d->born_ms + d->max_connection_age_ms;
        }
    }
    if (d->idle_timeout_ms > 0) {
        idle_since = ml_h2_conn_idle_since_ms(d->conn);
        if (idle_since != 0 && now >= idle_since + d->idle_timeout_ms) {
            downstream_goaway(d, "idle_timeout reached");
            return;
        }
        /* Streams open: look again a whole idle_timeout later (it cannot be due before). */
        idle_since = idle_since != 0 ? idle_since : now;
        if (idle_since + d->idle_timeout_ms < next) {
            next = idle_since + d->idle_timeout_ms;
        }
    }
    if (next != UINT64_MAX) {
        ml_timer_arm(d->timer, next - now < UINT32_MAX ? (uint32_t)(next - now) : UINT32_MAX);
    }
}

static void on_request(void *user, struct ml_h2_stream *s, struct ml_h2_hdrs *hdrs, bool end_stream)
{
    struct ml_downstream *d = user;

    if (d->listener->retired) {
        /* A request that crossed our GOAWAY on a listener a hot apply removed: refused (h2
         * answers REFUSED_STREAM), so the client sends it again elsewhere. */
        return;
    }
    ml_call_start(d->listener->proxy, d->listener, s, hdrs, end_stream);
}

static void on_conn_close(void *user, struct ml_h2_conn *c)
{
    struct ml_downstream *d = user;

    struct ml_listener *l = d->listener;

    ML_LOG_DBG("c%u: listener %s: connection closed", ml_h2_conn_id(c), l->cfg->name);
    downstream_unlink(d);
    ml_free(d);
    if (l->retired && l->n_conns == 0) {
        ML_LOG_INF("listener %s: its last connection closed", l->cfg->name);
        ml_proxy_listener_free(l);
    }
}

static const struct ml_h2_server_ops downstream_ops = {
    .on_request = on_request,
    .on_close = on_conn_close,
};

/* At max_connections: closes the connection of l idle the longest (no stream open: nothing is
 * lost but the connection, and the client reconnects when it has a call), with a GOAWAY, to
 * make room for a new one. true when one was closed. */
static bool reclaim_idle(struct ml_listener *l)
{
    struct ml_downstream *oldest = NULL;
    uint64_t oldest_since = UINT64_MAX;

    for (struct ml_list *n = ml_list_first(&l->conns); n != NULL; n = ml_list_next(&l->conns, n)) {
        struct ml_downstream *d = ML_CONTAINER_OF(n, struct ml_downstream, node);
        uint64_t since = ml_h2_conn_idle_since_ms(d->conn);

        if (since != 0 && since < oldest_since) {
            oldest = d;
            oldest_since = since;
        }
    }
    if (oldest == NULL) {
        return false;
    }
    ML_LOG_INF("c%u: listener %s: max_connections (%u) reached: closing this connection, idle "
               "for %llu ms, to make room",
               ml_h2_conn_id(oldest->conn), l->cfg->name, l->cfg->max_connections,
               (unsigned long long)(ml_time_now_ms() - oldest_since));
    downstream_close(oldest, ML_STATS_DOWN_RECLAIMED);
    return true;
}

/* Serves tp on l: a downstream HTTP/2 connection; first[0..n) are bytes that came before
 * (a held connection). */
static void downstream_serve(struct ml_listener *l, struct ml_transport *tp, const uint8_t *first,
                             size_t n)
{
    struct ml_downstream *d;
    uint32_t id;
    int rv;

    if (l->proxy->draining) {
        ml_transport_close(tp); /* accepted just before the listening socket closed */
        return;
    }
    if (l->n_conns >= l->cfg->max_connections && !reclaim_idle(l)) {
        if (!l->full) {
            /* Once, not per accept: a flood of connections must not flood the log. */
            l->full = true;
            ML_LOG_WRN("listener %s: max_connections (%u) reached and every connection has "
                       "calls open: new connections are refused until one closes",
                       l->cfg->name, l->cfg->max_connections);
        }
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_transport_close(tp);
        return;
    }
    if (l->proxy->n_downstream >= ML_FD_BUDGET_DOWNSTREAM && !reclaim_idle(l)) {
        /* `meshlet check` keeps the listeners within it; connections that listeners a hot apply
         * removed still hold can take it all for a while. Said once, like a full listener. */
        if (!l->proxy->budget_full) {
            l->proxy->budget_full = true;
            ML_LOG_WRN("proxy: downstream connections reached their fd budget (%d, "
                       "ML_FD_BUDGET_DOWNSTREAM): new connections are refused until one closes",
                       ML_FD_BUDGET_DOWNSTREAM);
        }
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_transport_close(tp);
        return;
    }
    if ((d = ml_calloc(1, sizeof(*d))) == NULL) {
        ML_LOG_WRN("listener %s: out of memory: connection refused", l->cfg->name);
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_transport_close(tp);
        return;
    }
    d->listener = l;
    d->born_ms = ml_time_now_ms();
    d->idle_timeout_ms = l->cfg->idle_timeout_ms;
    d->max_connection_age_ms = l->cfg->max_connection_age_ms;
    if ((d->timer = ml_timer_new(l->proxy->loop, downstream_on_timer, d)) == NULL) {
        ML_LOG_WRN("listener %s: out of memory: connection refused", l->cfg->name);
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_free(d);
        ml_transport_close(tp);
        return;
    }
    id = ++l->proxy->conn_ids;
    if ((rv = ml_h2_server_new(l->proxy->loop, tp, id, &l->settings, &downstream_ops, d,
                               &d->conn)) < 0) {
        ML_LOG_WRN("listener %s: %s: connection refused", l->cfg->name, strerror(-rv));
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_timer_free(d->timer);
        ml_free(d);
        ml_transport_close(tp);
        return;
    }
    ML_LOG_DBG("c%u: listener %s: connection accepted", id, l->cfg->name);
    ml_list_add_tail(&l->conns, &d->node);
    l->n_conns++;
    l->proxy->n_downstream++;
    ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_ACCEPTED);
    downstream_on_timer(d); /* arms it for the soonest of the handshake, idle and age limits */
    if (n > 0) {
        ml_h2_conn_feed(d->conn, first, n); /* may close it (on_conn_close): d is not used after */
    }
}

/* ---- held connections (a listener prepared by a hot apply, not committed yet) ------------- */

/* What a held connection may send before it is served; more closes it (the client retries). */
#define HELD_BYTES_MAX 16384

struct ml_held_conn {
    struct ml_listener *listener;
    struct ml_sock *sock;
    struct ml_list node; /* in listener->held_conns */
    size_t n;
    uint8_t bytes[HELD_BYTES_MAX];
};

static void held_free(struct ml_held_conn *h)
{
    ml_list_remove(&h->node);
    ml_free(h);
}

static void held_on_read(void *user, const uint8_t *p, size_t n)
{
    struct ml_held_conn *h = user;

    if (n > sizeof(h->bytes) - h->n) {
        ML_LOG_INF("listener %s: a connection waiting for the apply sent too much: closed",
                   h->listener->cfg->name);
        ml_sock_close(h->sock);
        held_free(h);
        return;
    }
    memcpy(h->bytes + h->n, p, n);
    h->n += n;
}

static void held_on_close(void *user, int reason, const char *why)
{
    held_free(user);
}

static const struct ml_sock_ops held_ops = {
    .on_read = held_on_read,
    .on_close = held_on_close,
};

/* ---- TLS listeners (tls = on | mtls | permissive) ----------------------------------------- */

/* A connection between accept and the end of its TLS handshake (or, permissive, its first
 * byte). The listener may go first (hot apply): then listener is NULL and the connection is
 * closed when its handshake ends. */
struct ml_tls_wait {
    struct ml_listener *listener;
    struct ml_sock *sniffing; /* permissive, before the first byte; else NULL */
    struct ml_timer *timer;   /* sniffing: a client that sends nothing is closed after
                               * ML_TLS_HANDSHAKE_TIMEOUT_MS, like a stalled handshake */
    struct ml_list node;      /* in listener->tls_waits while listener is set */
    char peer[ML_SOCK_ADDR_TEXT_MAX]; /* for the log line of a failure (the socket is gone) */
};

static void tls_wait_free(struct ml_tls_wait *w)
{
    if (w->listener != NULL) {
        ml_list_remove(&w->node);
    }
    ml_timer_free(w->timer);
    ml_free(w);
}

static void tls_ready(void *user, struct ml_transport *tls, int rv, enum ml_tls_fail fail,
                      const char *why)
{
    struct ml_tls_wait *w = user;
    struct ml_listener *l = w->listener;

    if (l == NULL) {
        tls_wait_free(w);
        ml_transport_close(tls); /* the listener went while this handshake ran */
        return;
    }
    if (rv < 0) {
        ML_LOG_LIMITED(&l->tls_log, ML_LOG_LEVEL_INF,
                       "listener %s: TLS handshake failed (%s) from %s: %s", l->cfg->name,
                       ml_tls_fail_name(fail), w->peer[0] != '\0' ? w->peer : "?", why);
        ml_stats_downstream(l->stats, l->index,
                            (enum ml_stats_down_event)(ML_STATS_DOWN_TLS_FAIL_BAD_CERT + fail));
        tls_wait_free(w);
        return;
    }
    tls_wait_free(w);
    ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_TLS_HANDSHAKE);
    downstream_serve(l, tls, NULL, 0);
}

_Static_assert(ML_TLS_FAIL_IDENTITY == ML_STATS_TLS_FAIL_KINDS,
               "every TLS failure reason a listener meets has its counter");

/* TLS on tp (taken over, or closed): first[0..n) came before. */
static void tls_start(struct ml_listener *l, struct ml_transport *tp, const uint8_t *first,
                      size_t n)
{
    struct ml_tls_wait *w;
    int rv;

    /* Connections in their handshake hold a socket too: with the served ones they stay within
     * max_connections, so the listeners keep to the downstream fd budget (core/fd_budget.h). */
    if (l->n_conns + ml_tls_server_handshaking(l->tls) >= l->cfg->max_connections &&
        !reclaim_idle(l)) {
        ML_LOG_LIMITED(&l->tls_log, ML_LOG_LEVEL_INF,
                       "listener %s: max_connections (%u) reached with TLS handshakes in "
                       "progress: connection refused",
                       l->cfg->name, l->cfg->max_connections);
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_transport_close(tp);
        return;
    }
    if ((w = ml_calloc(1, sizeof(*w))) == NULL) {
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_transport_close(tp);
        return;
    }
    w->listener = l;
    ml_transport_peer_text(tp, w->peer, sizeof(w->peer));
    ml_list_add_tail(&l->tls_waits, &w->node);
    rv = ml_tls_accept(l->tls, l->proxy->loop, tp, first, n, tls_ready, w);
    if (rv < 0) {
        if (rv == -EBUSY) {
            ML_LOG_INF("listener %s: %d TLS handshakes in progress (ML_TLS_HANDSHAKES_MAX): "
                       "connection refused",
                       l->cfg->name, ML_TLS_HANDSHAKES_MAX);
            ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_TLS_BUSY);
        }
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        tls_wait_free(w);
        ml_transport_close(tp);
    }
}

/* permissive: the first byte tells a TLS ClientHello (a handshake record, 0x16) from the HTTP/2
 * preface ("PRI * ..."), so both are served on one port. */
static void sniff_on_read(void *user, const uint8_t *p, size_t n)
{
    struct ml_tls_wait *w = user;
    struct ml_listener *l = w->listener;
    struct ml_transport *tp = ml_sock_transport(w->sniffing);

    if (n == 0) {
        return;
    }
    tls_wait_free(w);
    if (p[0] == 0x16) {
        tls_start(l, tp, p, n);
    } else {
        downstream_serve(l, tp, p, n);
    }
}

static void sniff_on_close(void *user, int reason, const char *why)
{
    (void)reason;
    (void)why;
    tls_wait_free(user);
}

static const struct ml_sock_ops sniff_ops = {
    .on_read = sniff_on_read,
    .on_close = sniff_on_close,
};

static void sniff_on_timer(void *user)
{
    struct ml_tls_wait *w = user;
    struct ml_listener *l = w->listener;

    ML_LOG_LIMITED(&l->tls_log, ML_LOG_LEVEL_INF,
                   "listener %s: TLS handshake failed (timeout) from %s: no byte within "
                   "ML_TLS_HANDSHAKE_TIMEOUT_MS",
                   l->cfg->name, w->peer[0] != '\0' ? w->peer : "?");
    ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_TLS_FAIL_TIMEOUT);
    ml_sock_close(w->sniffing);
    tls_wait_free(w); /* frees the timer this runs from: allowed (core/timer.c) */
}

/* A connection the listener serves now: plaintext h2, TLS, or (permissive) whichever its first
 * byte says. */
static void listener_take(struct ml_listener *l, struct ml_sock *sock, const uint8_t *first,
                          size_t n)
{
    struct ml_tls_wait *w;

    if (!ML_HAVE_DATA_TLS || l->tls == NULL) {
        downstream_serve(l, ml_sock_transport(sock), first, n);
        return;
    }
    if (l->cfg->tls != ML_CFG_TLS_PERMISSIVE || n > 0) {
        if (n > 0 && l->cfg->tls == ML_CFG_TLS_PERMISSIVE && first[0] != 0x16) {
            downstream_serve(l, ml_sock_transport(sock), first, n);
        } else {
            tls_start(l, ml_sock_transport(sock), first, n);
        }
        return;
    }
    if ((w = ml_calloc(1, sizeof(*w))) == NULL) {
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_sock_close(sock);
        return;
    }
    if ((w->timer = ml_timer_new(l->proxy->loop, sniff_on_timer, w)) == NULL) {
        ml_free(w);
        ml_stats_downstream(l->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_sock_close(sock);
        return;
    }
    w->listener = l;
    w->sniffing = sock;
    ml_sock_peer_text(sock, w->peer, sizeof(w->peer));
    ml_list_add_tail(&l->tls_waits, &w->node);
    ml_sock_set_ops(sock, &sniff_ops, w);
    ml_timer_arm(w->timer, ML_TLS_HANDSHAKE_TIMEOUT_MS);
}

/* The listener goes: connections still sniffing close, handshakes finish with nobody to serve
 * them (tls_ready closes them). */
static void tls_waits_drop(struct ml_listener *l)
{
    struct ml_list *n;

    while ((n = ml_list_first(&l->tls_waits)) != NULL) {
        struct ml_tls_wait *w = ML_CONTAINER_OF(n, struct ml_tls_wait, node);

        ml_list_remove(&w->node);
        w->listener = NULL;
        if (w->sniffing != NULL) {
            ml_sock_close(w->sniffing);
            tls_wait_free(w); /* listener is NULL: only its timer and itself */
        }
    }
}

/* The listener's TLS from its config (none for tls = off). */
static int listener_tls(struct ml_listener *l, char *why, size_t cap, struct ml_tls_server **out)
{
    const struct ml_cfg_listener *cfg = l->cfg;
    struct ml_tls_server_cfg tc = {
        .cert = cfg->cert,
        .key = cfg->key,
        .ca = cfg->ca,
        .mtls = cfg->tls == ML_CFG_TLS_MTLS,
    };
    char e[256];
    int rv;

    *out = NULL;
    if (cfg->tls == ML_CFG_TLS_OFF || !ML_HAVE_DATA_TLS) {
        return 0; /* without ML_TLS the check refused tls: the TLS code is left out of the link */
    }
    if (cfg->cert == NULL || cfg->key == NULL || (tc.mtls && cfg->ca == NULL)) {
        snprintf(why, cap, "listener %s: tls needs cert and key (and ca for mtls)", cfg->name);
        return -EINVAL;
    }
    if ((rv = ml_tls_server_new(&tc, e, sizeof(e), out)) < 0) {
        snprintf(why, cap, "listener %s: %s", cfg->name, e);
    }
    return rv;
}

static void on_accept(void *user, struct ml_sock *sock)
{
    struct ml_listener *l = user;
    struct ml_held_conn *h;

    if (!l->held) {
        listener_take(l, sock, NULL, 0);
        return;
    }
    if ((h = ml_malloc(sizeof(*h))) == NULL) {
        ml_sock_close(sock);
        return;
    }
    h->listener = l;
    h->sock = sock;
    h->n = 0;
    ml_list_add_tail(&l->held_conns, &h->node);
    ml_sock_set_ops(sock, &held_ops, h);
}

void ml_proxy_listener_serve(struct ml_listener *l)
{
    struct ml_list *n;

    l->held = false;
    while ((n = ml_list_first(&l->held_conns)) != NULL) {
        struct ml_held_conn *h = ML_CONTAINER_OF(n, struct ml_held_conn, node);

        ml_list_remove(&h->node);
        downstream_serve(l, ml_sock_transport(h->sock), h->bytes,
                         h->n); /* takes the socket over, or closes it */
        ml_free(h);
    }
}

/* ---- listeners -------------------------------------------------------------------------- */

static void listener_settings(struct ml_listener *l)
{
    const struct ml_cfg_listener *cfg = l->cfg;

    l->settings = (struct ml_h2_settings){
        .max_streams = cfg->max_streams,
        /* A peer may never have more in flight on a stream than a call buffers. */
        .stream_window_bytes = cfg->window_bytes < CONFIG_ML_CALL_BUFFER_BYTES
                                   ? cfg->window_bytes
                                   : CONFIG_ML_CALL_BUFFER_BYTES,
        .max_header_list_bytes = CONFIG_ML_MAX_HEADER_LIST_BYTES,
    };
    if (cfg->window_bytes > CONFIG_ML_CALL_BUFFER_BYTES) {
        ML_LOG_WRN("listener %s: window %u is larger than a call's buffer "
                   "(CONFIG_ML_CALL_BUFFER_BYTES): advertising %u",
                   cfg->name, cfg->window_bytes, (unsigned)CONFIG_ML_CALL_BUFFER_BYTES);
    }
    l->settings.conn_window_bytes =
        ml_h2_conn_window(l->settings.stream_window_bytes, cfg->max_streams);
}

int ml_proxy_listener_new(struct ml_proxy *p, struct ml_snapshot *snap, struct ml_stats *stats,
                          uint32_t index, bool held, char *why, size_t cap,
                          struct ml_listener **out)
{
    const struct ml_cfg_listener *cfg = &snap->listeners[index];
    struct ml_sock_addr addr;
    struct ml_listener *l;
    int rv;

    *out = NULL;
    if ((l = ml_calloc(1, sizeof(*l))) == NULL) {
        snprintf(why, cap, "listener %s: out of memory", cfg->name);
        return -ENOMEM;
    }
    l->proxy = p;
    l->index = (int)index;
    l->snap = ml_snapshot_ref(snap);
    l->stats = ml_stats_ref(stats);
    l->cfg = cfg;
    l->held = held;
    ml_list_init(&l->conns);
    ml_list_init(&l->held_conns);
    ml_list_init(&l->tls_waits);
    listener_settings(l);
    if ((rv = listener_tls(l, why, cap, &l->tls)) < 0) {
        ml_proxy_listener_free(l);
        return rv;
    }
    addr.family = cfg->bind.family;
    addr.port = cfg->bind.port;
    memcpy(addr.ip, cfg->bind.ip, sizeof(addr.ip));
    rv = ml_sock_listen(p->loop, &addr, cfg->name, on_accept, l, &l->sock);
    if (rv < 0) {
        snprintf(why, cap, "listener %s: cannot bind %s: %s", cfg->name, cfg->bind.text,
                 strerror(-rv));
        ml_proxy_listener_free(l);
        return rv;
    }
    ML_LOG_INF("listener %s: listening on %s%s%s", cfg->name, cfg->bind.text,
               cfg->tls == ML_CFG_TLS_OFF          ? ""
               : cfg->tls == ML_CFG_TLS_MTLS       ? " (TLS, client certificates required)"
               : cfg->tls == ML_CFG_TLS_PERMISSIVE ? " (TLS and plaintext)"
                                                   : " (TLS)",
               held ? " (serving once the new config is committed)" : "");
    *out = l;
    return 0;
}

void ml_proxy_listener_update(struct ml_listener *l, struct ml_snapshot *snap,
                              struct ml_stats *stats, uint32_t index)
{
    struct ml_snapshot *old_snap = l->snap;
    struct ml_stats *old_stats = l->stats;

    l->snap = ml_snapshot_ref(snap);
    l->stats = ml_stats_ref(stats);
    l->index = (int)index;
    l->cfg = &snap->listeners[index];
    listener_settings(l);
    /* TLS from the new config: certificates rotated under the same path are read again. On a
     * failure the listener keeps what it has (the apply was checked before). */
    {
        struct ml_tls_server *tls;
        char why[320];

        if (listener_tls(l, why, sizeof(why), &tls) < 0) {
            ML_LOG_WRN("%s: keeping the TLS settings it had", why);
        } else {
            if (ML_HAVE_DATA_TLS) {
                ml_tls_server_free(l->tls); /* handshakes in progress keep the old one */
            }
            l->tls = tls;
        }
    }
    ml_stats_free(old_stats);
    ml_snapshot_unref(old_snap);
}

void ml_proxy_listener_retire(struct ml_listener *l)
{
    struct ml_proxy *p = l->proxy;

    ML_LOG_INF("listener %s: %s is gone from the config: not listening any more, %u connections "
               "finish their calls",
               l->cfg->name, l->cfg->bind.text, l->n_conns);
    ml_sock_listener_free(l->sock);
    l->sock = NULL;
    if (l->n_conns == 0) {
        ml_proxy_listener_free(l);
        return;
    }
    l->retired = true;
    ml_list_add_tail(&p->retired_listeners, &l->node);
    for (struct ml_list *n = ml_list_first(&l->conns); n != NULL; n = ml_list_next(&l->conns, n)) {
        downstream_goaway(ML_CONTAINER_OF(n, struct ml_downstream, node), "bind gone");
    }
}

void ml_proxy_listener_free(struct ml_listener *l)
{
    struct ml_list *n;

    if (l == NULL) {
        return;
    }
    ml_sock_listener_free(l->sock);
    l->sock = NULL;
    while ((n = ml_list_first(&l->held_conns)) != NULL) {
        struct ml_held_conn *h = ML_CONTAINER_OF(n, struct ml_held_conn, node);

        ml_sock_close(h->sock);
        held_free(h);
    }
    tls_waits_drop(l);
    while ((n = ml_list_first(&l->conns)) != NULL) {
        struct ml_downstream *d = ML_CONTAINER_OF(n, struct ml_downstream, node);

        downstream_unlink(d);
        ml_h2_conn_close(d->conn); /* no on_close for us: d is ours to free */
        ml_free(d);
    }
    ml_list_remove(&l->node); /* retired */
    if (ML_HAVE_DATA_TLS) {
        ml_tls_server_free(l->tls);
    }
    ml_stats_free(l->stats);
    ml_snapshot_unref(l->snap);
    ml_free(l);
}

int ml_proxy_new(struct ml_loop *loop, struct ml_snapshot *snap, char *why, size_t cap,
                 struct ml_proxy **out)
{
    struct ml_proxy *p;
    int rv;

    *out = NULL;
    if ((p = ml_calloc(1, sizeof(*p))) == NULL) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    p->loop = loop;
    p->snap = ml_snapshot_ref(snap);
    ml_list_init(&p->retired_listeners);
    ml_list_init(&p->retired_balances);
    ml_call_spares_init(p);
    ml_rand_seed_env_or_os(&p->rng); /* MESHLET_RANDOM_SEED: statistical tests */
    if ((rv = ml_balance_new(loop, snap, &p->conn_ids, &p->balance)) < 0) {
        snprintf(why, cap, "out of memory for the clusters");
        goto fail;
    }
    if ((rv = ml_proxy_obs_init(p, why, cap)) < 0) {
        goto fail;
    }
    if ((p->listeners = ml_calloc(snap->n_listeners + 1, sizeof(*p->listeners))) == NULL) {
        snprintf(why, cap, "out of memory for the listeners");
        rv = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < snap->n_listeners; i++) {
        if ((rv = ml_proxy_listener_new(p, snap, p->stats, i, false, why, cap, &p->listeners[i])) <
            0) {
            goto fail;
        }
        p->n_listeners = i + 1;
    }
    *out = p;
    return 0;

fail:
    ml_proxy_free(p);
    return rv;
}

/* ---- drain -------------------------------------------------------------------------------- */

void ml_proxy_call_gone(struct ml_proxy *p)
{
    if (p->draining && p->n_live_calls == 0) {
        ML_LOG_INF("proxy: drained: no call left");
        ml_loop_stop(p->loop);
    }
}

static void drain_on_timeout(void *user)
{
    struct ml_proxy *p = user;

    ML_LOG_INF("proxy: drain_timeout reached with %llu calls in flight: ending them",
               (unsigned long long)p->n_live_calls);
    ml_loop_stop(p->loop);
}

void ml_proxy_drain(struct ml_proxy *p, uint32_t timeout_ms)
{
    if (p->draining) {
        return;
    }
    p->draining = true;
    for (uint32_t i = 0; i < p->n_listeners; i++) {
        struct ml_listener *l = p->listeners[i];

        ml_sock_listener_free(l->sock); /* no new connections */
        l->sock = NULL;
        for (struct ml_list *n = ml_list_first(&l->conns); n != NULL;
             n = ml_list_next(&l->conns, n)) {
            downstream_goaway(ML_CONTAINER_OF(n, struct ml_downstream, node), "draining");
        }
    }
    ML_LOG_INF("proxy: draining: %llu calls in flight, at most %u ms",
               (unsigned long long)p->n_live_calls, timeout_ms);
    if (p->n_live_calls == 0) {
        ml_loop_stop(p->loop);
        return;
    }
    if ((p->drain = ml_timer_new(p->loop, drain_on_timeout, p)) == NULL) {
        ml_loop_stop(p->loop); /* no memory for the wait: stop now */
        return;
    }
    ml_timer_arm(p->drain, timeout_ms);
}

void ml_proxy_free(struct ml_proxy *p)
{
    struct ml_list *n;

    if (p == NULL) {
        return;
    }
    /* A change prepared and never committed goes first: it refers to running listeners. */
    ml_proxy_abort(p, p->prepared);
    ml_timer_free(p->drain);
    p->drain = NULL;
    p->draining = false;
    ml_rate_limits_free(p->rate_limits);
    p->rate_limits = NULL;
    /* Downstream first: every call loses its client, resets its upstream stream and leaves its
     * pool's queue; then the upstream connections; the deferred work in between frees calls. */
    for (uint32_t i = 0; i < p->n_listeners; i++) {
        ml_proxy_listener_free(p->listeners[i]);
    }
    p->n_listeners = 0;
    while ((n = ml_list_first(&p->retired_listeners)) != NULL) {
        ml_proxy_listener_free(ML_CONTAINER_OF(n, struct ml_listener, node));
    }
    ml_loop_run_deferred(p->loop);
    /* Stats and the access log go before the pools: calls that end while the pools close
     * count nothing, and nothing counted refers to a cluster already freed. */
    ml_proxy_obs_deinit(p);
    ml_proxy_apply_free(p); /* the balances of earlier snapshots */
    ml_balance_free(p->balance);
    ml_loop_run_deferred(p->loop);
    if (p->n_live_calls != 0) {
        ML_LOG_ERR("proxy: %llu calls still alive at shutdown",
                   (unsigned long long)p->n_live_calls);
    }
    ml_call_spares_free(p);
    ml_free(p->listeners);
    ml_snapshot_unref(p->snap);
    ml_free(p);
}
