/* The clusters of one snapshot. A hot apply builds the next balance beside the running one
 * (ml_balance_prepare) and switches (ml_balance_commit): hosts (balance/host.h: a pool, health,
 * counters) are shared between the clusters of both that have the same name and endpoint
 * address, so connections, waiting calls and host state carry on; the old balance lives until
 * its last call ends. Which host a call goes to is its cluster's policy's choice (balance/lb.h). */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "balance/health.h"
#include "balance/host.h"
#include "balance/lb.h"
#include "config/features.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/stats.h"
#include "core/timer.h"
#include "h2/h2.h"
#include "meshlet_config.h"
#include "tls/tls_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether connections made for a may carry b's calls: the same tls, sni and identity. Pooled
 * connections outlive an apply, so a cluster that turns tls on (or asks for another identity)
 * must not go on over connections that were made without it: its endpoints get new pools and
 * the old ones drain (as a removed endpoint's). A certificate rotated under the same paths is
 * not such a change: pooled connections keep going, new ones read the new files. */
static bool same_upstream_tls(const struct ml_cfg_cluster *a, const struct ml_cfg_cluster *b)
{
    return a->tls == b->tls && same_text(a->sni, b->sni) && same_text(a->identity, b->identity);
}

/* The pool of cur's cluster named cfg->name for endpoint addr, or NULL (also when the two
 * clusters' TLS differ: same_upstream_tls). */
static struct ml_pool *find_pool(const struct ml_balance *cur, const struct ml_cfg_cluster *cfg,
                                 const struct ml_cfg_addr *addr)
{
    for (uint32_t i = 0; cur != NULL && i < cur->n_clusters; i++) {
        const struct ml_cluster *cl = &cur->clusters[i];

        if (strcmp(cl->cfg->name, cfg->name) != 0) {
            continue;
        }
        if (!same_upstream_tls(cl->cfg, cfg)) {
            return NULL;
        }
        for (uint32_t e = 0; e < cl->n_slots; e++) {
            const struct ml_pool *p = cl->slots[e].pool;

            if (p != NULL && p->addr.family == addr->family && p->addr.port == addr->port &&
                memcmp(p->addr.ip, addr->ip, sizeof(p->addr.ip)) == 0) {
                return cl->slots[e].pool;
            }
        }
        return NULL;
    }
    return NULL;
}

static void slot_link(struct ml_pool_slot *s)
{
    struct ml_pool *p = s->pool;
    struct ml_cluster *from = ml_list_empty(&p->slots) ? NULL : ml_pool_cluster(p);

    ml_list_add_tail(&p->slots, &s->node);
    s->linked = true;
    ml_host_ref(p->host);
    ml_pool_owner_change(p, from, s->cluster);
}

/* Takes s out of its pool and drops its reference on the host (whose last one frees it). */
static void slot_unlink(struct ml_pool_slot *s)
{
    struct ml_pool *p = s->pool;
    bool owner;

    if (p != NULL && s->held) {
        s->held = false;
        ml_host_unref(p->host); /* a dns cluster's prepared slot: its own reference */
    }
    if (!s->linked) {
        return; /* prepared, never committed: the pool is cur's (and may be gone already) */
    }
    owner = ml_pool_owner(p) == s;
    ml_list_remove(&s->node);
    s->linked = false;
    if (ml_list_empty(&p->slots)) {
        ml_pool_owner_change(p, s->cluster, NULL);
    } else if (owner) {
        ml_pool_owner_change(p, s->cluster, ml_pool_cluster(p));
    }
    ml_host_unref(p->host);
}

/* A new host (and its pool) for address a (NULL: endpoint e of the config) of cl, linked to
 * slot s. 0; -ENOMEM. */
static int slot_new_host(struct ml_cluster *cl, struct ml_pool_slot *s, uint32_t e,
                         const struct ml_sock_addr *a)
{
    struct ml_pool *p = a != NULL ? ml_pool_new_at(a) : ml_pool_new(cl, e);
    struct ml_host *h;

    if (p == NULL) {
        return -ENOMEM;
    }
    if ((h = ml_host_new(cl->balance->loop, p)) == NULL) {
        ml_pool_free(p, cl->balance->loop);
        return -ENOMEM;
    }
    s->pool = p;
    slot_link(s);     /* its own host: nobody else sees it */
    ml_host_unref(h); /* the slot's reference is the one that remains */
    return 0;
}

/* The policy lb = of cl, over its hosts. 0; -ENOMEM; -ENOTSUP for a policy not built yet (the
 * config check refuses those, so only a caller that skipped it sees this). */
static int cluster_lb_init(struct ml_cluster *cl)
{
    const struct ml_lb_ops *ops = ml_lb_ops_for(cl->cfg->lb);
    int rv;

    if (ops == NULL) {
        ML_LOG_ERR("cluster %s: lb policy %d is not built", cl->cfg->name, (int)cl->cfg->lb);
        return -ENOTSUP;
    }
    cl->lb.cluster = cl;
    if (ops->init != NULL && (rv = ops->init(&cl->lb)) < 0) {
        return rv;
    }
    cl->lb.ops = ops; /* from now on ml_balance_free frees it */
    return 0;
}

/* cur's cluster named cl's with the same dns name and port, or NULL. */
static struct ml_cluster *dns_cluster_of(const struct ml_balance *cur, const struct ml_cluster *cl)
{
    for (uint32_t i = 0; cur != NULL && i < cur->n_clusters; i++) {
        struct ml_cluster *c = &cur->clusters[i];

        if (strcmp(c->cfg->name, cl->cfg->name) == 0 && c->cfg->dns_host != NULL &&
            strcmp(c->cfg->dns_host, cl->cfg->dns_host) == 0 &&
            c->cfg->dns_port == cl->cfg->dns_port && same_upstream_tls(c->cfg, cl->cfg)) {
            return c;
        }
    }
    return NULL;
}

/* A dns cluster: room for ML_LB_HOSTS_MAX hosts and its resolver. Built beside a running
 * cluster with the same name and dns (a hot apply), it starts with that cluster's hosts (shared
 * at commit, as endpoints are), so calls go on while its own resolver makes its first lookup. */
static int dns_cluster_build(struct ml_cluster *cl, const struct ml_balance *cur)
{
    const struct ml_cluster *was = dns_cluster_of(cur, cl);

    if ((cl->slots = ml_calloc(ML_LB_HOSTS_MAX, sizeof(*cl->slots))) == NULL) {
        return -ENOMEM;
    }
    for (uint32_t e = 0; was != NULL && e < was->n_slots; e++) {
        struct ml_pool *p = was->slots[e].pool;
        struct ml_pool_slot *s = &cl->slots[cl->n_slots];

        if (p == NULL || (p->host->state & ML_HOST_DRAINING) != 0) {
            continue;
        }
        s->cluster = cl;
        s->endpoint = cl->n_slots++;
        s->pool = p;
        s->held = true;
        ml_host_ref(p->host);
    }
    if (was != NULL) {
        cl->dns_stats.hosts = cl->n_slots;
    }
    return ml_dns_new(cl);
}

/* cl's TLS (tls = on | mtls): its files are read now, so each apply reads them again. The check
 * read them just before (config/validate_tls.c): a failure here is a file changed in between. */
static int cluster_tls_init(struct ml_cluster *cl)
{
    const struct ml_cfg_cluster *cfg = cl->cfg;
    struct ml_tls_client_cfg tc = {
        .ca = cfg->ca,
        .cert = cfg->tls == ML_CFG_TLS_MTLS ? cfg->cert : NULL,
        .key = cfg->tls == ML_CFG_TLS_MTLS ? cfg->key : NULL,
        .identity = cfg->identity,
        .sni = cfg->sni,
    };
    char why[256];
    int rv;

    if (cfg->tls == ML_CFG_TLS_OFF || !ML_HAVE_DATA_TLS) {
        return 0; /* without ML_TLS the check refused tls: the TLS code is left out of the link */
    }
    if ((rv = ml_tls_client_new(&tc, why, sizeof(why), &cl->tls)) < 0) {
        ML_LOG_ERR("cluster %s: TLS: %s", cfg->name, why);
    }
    return rv;
}

/* Builds the clusters of snap; hosts shared with cur (may be NULL) are left unlinked. */
static int balance_build(struct ml_loop *loop, const struct ml_snapshot *snap, uint32_t *conn_ids,
                         struct ml_balance *cur, struct ml_balance **out)
{
    struct ml_balance *b;
    int rv;

    *out = NULL;
    if ((b = ml_calloc(1, sizeof(*b))) == NULL) {
        return -ENOMEM;
    }
    b->loop = loop;
    b->snap = snap;
    b->conn_ids = conn_ids;
    ml_rand_seed_os(&b->rand);
    if (snap->n_clusters > 0 &&
        (b->clusters = ml_calloc(snap->n_clusters, sizeof(*b->clusters))) == NULL) {
        ml_free(b);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < snap->n_clusters; i++) {
        struct ml_cluster *cl = &b->clusters[i];
        const struct ml_cfg_cluster *cfg = &snap->clusters[i];

        cl->balance = b;
        cl->cfg = cfg;
        ml_list_init(&cl->shares);
        cl->slots_per_conn =
            cfg->max_streams_per_connection < 100 ? cfg->max_streams_per_connection : 100;
        /* Per stream, a peer may send what one call buffers. */
        cl->settings = (struct ml_h2_settings){
            .max_streams = 0,
            .stream_window_bytes = CONFIG_ML_CALL_BUFFER_BYTES,
            .conn_window_bytes =
                ml_h2_conn_window(CONFIG_ML_CALL_BUFFER_BYTES, cfg->max_streams_per_connection),
            .max_header_list_bytes = CONFIG_ML_MAX_HEADER_LIST_BYTES,
        };
        b->n_clusters = i + 1;
        if ((rv = cluster_tls_init(cl)) < 0) {
            ml_balance_free(b);
            return rv;
        }
        if (cfg->n_endpoints > 0 &&
            (cl->slots = ml_calloc(cfg->n_endpoints, sizeof(*cl->slots))) == NULL) {
            ml_balance_free(b);
            return -ENOMEM;
        }
        for (uint32_t e = 0; e < cfg->n_endpoints; e++) {
            struct ml_pool_slot *s = &cl->slots[e];

            s->cluster = cl;
            s->endpoint = e;
            s->pool = find_pool(cur, cfg, &cfg->endpoints[e].addr);
            if (s->pool == NULL && (rv = slot_new_host(cl, s, e, NULL)) < 0) {
                ml_balance_free(b);
                return rv;
            }
            cl->n_slots = e + 1;
        }
        if (cfg->dns_host != NULL && (rv = dns_cluster_build(cl, cur)) < 0) {
            ml_balance_free(b);
            return rv;
        }
        if ((rv = cluster_lb_init(cl)) < 0) {
            ml_balance_free(b);
            return rv;
        }
    }
    *out = b;
    return 0;
}

/* The resolvers of b's dns clusters start: now for a new balance, at commit for a prepared one. */
static void dns_start(struct ml_balance *b)
{
    for (uint32_t i = 0; i < b->n_clusters; i++) {
        ml_dns_start(b->clusters[i].dns);
    }
}

int ml_balance_new(struct ml_loop *loop, const struct ml_snapshot *snap, uint32_t *conn_ids,
                   struct ml_balance **out)
{
    int rv = balance_build(loop, snap, conn_ids, NULL, out);

    if (rv == 0) {
        ml_balance_health_sync(*out); /* health_check = tcp | grpc: its hosts' checks start */
        dns_start(*out);
    }
    return rv;
}

int ml_balance_prepare(struct ml_balance *cur, const struct ml_snapshot *next,
                       struct ml_balance **out)
{
    return balance_build(cur->loop, next, cur->conn_ids, cur, out);
}

static void idle_deferred(struct ml_defer *d)
{
    struct ml_balance *b = ML_CONTAINER_OF(d, struct ml_balance, idle_defer);

    b->on_idle(b->idle_user); /* frees b */
}

void ml_balance_commit(struct ml_balance *next, struct ml_balance *prev,
                       ml_balance_idle_fn *on_idle, void *user)
{
    for (uint32_t i = 0; i < next->n_clusters; i++) {
        struct ml_cluster *cl = &next->clusters[i];

        for (uint32_t e = 0; e < cl->n_slots; e++) {
            struct ml_pool_slot *s = &cl->slots[e];

            if (s->pool != NULL && !s->linked) {
                slot_link(s);
            }
            if (s->held) {
                s->held = false;
                ml_host_unref(s->pool->host); /* the link's reference replaces it */
            }
        }
    }
    for (uint32_t i = 0; i < next->n_clusters; i++) {
        struct ml_cluster *cl = &next->clusters[i], *was;

        if (cl->dns != NULL && (was = dns_cluster_of(prev, cl)) != NULL) {
            ml_dns_move(was, cl); /* no wait for a lookup in progress */
        }
    }
    ml_balance_health_sync(next); /* next's config says how its hosts are checked from now on */
    dns_start(next);
    prev->retired = true;
    prev->on_idle = on_idle;
    prev->idle_user = user;
    for (uint32_t i = 0; i < prev->n_clusters; i++) {
        struct ml_cluster *cl = &prev->clusters[i];

        ml_dns_free(cl->dns); /* next's resolver decides its hosts from now on */
        for (uint32_t e = 0; e < cl->n_slots; e++) {
            struct ml_pool *p = cl->slots[e].pool;

            if (p != NULL && !p->retired && ml_pool_cluster(p)->balance == prev) {
                ML_LOG_INF("cluster %s: endpoint %s is gone: its connections close once idle",
                           cl->cfg->name, p->addr_text);
                ml_pool_retire(p);
                ml_host_state_set(p->host, ML_HOST_DRAINING, true); /* no new picks */
            }
        }
    }
    if (prev->n_active == 0) {
        ml_loop_defer(prev->loop, &prev->idle_defer, idle_deferred);
    }
}

void ml_balance_free(struct ml_balance *b)
{
    if (b == NULL) {
        return;
    }
    ml_loop_defer_cancel(b->loop, &b->idle_defer);
    for (uint32_t i = 0; i < b->n_clusters; i++) {
        struct ml_cluster *cl = &b->clusters[i];

        ml_dns_free(cl->dns);
        if (cl->lb.ops != NULL && cl->lb.ops->free != NULL) {
            cl->lb.ops->free(&cl->lb);
        }
        for (uint32_t e = 0; e < cl->n_slots; e++) {
            if (cl->slots[e].pool != NULL) {
                slot_unlink(&cl->slots[e]);
            }
        }
        ml_free(cl->slots);
        ml_free(cl->spare_share);
        ml_tls_client_free(cl->tls); /* its connections keep it until they close */
    }
    ml_stats_free(b->stats);
    ml_free(b->clusters);
    ml_free(b);
}

void ml_balance_set_stats(struct ml_balance *b, struct ml_stats *stats)
{
    struct ml_stats *old = b->stats;

    b->stats = ml_stats_ref(stats);
    ml_stats_free(old);
}

void ml_balance_endpoints(const struct ml_balance *b, uint32_t *healthy, uint32_t *total)
{
    *healthy = *total = 0;
    for (uint32_t i = 0; i < b->n_clusters; i++) {
        for (uint32_t e = 0; e < b->clusters[i].n_slots; e++) {
            const struct ml_pool *p = b->clusters[i].slots[e].pool;
            const struct ml_host *h;

            if (p == NULL) {
                continue; /* a free slot of a dns cluster */
            }
            h = p->host;
            (*total)++;
            *healthy += (h->state & ML_HOST_UNHEALTHY) == 0;
        }
    }
}

int ml_cluster_index(const struct ml_cluster *cl)
{
    return (int)(cl - cl->balance->clusters);
}

const char *ml_cluster_endpoint_text(const struct ml_cluster *cl, int endpoint)
{
    if (endpoint < 0 || (uint32_t)endpoint >= cl->n_slots || cl->slots[endpoint].pool == NULL) {
        return NULL;
    }
    return cl->slots[endpoint].pool->addr_text;
}

struct ml_cluster *ml_balance_cluster(struct ml_balance *b, int index)
{
    return &b->clusters[index];
}

const char *ml_cluster_name(const struct ml_cluster *cl)
{
    return cl->cfg->name;
}

int ml_cluster_call_begin(struct ml_cluster *cl, char *why, size_t cap)
{
    if (cl->n_active >= cl->cfg->max_requests) {
        snprintf(why, cap, "cluster %s: max_requests (%u) calls active", cl->cfg->name,
                 cl->cfg->max_requests);
        ml_stats_cluster(cl->balance->stats, ml_cluster_index(cl), ML_STATS_CL_OVER_MAX_REQUESTS);
        return -EBUSY;
    }
    cl->n_active++;
    cl->balance->n_active++;
    return 0;
}

void ml_cluster_call_end(struct ml_cluster *cl)
{
    struct ml_balance *b = cl->balance;

    cl->n_active--;
    if (--b->n_active == 0 && b->retired) {
        ml_loop_defer(b->loop, &b->idle_defer, idle_deferred);
    }
}

int ml_cluster_retry_begin(struct ml_cluster *cl, char *why, size_t cap)
{
    if (cl->n_retrying >= cl->cfg->max_retries) {
        snprintf(why, cap, "cluster %s: max_retries (%u) retries in flight", cl->cfg->name,
                 cl->cfg->max_retries);
        ml_stats_cluster(cl->balance->stats, ml_cluster_index(cl), ML_STATS_CL_OVER_MAX_RETRIES);
        return -EBUSY;
    }
    cl->n_retrying++;
    return 0;
}

void ml_cluster_retry_end(struct ml_cluster *cl)
{
    cl->n_retrying--;
}

/* The attempt of w begins on slot s's host. */
static void attempt_begin(struct ml_cluster *cl, struct ml_balance_waiter *w, uint32_t host)
{
    struct ml_host *h = ml_host_ref(cl->slots[host].pool->host);

    w->endpoint = (int)host;
    w->host = h;
    w->picked_ms = ml_time_now_ms();
    h->counters.active++;
    h->counters.calls++;
    if (cl->lb.ops->on_take != NULL) {
        cl->lb.ops->on_take(&cl->lb, host);
    }
}

void ml_cluster_attempt_end(struct ml_cluster *cl, struct ml_balance_waiter *w,
                            const struct ml_attempt_outcome *o)
{
    struct ml_attempt_outcome out = *o;
    struct ml_host *h = w->host;
    bool failed;

    if (h == NULL) {
        return;
    }
    w->host = NULL;
    out.latency_ms = ml_time_now_ms() - w->picked_ms;
    h->counters.active--;
    failed = ml_attempt_failed(&out);
    if (failed) {
        h->counters.failures++;
    }
    ml_outlier_attempt_end(h, &out, failed);
    /* A dns answer may have reused the slot since (its index then names another host). */
    if (cl->lb.ops != NULL && cl->lb.ops->on_drop != NULL && (uint32_t)w->endpoint < cl->n_slots &&
        cl->slots[w->endpoint].pool != NULL && cl->slots[w->endpoint].pool->host == h) {
        cl->lb.ops->on_drop(&cl->lb, (uint32_t)w->endpoint, &out);
    }
    ml_host_unref(h);
}

/* The attempt of w ends before anything was sent. */
static void attempt_not_sent(struct ml_cluster *cl, struct ml_balance_waiter *w)
{
    static const struct ml_attempt_outcome not_sent = {.end = ML_ATTEMPT_NOT_SENT,
                                                       .grpc_status = -1};

    ml_cluster_attempt_end(cl, w, &not_sent);
}

/* host's pool has no connection and may not open one yet (its connect backoff): another usable
 * host the policy picks instead, if there is one that is not backing off too; else host (whose
 * pool then fails the call at once). So a dead endpoint costs no call while others can serve. */
static int avoid_backoff(struct ml_cluster *cl, const struct ml_lb_pick_ctx *ctx, int host)
{
    struct ml_lb_tried skip = ctx->tried != NULL ? *ctx->tried : (struct ml_lb_tried){{0}};
    struct ml_lb_pick_ctx again = *ctx;
    uint64_t now = ml_time_now_ms();
    int other = host, next;

    again.tried = &skip;
    for (uint32_t n = 0; n < cl->n_slots; n++) {
        const struct ml_pool *p = cl->slots[other].pool;

        if (p->n_conns > 0 || p->backoff_until_ms <= now) {
            return other;
        }
        ml_lb_tried_add(&skip, (uint32_t)other);
        if ((next = cl->lb.ops->pick(&cl->lb, &again)) < 0) {
            return host;
        }
        ml_stats_upstream(cl->balance->stats, ml_cluster_index(cl), other, ML_STATS_UP_BACKOFF);
        other = next;
    }
    return host;
}

int ml_cluster_pick(struct ml_cluster *cl, struct ml_balance_waiter *w,
                    const struct ml_lb_pick_ctx *ctx, struct ml_h2_conn **conn, char *why,
                    size_t cap)
{
    struct ml_lb_pick_ctx any = {.rand = &cl->balance->rand};
    int host, rv;

    *conn = NULL;
    w->endpoint = -1;
    if (cl->n_slots == 0 || cl->lb.ops == NULL) {
        snprintf(why, cap, "cluster %s: no endpoint%s", cl->cfg->name,
                 cl->dns != NULL ? " (dns has not answered yet)" : "");
        return -ENOENT;
    }
    if (ctx == NULL) {
        ctx = &any;
    }
    host = cl->lb.ops->pick(&cl->lb, ctx);
    if (host < 0 && ctx->tried != NULL) {
        /* Every usable host was tried: one of them again rather than none. */
        any = *ctx;
        any.tried = NULL;
        host = cl->lb.ops->pick(&cl->lb, &any);
    }
    if (host < 0) {
        snprintf(why, cap, "cluster %s: no usable endpoint (all %u unhealthy, ejected or draining)",
                 cl->cfg->name, cl->n_slots);
        return -ENOENT;
    }
    host = avoid_backoff(cl, ctx, host);
    attempt_begin(cl, w, (uint32_t)host);
    if (ml_share_join(cl, w) < 0) {
        attempt_not_sent(cl, w);
        snprintf(why, cap, "cluster %s: out of memory for a call's share", cl->cfg->name);
        return -ENOMEM;
    }
    rv = ml_pool_pick(cl->slots[host].pool, w, conn, why, cap);
    if (rv < 0 && rv != -EINPROGRESS) {
        ml_share_settle(w);
        if (rv == -EBUSY || rv == -ENOMEM) {
            attempt_not_sent(cl, w); /* our own limits: nothing to say about the host */
        } else {
            /* the host cannot be reached (a connect failed at once, or its backoff): outlier
             * detection counts it like a connect that failed later */
            static const struct ml_attempt_outcome unreachable = {.end = ML_ATTEMPT_CONNECT_FAILED,
                                                                  .grpc_status = -1};

            ml_cluster_attempt_end(cl, w, &unreachable);
        }
    }
    return rv;
}

uint32_t ml_cluster_n_hosts(const struct ml_cluster *cl)
{
    return cl->n_slots;
}

bool ml_cluster_host_view(const struct ml_cluster *cl, uint32_t i, struct ml_host_view *v)
{
    const struct ml_pool *p = cl->slots[i].pool;
    const struct ml_host *h;
    uint64_t now = ml_time_now_ms();

    if (p == NULL) {
        return false; /* a free slot of a dns cluster */
    }
    h = p->host;
    *v = (struct ml_host_view){
        .addr = p->addr_text,
        .weight = ml_lb_weight(&cl->lb, i),
        .state = h->state,
        .ejected_ms_left = (h->state & ML_HOST_EJECTED) && h->outlier.ejected_until_ms > now
                               ? h->outlier.ejected_until_ms - now
                               : 0,
        .ejections = h->outlier.ejections_total,
        .consecutive_failures = h->outlier.consecutive_failures,
        .active = h->counters.active,
        .pending = p->n_waiting,
        .connections = p->n_conns,
        .calls = h->counters.calls,
        .failures = h->counters.failures,
        .connect_failures = p->connect_failures,
        .backoff_ms_left = p->backoff_until_ms > now ? p->backoff_until_ms - now : 0,
    };
    return true;
}

uint32_t ml_cluster_n_active(const struct ml_cluster *cl)
{
    return cl->n_active;
}

uint32_t ml_cluster_n_pending(const struct ml_cluster *cl)
{
    return cl->n_pending;
}

uint32_t ml_balance_n_clusters(const struct ml_balance *b)
{
    return b->n_clusters;
}

/* Whether answer addrs[0..n) has a. */
static bool answer_has(const struct ml_sock_addr *addrs, uint32_t n, const struct ml_sock_addr *a)
{
    for (uint32_t i = 0; i < n; i++) {
        if (addrs[i].family == a->family && addrs[i].port == a->port &&
            memcmp(addrs[i].ip, a->ip, sizeof(a->ip)) == 0) {
            return true;
        }
    }
    return false;
}

/* The slot of cl whose pool is at a, or NULL. */
static struct ml_pool_slot *slot_at(struct ml_cluster *cl, const struct ml_sock_addr *a)
{
    for (uint32_t e = 0; e < cl->n_slots; e++) {
        struct ml_pool *p = cl->slots[e].pool;

        if (p != NULL && answer_has(a, 1, &p->addr)) {
            return &cl->slots[e];
        }
    }
    return NULL;
}

/* The policy starts over on cl's hosts as they are now (it sizes its state by them). */
static void cluster_lb_rebuild(struct ml_cluster *cl)
{
    const struct ml_lb_ops *ops = cl->lb.ops;

    if (ops != NULL && ops->free != NULL) {
        ops->free(&cl->lb);
    }
    cl->lb.ops = NULL;
    cl->lb.priv = NULL;
    if (cluster_lb_init(cl) < 0) {
        ML_LOG_ERR("cluster %s: out of memory for its policy: no picks until the next answer",
                   cl->cfg->name);
    }
}

uint32_t ml_cluster_dns_answer(struct ml_cluster *cl, const struct ml_sock_addr *addrs, uint32_t n)
{
    bool changed = false;
    uint32_t in_use = 0;

    /* Gone addresses drain; those back before their host was freed come back. */
    for (uint32_t e = 0; e < cl->n_slots; e++) {
        struct ml_pool *p = cl->slots[e].pool;
        bool wanted, draining;

        if (p == NULL) {
            continue;
        }
        wanted = answer_has(addrs, n, &p->addr);
        draining = (p->host->state & ML_HOST_DRAINING) != 0;
        if (!wanted && !draining) {
            ML_LOG_INF("cluster %s: dns: %s is gone: its calls finish, no new ones", cl->cfg->name,
                       p->addr_text);
            ml_pool_retire(p);
            ml_host_state_set(p->host, ML_HOST_DRAINING, true);
            changed = true;
        } else if (wanted && draining) {
            p->retired = false;
            ml_host_state_set(p->host, ML_HOST_DRAINING, false);
            changed = true;
        }
    }
    /* Draining hosts with no attempt left free their slot. */
    for (uint32_t e = 0; e < cl->n_slots; e++) {
        struct ml_pool_slot *s = &cl->slots[e];

        if (s->pool != NULL && (s->pool->host->state & ML_HOST_DRAINING) != 0 &&
            s->pool->host->counters.active == 0 && s->pool->n_waiting == 0) {
            slot_unlink(s);
            s->pool = NULL;
            changed = true;
        }
    }
    /* New addresses: a host each, in the first free slot. */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = 0;

        if (slot_at(cl, &addrs[i]) != NULL) {
            continue;
        }
        while (e < ML_LB_HOSTS_MAX && cl->slots[e].pool != NULL) {
            e++;
        }
        if (e == ML_LB_HOSTS_MAX) {
            ML_LOG_WRN("cluster %s: dns: more than %u hosts: the rest are left out", cl->cfg->name,
                       ML_LB_HOSTS_MAX);
            break;
        }
        cl->slots[e] = (struct ml_pool_slot){.cluster = cl, .endpoint = e};
        if (slot_new_host(cl, &cl->slots[e], e, &addrs[i]) < 0) {
            ML_LOG_WRN("cluster %s: dns: out of memory for a host", cl->cfg->name);
            break;
        }
        ML_LOG_INF("cluster %s: dns: new host %s", cl->cfg->name, cl->slots[e].pool->addr_text);
        if (e >= cl->n_slots) {
            cl->n_slots = e + 1;
        }
        changed = true;
    }
    while (cl->n_slots > 0 && cl->slots[cl->n_slots - 1].pool == NULL) {
        cl->n_slots--;
    }
    if (changed) {
        cluster_lb_rebuild(cl);
        ml_balance_health_sync(cl->balance); /* checks for the new hosts, as the config says */
    }
    for (uint32_t e = 0; e < cl->n_slots; e++) {
        in_use += cl->slots[e].pool != NULL;
    }
    return in_use;
}
