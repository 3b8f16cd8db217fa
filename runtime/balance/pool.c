/* The connection pool of one endpoint. Who owns what: the pool owns its ml_pool_conn records
 * and the HTTP/2 client connections in them (closing them at deinit); a waiting call owns its
 * ml_balance_waiter (embedded), the pool only links it. Slots are counted by the connection
 * (ml_h2_conn_free_slots): a call that gets a connection opens its stream before returning to
 * the loop, so the count is right the next time anyone looks. */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/rand.h"
#include "core/sock.h"
#include "core/stats.h"
#include "core/timer.h"
#include "h2/h2.h"
#include "tls/tls_client.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static void dispatch_deferred(struct ml_defer *d);
static void dispatch_later(struct ml_pool *p);
static void pc_on_handshake_timeout(void *user);
static const struct ml_h2_client_ops pool_conn_ops;

/* The longest a PING may go unanswered before the connection counts as dead. */
#define PING_ACK_MAX_MS 20000

/* Connect backoff: after n connects failed in a row, the next one waits a random time in
 * [d/2, d], d = min(BASE << (n - 1), MAX) (jittered so that many meshlets do not reconnect in
 * step). BASE is short enough that a restarted endpoint is found again quickly, MAX long enough
 * that a dead one costs a connect every few seconds, not one per call. */
#define POOL_BACKOFF_BASE_MS 100u
#define POOL_BACKOFF_MAX_MS 5000u
#define POOL_BACKOFF_SHIFT_MAX 16u /* BASE << 16 is past MAX already */

/* A connect to p failed: the next one waits. */
static void backoff_failed(struct ml_pool *p)
{
    struct ml_cluster *cl = ml_pool_cluster(p);
    uint32_t shift, d;

    p->connect_failures++;
    shift = p->connect_failures - 1 < POOL_BACKOFF_SHIFT_MAX ? p->connect_failures - 1
                                                             : POOL_BACKOFF_SHIFT_MAX;
    d = POOL_BACKOFF_BASE_MS << shift;
    if (d > POOL_BACKOFF_MAX_MS) {
        d = POOL_BACKOFF_MAX_MS;
    }
    d = d / 2 + ml_rand_below(&cl->balance->rand, d / 2 + 1);
    p->backoff_until_ms = ml_time_now_ms() + d;
    ML_LOG_DBG("cluster %s: %s: %u connects failed in a row: next one in %u ms", cl->cfg->name,
               p->addr_text, p->connect_failures, d);
}

struct ml_pool *ml_pool_new(const struct ml_cluster *cl, uint32_t endpoint)
{
    const struct ml_cfg_addr *a = &cl->cfg->endpoints[endpoint].addr;
    struct ml_sock_addr at = {.family = a->family, .port = a->port};

    memcpy(at.ip, a->ip, sizeof(at.ip));
    return ml_pool_new_at(&at);
}

struct ml_pool *ml_pool_new_at(const struct ml_sock_addr *a)
{
    struct ml_pool *p = ml_calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->addr.family = a->family;
    p->addr.port = a->port;
    memcpy(p->addr.ip, a->ip, sizeof(p->addr.ip));
    ml_sock_addr_text(&p->addr, p->addr_text, sizeof(p->addr_text));
    ml_list_init(&p->slots);
    ml_list_init(&p->conns);
    ml_list_init(&p->waiters);
    return p;
}

void ml_pool_owner_change(struct ml_pool *p, struct ml_cluster *from, struct ml_cluster *to)
{
    if (from != NULL) {
        from->n_pending -= p->n_waiting;
    }
    if (to != NULL) {
        to->n_pending += p->n_waiting;
    }
}

static void count(struct ml_pool *p, enum ml_stats_up_event ev)
{
    struct ml_pool_slot *owner = ml_pool_owner(p);

    ml_stats_upstream(owner->cluster->balance->stats, ml_cluster_index(owner->cluster),
                      (int)owner->endpoint, ev);
}

static void conn_unlink(struct ml_pool *p, struct ml_pool_conn *pc)
{
    ml_list_remove(&pc->node);
    p->n_conns--;
    if (!pc->ready) {
        p->n_connecting--;
    }
    if (pc->going_away) {
        p->n_going_away--;
    }
    ml_timer_free(pc->keepalive);
    pc->keepalive = NULL;
    ml_timer_free(pc->handshake);
    pc->handshake = NULL;
}

void ml_pool_free(struct ml_pool *p, struct ml_loop *loop)
{
    struct ml_list *n;

    ml_loop_defer_cancel(loop, &p->dispatch);
    while ((n = ml_list_first(&p->conns)) != NULL) {
        struct ml_pool_conn *pc = ML_CONTAINER_OF(n, struct ml_pool_conn, node);

        conn_unlink(p, pc);
        ml_h2_conn_close(pc->conn); /* its streams' owners hear on_close; no pool callback */
        ml_free(pc);
    }
    ml_free(p);
}

static void waiter_push(struct ml_pool *p, struct ml_balance_waiter *w)
{
    w->pool = p;
    ml_list_add_tail(&p->waiters, &w->node);
    p->n_waiting++;
    ml_pool_cluster(p)->n_pending++;
    if (w->share != NULL) {
        w->share->n_waiting++;
    }
}

/* Takes w off p's queue; its share stays (the caller settles it, or w holds a slot next). */
static void waiter_unlink(struct ml_pool *p, struct ml_balance_waiter *w)
{
    ml_list_remove(&w->node);
    w->pool = NULL;
    p->n_waiting--;
    ml_pool_cluster(p)->n_pending--;
    if (w->share != NULL) {
        w->share->n_waiting--;
    }
    if (p->retired && p->n_waiting == 0) {
        dispatch_later(p); /* its idle connections can go now */
    }
}

void ml_balance_waiter_cancel(struct ml_balance_waiter *w)
{
    if (w->pool == NULL) {
        return;
    }
    waiter_unlink(w->pool, w);
    ml_share_settle(w);
}

/* The first connection with a free slot: filling connections in order is what makes a new
 * one open only when the others are full. */
static struct ml_pool_conn *find_slot(struct ml_pool *p)
{
    uint32_t limit = ml_pool_cluster(p)->cfg->max_streams_per_connection;

    for (struct ml_list *n = ml_list_first(&p->conns); n != NULL; n = ml_list_next(&p->conns, n)) {
        struct ml_pool_conn *pc = ML_CONTAINER_OF(n, struct ml_pool_conn, node);

        if (pc->ready && ml_h2_conn_free_slots(pc->conn, limit) > 0) {
            return pc;
        }
    }
    return NULL;
}

/* A TLS handshake to p ended (rv 0: done): counted by reason; a failure is then logged and
 * counted as a failed connect by pc_on_close, like a refused one. */
static void pc_tls_done(void *user, int rv, enum ml_tls_fail fail, const char *why)
{
    static const enum ml_stats_cluster_event ev[ML_TLS_FAIL_COUNT] = {
        [ML_TLS_FAIL_BAD_CERT] = ML_STATS_CL_TLS_FAIL_BAD_CERT,
        [ML_TLS_FAIL_UNKNOWN_CA] = ML_STATS_CL_TLS_FAIL_UNKNOWN_CA,
        [ML_TLS_FAIL_NO_ALPN] = ML_STATS_CL_TLS_FAIL_NO_ALPN,
        [ML_TLS_FAIL_VERSION] = ML_STATS_CL_TLS_FAIL_VERSION,
        [ML_TLS_FAIL_TIMEOUT] = ML_STATS_CL_TLS_FAIL_TIMEOUT,
        [ML_TLS_FAIL_PLAINTEXT] = ML_STATS_CL_TLS_FAIL_OTHER, /* a listener's reason only */
        [ML_TLS_FAIL_OTHER] = ML_STATS_CL_TLS_FAIL_OTHER,
        [ML_TLS_FAIL_IDENTITY] = ML_STATS_CL_TLS_FAIL_IDENTITY,
    };
    struct ml_pool_conn *pc = user;
    struct ml_cluster *cl = ml_pool_cluster(pc->pool);

    (void)why;
    ml_stats_cluster(cl->balance->stats, ml_cluster_index(cl),
                     rv == 0 ? ML_STATS_CL_TLS_HANDSHAKE
                             : ev[fail < ML_TLS_FAIL_COUNT ? fail : ML_TLS_FAIL_OTHER]);
}

/* cluster tls: TLS over the connection's socket, to the owner cluster's ca, cert, identity. */
static int pc_wrap(void *user, struct ml_transport *lower, struct ml_transport **out)
{
    struct ml_pool_conn *pc = user;
    struct ml_cluster *cl = ml_pool_cluster(pc->pool);
    int rv = ml_tls_connect(cl->tls, lower, cl->cfg->dns_host, pc_tls_done, pc, out);

    pc->tls = rv == 0 ? *out : NULL;
    if (rv == 0) {
        ml_tls_client_resume(*out, pc->pool->addr_text); /* reconnects resume its session */
    }
    return rv;
}

/* Opens one more connection. 0, or a negative errno with why. */
static int open_conn(struct ml_pool *p, char *why, size_t cap)
{
    struct ml_cluster *cl = ml_pool_cluster(p);
    struct ml_pool_conn *pc = ml_calloc(1, sizeof(*pc));
    uint32_t id;
    int rv;

    if (p->backoff_until_ms > ml_time_now_ms()) {
        ml_free(pc);
        count(p, ML_STATS_UP_BACKOFF);
        snprintf(why, cap, "cluster %s: endpoint unreachable (%u connects failed, backing off)",
                 cl->cfg->name, p->connect_failures);
        return -ECONNREFUSED;
    }
    if (pc == NULL) {
        snprintf(why, cap, "cluster %s: out of memory for an upstream connection", cl->cfg->name);
        return -ENOMEM;
    }
    pc->pool = p;
    /* connect_timeout bounds the whole way to a usable connection: TCP, and then the peer's
     * SETTINGS. A peer that accepts and never speaks HTTP/2 would otherwise hold the calls
     * waiting for it until their deadlines (or lws's own limits). */
    if ((pc->handshake = ml_timer_new(cl->balance->loop, pc_on_handshake_timeout, pc)) == NULL) {
        ml_free(pc);
        snprintf(why, cap, "cluster %s: out of memory for an upstream connection", cl->cfg->name);
        return -ENOMEM;
    }
    id = ++*cl->balance->conn_ids;
    rv = ml_h2_client_new(cl->balance->loop, &p->addr, cl->cfg->connect_timeout_ms, id,
                          &cl->settings, cl->tls != NULL ? pc_wrap : NULL, pc, &pool_conn_ops, pc,
                          &pc->conn);
    if (rv < 0) {
        ml_timer_free(pc->handshake);
        ml_free(pc);
        count(p, ML_STATS_UP_FAILED);
        backoff_failed(p);
        ML_LOG_WRN("cluster %s: cannot connect to %s: %s", cl->cfg->name, p->addr_text,
                   strerror(-rv));
        snprintf(why, cap, "cluster %s: cannot connect to an endpoint: %s", cl->cfg->name,
                 strerror(-rv));
        return rv;
    }
    ML_LOG_DBG("c%u: cluster %s: connecting to %s (%u of %u)", id, cl->cfg->name, p->addr_text,
               p->n_conns + 1, cl->cfg->max_connections);
    ml_list_add_tail(&p->conns, &pc->node); /* the oldest connection is filled first */
    p->n_conns++;
    p->n_connecting++;
    ml_timer_arm(pc->handshake, cl->cfg->connect_timeout_ms);
    count(p, ML_STATS_UP_OPENED);
    return 0;
}

/* Tells every waiter that no slot will come. */
static void fail_waiters(struct ml_pool *p, int reason, const char *why)
{
    struct ml_balance_waiter *w;

    while ((w = ML_LIST_ENTRY(ml_list_first(&p->waiters), struct ml_balance_waiter, node)) !=
           NULL) {
        ml_balance_waiter_cancel(w);
        w->on_fail(w, reason, why);
    }
}

/* Opens connections while the waiters outnumber what the connecting ones are expected to take. */
static void grow(struct ml_pool *p)
{
    struct ml_cluster *cl = ml_pool_cluster(p);
    char why[160];
    int rv;

    while (p->n_waiting > p->n_connecting * cl->slots_per_conn &&
           p->n_conns - p->n_going_away < cl->cfg->max_connections) {
        if ((rv = open_conn(p, why, sizeof(why))) < 0) {
            if (p->n_conns == 0) {
                fail_waiters(p, rv, why);
            }
            return;
        }
    }
}

/* A retired pool with no call waiting: closes the connections that carry no stream. */
static void close_idle(struct ml_pool *p)
{
    struct ml_list *n, *next;

    for (n = ml_list_first(&p->conns); n != NULL; n = next) {
        struct ml_pool_conn *pc = ML_CONTAINER_OF(n, struct ml_pool_conn, node);

        next = ml_list_next(&p->conns, n);
        if (!pc->ready || ml_h2_conn_n_streams(pc->conn) == 0) {
            ML_LOG_DBG("c%u: cluster %s: %s is gone from the config: closing",
                       ml_h2_conn_id(pc->conn), ml_pool_cluster(p)->cfg->name, p->addr_text);
            conn_unlink(p, pc);
            if (pc->ready) {
                count(p, ML_STATS_UP_CLOSED);
            }
            ml_h2_conn_close(pc->conn); /* no stream: nobody hears anything */
            ml_free(pc);
        }
    }
}

void ml_pool_retire(struct ml_pool *p)
{
    p->retired = true;
    if (p->n_waiting == 0) {
        dispatch_later(p); /* closes the idle connections, at the end of the event */
    }
}

/* The oldest waiter whose share lets it take a slot now; NULL when none. Waiters over their
 * share are passed over, not failed: they go once their connection's streams end. */
static struct ml_balance_waiter *next_eligible(struct ml_pool *p)
{
    for (struct ml_list *n = ml_list_first(&p->waiters); n != NULL;
         n = ml_list_next(&p->waiters, n)) {
        struct ml_balance_waiter *w = ML_CONTAINER_OF(n, struct ml_balance_waiter, node);

        if (ml_share_may_hold(w)) {
            return w;
        }
    }
    return NULL;
}

/* Hands free slots to waiters, oldest first within their shares; opens connections for the
 * rest. */
static void dispatch(struct ml_pool *p)
{
    struct ml_balance_waiter *w;
    struct ml_pool_conn *pc;

    /* Looked up afresh each time: on_ready may end other calls (and so change the queue). */
    while ((pc = find_slot(p)) != NULL && (w = next_eligible(p)) != NULL) {
        waiter_unlink(p, w);
        ml_share_hold(w);
        w->on_ready(w, pc->conn); /* opens its stream on pc->conn now */
    }
    if (!ml_list_empty(&p->waiters)) {
        grow(p);
    } else if (p->retired) {
        close_idle(p);
    }
}

static void dispatch_deferred(struct ml_defer *d)
{
    dispatch(ML_CONTAINER_OF(d, struct ml_pool, dispatch));
}

static void dispatch_later(struct ml_pool *p)
{
    ml_loop_defer(ml_pool_cluster(p)->balance->loop, &p->dispatch, dispatch_deferred);
}

void ml_pool_dispatch_later(struct ml_pool *p)
{
    dispatch_later(p);
}

int ml_pool_pick(struct ml_pool *p, struct ml_balance_waiter *w, struct ml_h2_conn **conn,
                 char *why, size_t cap)
{
    struct ml_cluster *cl = ml_pool_cluster(p);
    struct ml_pool_conn *pc;
    int rv;

    *conn = NULL;
    if (ml_share_may_hold(w) && ml_list_empty(&p->waiters) && (pc = find_slot(p)) != NULL) {
        ml_share_hold(w);
        *conn = pc->conn;
        return 0;
    }
    if (cl->n_pending >= cl->cfg->max_pending) {
        ML_LOG_DBG("cluster %s: no free stream to %s and max_pending calls waiting", cl->cfg->name,
                   p->addr_text);
        snprintf(why, cap, "cluster %s: no free stream and max_pending (%u) calls waiting",
                 cl->cfg->name, cl->cfg->max_pending);
        ml_stats_cluster(cl->balance->stats, ml_cluster_index(cl), ML_STATS_CL_PENDING_OVERFLOW);
        return -EBUSY;
    }
    if (w->share != NULL && w->share->n_waiting >= ml_share_wait_max(w->share->cluster)) {
        ml_share_why(w, why, cap); /* it would take more than its part of the queue */
        return -EBUSY;
    }
    /* Open a connection now if this call will need one, so that an error shows here. */
    if (p->n_waiting + 1 > p->n_connecting * cl->slots_per_conn &&
        p->n_conns - p->n_going_away < cl->cfg->max_connections &&
        (rv = open_conn(p, why, cap)) < 0 && p->n_conns == 0) {
        return rv;
    }
    waiter_push(p, w);
    if (find_slot(p) != NULL) {
        /* A free slot, but earlier waiters over their share hold the queue: this one may
         * take it, at the end of the event (never from inside this call). */
        dispatch_later(p);
    }
    return -EINPROGRESS;
}

/* ---- keepalive ------------------------------------------------------------------------------ */

/* Cluster keepalive: a connection that has heard nothing from its peer for `keepalive` gets a
 * PING; when that stays unanswered for min(keepalive, 20 s) the path is taken for dead (a NAT
 * that forgot it, a peer that vanished without a FIN): the connection is closed, its calls fail
 * (UNAVAILABLE before their response started, a reset after), new calls get a new connection. */
static void pc_on_keepalive(void *user)
{
    struct ml_pool_conn *pc = user;
    struct ml_pool *p = pc->pool;
    uint32_t interval = ml_pool_cluster(p)->cfg->keepalive_ms;
    uint32_t ack_max = interval < PING_ACK_MAX_MS ? interval : PING_ACK_MAX_MS;
    uint64_t now = ml_time_now_ms(), quiet = now - ml_h2_conn_last_read_ms(pc->conn);

    if (interval == 0) {
        return; /* a hot apply turned keepalive off for the cluster */
    }
    if (ml_h2_conn_ping_pending(pc->conn)) {
        if (now - pc->ping_sent_ms < ack_max) {
            ml_timer_arm(pc->keepalive, (uint32_t)(pc->ping_sent_ms + ack_max - now));
            return;
        }
        ML_LOG_WRN("c%u: cluster %s: %s did not answer a PING within %u ms: closing",
                   ml_h2_conn_id(pc->conn), ml_pool_cluster(p)->cfg->name, p->addr_text, ack_max);
        conn_unlink(p, pc); /* frees this timer: allowed from its own callback */
        count(p, ML_STATS_UP_CLOSED);
        ml_h2_conn_close(pc->conn); /* its calls hear on_close(CANCEL) */
        ml_free(pc);
        if (!ml_list_empty(&p->waiters)) {
            dispatch_later(p);
        }
        return;
    }
    if (quiet < interval) {
        ml_timer_arm(pc->keepalive, (uint32_t)(interval - quiet));
        return;
    }
    if (ml_h2_conn_ping(pc->conn) == 0) {
        pc->ping_sent_ms = now;
        ml_timer_arm(pc->keepalive, ack_max);
    } else {
        ml_timer_arm(pc->keepalive, interval);
    }
}

/* ---- the pooled connections' events ---------------------------------------------------- */

/* The peer's SETTINGS arrived: the connection takes streams. From inside its nghttp2 callbacks,
 * so the waiters get it at the end of the event (their requests go out then). */
static void pc_ready(struct ml_pool_conn *pc)
{
    struct ml_pool *p = pc->pool;
    struct ml_cluster *cl = ml_pool_cluster(p);

    pc->ready = true;
    p->n_connecting--;
    p->connect_failures = 0; /* it answers: connects go at once again */
    p->backoff_until_ms = 0;
    p->conn_streams = ml_h2_conn_free_slots(pc->conn, cl->cfg->max_streams_per_connection) +
                      ml_h2_conn_n_streams(pc->conn);
    ml_timer_free(pc->handshake);
    pc->handshake = NULL;
    count(p, ML_STATS_UP_CONNECTED);
    if (cl->cfg->keepalive_ms > 0) {
        /* No memory for it: the connection goes without keepalive (logged). */
        pc->keepalive = ml_timer_new(cl->balance->loop, pc_on_keepalive, pc);
        if (pc->keepalive != NULL) {
            ml_timer_arm(pc->keepalive, cl->cfg->keepalive_ms);
        } else {
            ML_LOG_WRN("c%u: out of memory for keepalive", ml_h2_conn_id(pc->conn));
        }
    }
    ML_LOG_DBG("c%u: cluster %s: connected to %s (SETTINGS received)", ml_h2_conn_id(pc->conn),
               cl->cfg->name, p->addr_text);
    dispatch_later(p);
}

/* TCP is up (and TLS, for a cluster with tls); our preface goes out now, the connection takes
 * streams once the peer's SETTINGS come (pc_on_slots), within what is left of connect_timeout. */
static void pc_on_ready(void *user, struct ml_h2_conn *conn)
{
    struct ml_pool_conn *pc = user;

    pc->connected = true;
    ML_LOG_DBG("c%u: cluster %s: TCP connected to %s, waiting for its SETTINGS",
               ml_h2_conn_id(conn), ml_pool_cluster(pc->pool)->cfg->name, pc->pool->addr_text);
}

/* connect_timeout passed before the peer's SETTINGS: the connection failed to connect, like a
 * refused one; the calls waiting for it fail (UNAVAILABLE, naming the timeout) unless another
 * connection of the pool may still serve them. */
static void pc_on_handshake_timeout(void *user)
{
    struct ml_pool_conn *pc = user;
    struct ml_pool *p = pc->pool;
    struct ml_cluster *cl = ml_pool_cluster(p);
    bool tls = ml_tls_client_handshaking(pc->tls);
    char msg[200];

    snprintf(msg, sizeof(msg),
             "cluster %s: connect to an endpoint failed: %s within connect_timeout (%u ms)",
             cl->cfg->name,
             pc->connected ? "no HTTP/2 SETTINGS from the peer"
             : tls         ? "TLS handshake (timeout) not done"
                           : "TCP not connected",
             cl->cfg->connect_timeout_ms);
    if (tls) {
        ml_stats_cluster(cl->balance->stats, ml_cluster_index(cl), ML_STATS_CL_TLS_FAIL_TIMEOUT);
    }
    ML_LOG_LIMITED(&p->connect_log, ML_LOG_LEVEL_WRN, "c%u: %s: %s", ml_h2_conn_id(pc->conn),
                   p->addr_text, msg);
    conn_unlink(p, pc); /* frees this timer: allowed from its own callback */
    count(p, ML_STATS_UP_FAILED);
    backoff_failed(p);
    ml_h2_conn_close(pc->conn); /* not ready: no stream on it, nobody hears anything */
    ml_free(pc);
    if (p->n_conns == 0) {
        fail_waiters(p, -ETIMEDOUT, msg);
    } else if (!ml_list_empty(&p->waiters)) {
        dispatch_later(p);
    }
}

static void pc_on_slots(void *user, struct ml_h2_conn *conn)
{
    struct ml_pool_conn *pc = user;

    if (!pc->ready && pc->connected && ml_h2_conn_greeted(conn)) {
        pc_ready(pc);
    } else if (pc->ready && !ml_h2_conn_going_away(conn)) {
        /* The peer's SETTINGS may have changed what a connection takes (fair shares). */
        pc->pool->conn_streams =
            ml_h2_conn_free_slots(conn,
                                  ml_pool_cluster(pc->pool)->cfg->max_streams_per_connection) +
            ml_h2_conn_n_streams(conn);
    }
    if (!pc->going_away && ml_h2_conn_going_away(conn)) {
        /* It only finishes what it has: a new connection may take its place in the pool. */
        ML_LOG_DBG("c%u: cluster %s: %s sent GOAWAY", ml_h2_conn_id(conn),
                   ml_pool_cluster(pc->pool)->cfg->name, pc->pool->addr_text);
        pc->going_away = true;
        pc->pool->n_going_away++;
    }
    if (!ml_list_empty(&pc->pool->waiters) || pc->pool->retired) {
        dispatch_later(pc->pool); /* called from inside the connection's nghttp2 callbacks */
    }
}

static void pc_on_close(void *user, struct ml_h2_conn *conn, int reason, const char *why)
{
    struct ml_pool_conn *pc = user;
    struct ml_pool *p = pc->pool;
    struct ml_cluster *cl = ml_pool_cluster(p);
    bool was_ready = pc->ready;
    char msg[200];

    conn_unlink(p, pc);
    ml_free(pc);
    count(p, was_ready ? ML_STATS_UP_CLOSED : ML_STATS_UP_FAILED);
    if (!was_ready) {
        snprintf(msg, sizeof(msg), "cluster %s: connect to an endpoint failed: %s", cl->cfg->name,
                 why);
        ML_LOG_LIMITED(&p->connect_log, ML_LOG_LEVEL_WRN, "c%u: %s: %s", ml_h2_conn_id(conn),
                       p->addr_text, msg);
        backoff_failed(p);
        if (p->n_conns == 0) {
            fail_waiters(p, reason < 0 ? reason : -ECONNREFUSED, msg);
        }
    } else {
        ML_LOG_DBG("c%u: cluster %s: connection to %s closed (%s)", ml_h2_conn_id(conn),
                   cl->cfg->name, p->addr_text, why);
    }
    if (!ml_list_empty(&p->waiters)) {
        dispatch_later(p);
    }
}

static const struct ml_h2_client_ops pool_conn_ops = {
    .on_ready = pc_on_ready,
    .on_slots = pc_on_slots,
    .on_close = pc_on_close,
};
