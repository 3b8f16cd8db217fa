/* The proxy context and its listeners: accept → downstream HTTP/2 connection → a call per
 * request. The proxy owns the listeners, their downstream connections (ml_downstream records)
 * and the balance (clusters, upstream pools); calls free themselves (proxy/call.c). */
#include "proxy/proxy.h"

#include "balance/balance.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/stats.h"
#include "core/timer.h"
#include "h2/h2.h"
#include "meshlet_config.h"
#include "proxy/call.h"
#include "proxy/obs.h"
#include "proxy/proxy_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint32_t ml_proxy_random(struct ml_proxy *p)
{
    /* xorshift64* (Vigna): plenty for spreading calls over a weighted split. */
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return (uint32_t)((p->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void seed(struct ml_proxy *p)
{
    struct timespec ts;

    if (getrandom(&p->rng, sizeof(p->rng), GRND_NONBLOCK) != (ssize_t)sizeof(p->rng)) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        p->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
    }
    if (p->rng == 0) {
        p->rng = 0x9E3779B97F4A7C15ULL;
    }
}

/* ---- downstream connections ---------------------------------------------------------------- */

static void downstream_unlink(struct ml_downstream *d)
{
    ml_list_remove(&d->node);
    d->listener->n_conns--;
    ml_stats_downstream(d->listener->proxy->stats, d->listener->index, ML_STATS_DOWN_CLOSED);
    ml_timer_free(d->timer);
    d->timer = NULL;
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

/* idle_timeout: no stream open and nothing received for that long; max_connection_age: this
 * old. Either ends the connection with a GOAWAY; otherwise the timer comes back when the sooner
 * of the two could be due. */
static void downstream_on_timer(void *user)
{
    struct ml_downstream *d = user;
    const struct ml_cfg_listener *cfg = d->listener->cfg;
    uint64_t now = ml_time_now_ms(), next = UINT64_MAX, idle_since;

    if (d->going_away) {
        return;
    }
    if (cfg->max_connection_age_ms > 0) {
        if (now >= d->born_ms + cfg->max_connection_age_ms) {
            downstream_goaway(d, "max_connection_age reached");
            return;
        }
        next = d->born_ms + cfg->max_connection_age_ms;
    }
    if (cfg->idle_timeout_ms > 0) {
        idle_since = ml_h2_conn_idle_since_ms(d->conn);
        if (idle_since != 0 && now >= idle_since + cfg->idle_timeout_ms) {
            downstream_goaway(d, "idle_timeout reached");
            return;
        }
        /* Streams open: look again a whole idle_timeout later (it cannot be due before). */
        idle_since = idle_since != 0 ? idle_since : now;
        if (idle_since + cfg->idle_timeout_ms < next) {
            next = idle_since + cfg->idle_timeout_ms;
        }
    }
    if (next != UINT64_MAX) {
        ml_timer_arm(d->timer, next - now < UINT32_MAX ? (uint32_t)(next - now) : UINT32_MAX);
    }
}

static void on_request(void *user, struct ml_h2_stream *s, struct ml_h2_hdrs *hdrs, bool end_stream)
{
    struct ml_downstream *d = user;

    ml_call_start(d->listener->proxy, d->listener, s, hdrs, end_stream);
}

static void on_conn_close(void *user, struct ml_h2_conn *c)
{
    struct ml_downstream *d = user;

    ML_LOG_DBG("c%u: listener %s: connection closed", ml_h2_conn_id(c), d->listener->cfg->name);
    downstream_unlink(d);
    ml_free(d);
}

static const struct ml_h2_server_ops downstream_ops = {
    .on_request = on_request,
    .on_close = on_conn_close,
};

static void on_accept(void *user, struct ml_sock *sock)
{
    struct ml_listener *l = user;
    struct ml_downstream *d;
    uint32_t id;
    int rv;

    if (l->proxy->draining) {
        ml_sock_close(sock); /* accepted just before the listening socket closed */
        return;
    }
    if (l->n_conns >= l->cfg->max_connections) {
        ML_LOG_WRN("listener %s: max_connections (%u) reached: connection refused", l->cfg->name,
                   l->cfg->max_connections);
        ml_stats_downstream(l->proxy->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_sock_close(sock);
        return;
    }
    if ((d = ml_calloc(1, sizeof(*d))) == NULL) {
        ML_LOG_WRN("listener %s: out of memory: connection refused", l->cfg->name);
        ml_stats_downstream(l->proxy->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_sock_close(sock);
        return;
    }
    d->listener = l;
    d->born_ms = ml_time_now_ms();
    if ((l->cfg->idle_timeout_ms > 0 || l->cfg->max_connection_age_ms > 0) &&
        (d->timer = ml_timer_new(l->proxy->loop, downstream_on_timer, d)) == NULL) {
        ML_LOG_WRN("listener %s: out of memory: connection refused", l->cfg->name);
        ml_stats_downstream(l->proxy->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_free(d);
        ml_sock_close(sock);
        return;
    }
    id = ++l->proxy->conn_ids;
    if ((rv = ml_h2_server_new(l->proxy->loop, sock, id, &l->settings, &downstream_ops, d,
                               &d->conn)) < 0) {
        ML_LOG_WRN("listener %s: %s: connection refused", l->cfg->name, strerror(-rv));
        ml_stats_downstream(l->proxy->stats, l->index, ML_STATS_DOWN_REFUSED);
        ml_timer_free(d->timer);
        ml_free(d);
        ml_sock_close(sock);
        return;
    }
    ML_LOG_DBG("c%u: listener %s: connection accepted", id, l->cfg->name);
    ml_list_add_tail(&l->conns, &d->node);
    l->n_conns++;
    ml_stats_downstream(l->proxy->stats, l->index, ML_STATS_DOWN_ACCEPTED);
    if (d->timer != NULL) {
        downstream_on_timer(d); /* arms it for the sooner of the two */
    }
}

/* ---- listeners -------------------------------------------------------------------------- */

static int listener_start(struct ml_proxy *p, struct ml_listener *l, uint32_t index, char *why,
                          size_t cap)
{
    const struct ml_cfg_listener *cfg = &p->snap->listeners[index];
    struct ml_sock_addr addr;
    int rv;

    l->proxy = p;
    l->index = (int)index;
    l->cfg = cfg;
    ml_list_init(&l->conns);
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
    addr.family = cfg->bind.family;
    addr.port = cfg->bind.port;
    memcpy(addr.ip, cfg->bind.ip, sizeof(addr.ip));
    rv = ml_sock_listen(p->loop, &addr, cfg->name, on_accept, l, &l->sock);
    if (rv < 0) {
        snprintf(why, cap, "listener %s: cannot bind %s: %s", cfg->name, cfg->bind.text,
                 strerror(-rv));
        return rv;
    }
    ML_LOG_INF("listener %s: listening on %s", cfg->name, cfg->bind.text);
    return 0;
}

/* Stops accepting and closes l's connections (their calls end). */
static void listener_stop(struct ml_listener *l)
{
    struct ml_list *n;

    ml_sock_listener_free(l->sock);
    l->sock = NULL;
    while ((n = ml_list_first(&l->conns)) != NULL) {
        struct ml_downstream *d = ML_CONTAINER_OF(n, struct ml_downstream, node);

        downstream_unlink(d);
        ml_h2_conn_close(d->conn); /* no on_close for us: d is ours to free */
        ml_free(d);
    }
}

/* Says which settings of snap this version accepts but does not act on yet, so nobody relies on
 * them unknowingly (one line each). */
static void warn_unapplied(const struct ml_snapshot *snap)
{
    static const char *const lb_names[] = {"round_robin", "least_request", "random", "ring_hash",
                                           "maglev"};

    for (uint32_t i = 0; i < snap->n_routes; i++) {
        const struct ml_cfg_route *r = &snap->routes[i];

        if (r->retries > 0 || r->fault_delay_ppm > 0 || r->fault_abort_ppm > 0 ||
            r->fault_headers || r->rate_per_min > 0) {
            ML_LOG_WRN("route %s: retries, fault_* and rate_limit are not applied by this "
                       "version yet",
                       r->name);
        }
    }
    for (uint32_t i = 0; i < snap->n_clusters; i++) {
        const struct ml_cfg_cluster *c = &snap->clusters[i];

        if (c->lb != ML_CFG_LB_ROUND_ROBIN) {
            ML_LOG_WRN("cluster %s: lb = %s is not there yet: round robin is used", c->name,
                       lb_names[c->lb]);
        }
        if (c->dns_host != NULL) {
            ML_LOG_WRN("cluster %s: dns endpoints are not resolved yet: its calls fail "
                       "(UNAVAILABLE)",
                       c->name);
        }
        if (c->health_check != ML_CFG_HEALTH_OFF) {
            ML_LOG_WRN("cluster %s: health checks are not there yet", c->name);
        }
    }
    if (snap->n_authz > 0) {
        ML_LOG_WRN("[authz] sections are not enforced by this version yet: every call is allowed");
    }
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
    seed(p);
    if ((rv = ml_balance_new(loop, snap, &p->conn_ids, &p->balance)) < 0) {
        snprintf(why, cap, "out of memory for the clusters");
        goto fail;
    }
    if ((rv = ml_proxy_obs_init(p, why, cap)) < 0) {
        goto fail;
    }
    if (snap->n_listeners > 0 &&
        (p->listeners = ml_calloc(snap->n_listeners, sizeof(*p->listeners))) == NULL) {
        snprintf(why, cap, "out of memory for the listeners");
        rv = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < snap->n_listeners; i++) {
        if ((rv = listener_start(p, &p->listeners[i], i, why, cap)) < 0) {
            goto fail;
        }
        p->n_listeners = i + 1;
    }
    warn_unapplied(snap);
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
        struct ml_listener *l = &p->listeners[i];

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
    if (p == NULL) {
        return;
    }
    ml_timer_free(p->drain);
    p->drain = NULL;
    p->draining = false;
    /* Downstream first: every call loses its client, resets its upstream stream and leaves its
     * pool's queue; then the upstream connections; the deferred work in between frees calls. */
    for (uint32_t i = 0; i < p->n_listeners; i++) {
        listener_stop(&p->listeners[i]);
    }
    ml_loop_run_deferred(p->loop);
    /* Stats and the access log go before the pools: calls that end while the pools close
     * count nothing, and nothing counted refers to a cluster already freed. */
    ml_proxy_obs_deinit(p);
    ml_balance_free(p->balance);
    ml_loop_run_deferred(p->loop);
    if (p->n_live_calls != 0) {
        ML_LOG_ERR("proxy: %llu calls still alive at shutdown",
                   (unsigned long long)p->n_live_calls);
    }
    ml_free(p->listeners);
    ml_snapshot_unref(p->snap);
    ml_free(p);
}
