/* The clusters of one snapshot. A hot apply builds the next balance beside the running one
 * (ml_balance_prepare) and switches (ml_balance_commit): pools are shared between the clusters of
 * both that have the same name and endpoint address, so connections and waiting calls carry on;
 * the old balance lives until its last call ends. */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/stats.h"
#include "h2/h2.h"
#include "meshlet_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The pool of cur's cluster named cfg->name for endpoint addr, or NULL. */
static struct ml_pool *find_pool(const struct ml_balance *cur, const char *cluster,
                                 const struct ml_cfg_addr *addr)
{
    for (uint32_t i = 0; cur != NULL && i < cur->n_clusters; i++) {
        const struct ml_cluster *cl = &cur->clusters[i];

        if (strcmp(cl->cfg->name, cluster) != 0) {
            continue;
        }
        for (uint32_t e = 0; e < cl->n_slots; e++) {
            const struct ml_pool *p = cl->slots[e].pool;

            if (p->addr.family == addr->family && p->addr.port == addr->port &&
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
    ml_pool_owner_change(p, from, s->cluster);
}

/* Takes s out of its pool; frees the pool when no slot is left. */
static void slot_unlink(struct ml_pool_slot *s, struct ml_loop *loop)
{
    struct ml_pool *p = s->pool;
    bool owner;

    if (!s->linked) {
        return; /* prepared, never committed: the pool is cur's (and may be gone already) */
    }
    owner = ml_pool_owner(p) == s;
    ml_list_remove(&s->node);
    s->linked = false;
    if (ml_list_empty(&p->slots)) {
        ml_pool_owner_change(p, s->cluster, NULL);
        ml_pool_free(p, loop);
    } else if (owner) {
        ml_pool_owner_change(p, s->cluster, ml_pool_cluster(p));
    }
}

/* Builds the clusters of snap; pools shared with cur (may be NULL) are left unlinked. */
static int balance_build(struct ml_loop *loop, const struct ml_snapshot *snap, uint32_t *conn_ids,
                         struct ml_balance *cur, struct ml_balance **out)
{
    struct ml_balance *b;

    *out = NULL;
    if ((b = ml_calloc(1, sizeof(*b))) == NULL) {
        return -ENOMEM;
    }
    b->loop = loop;
    b->snap = snap;
    b->conn_ids = conn_ids;
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
        if (cfg->n_endpoints > 0 &&
            (cl->slots = ml_calloc(cfg->n_endpoints, sizeof(*cl->slots))) == NULL) {
            ml_balance_free(b);
            return -ENOMEM;
        }
        for (uint32_t e = 0; e < cfg->n_endpoints; e++) {
            struct ml_pool_slot *s = &cl->slots[e];

            s->cluster = cl;
            s->endpoint = e;
            s->pool = find_pool(cur, cfg->name, &cfg->endpoints[e].addr);
            if (s->pool == NULL) {
                if ((s->pool = ml_pool_new(cl, e)) == NULL) {
                    ml_balance_free(b);
                    return -ENOMEM;
                }
                cl->n_slots = e + 1;
                slot_link(s); /* its own pool: nobody else sees it */
            } else {
                cl->n_slots = e + 1;
            }
            cl->rr_total += cfg->endpoints[e].weight;
        }
    }
    *out = b;
    return 0;
}

int ml_balance_new(struct ml_loop *loop, const struct ml_snapshot *snap, uint32_t *conn_ids,
                   struct ml_balance **out)
{
    return balance_build(loop, snap, conn_ids, NULL, out);
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
            if (!cl->slots[e].linked) {
                slot_link(&cl->slots[e]);
            }
        }
    }
    prev->retired = true;
    prev->on_idle = on_idle;
    prev->idle_user = user;
    for (uint32_t i = 0; i < prev->n_clusters; i++) {
        struct ml_cluster *cl = &prev->clusters[i];

        for (uint32_t e = 0; e < cl->n_slots; e++) {
            struct ml_pool *p = cl->slots[e].pool;

            if (!p->retired && ml_pool_cluster(p)->balance == prev) {
                ML_LOG_INF("cluster %s: endpoint %s is gone: its connections close once idle",
                           cl->cfg->name, p->addr_text);
                ml_pool_retire(p);
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

        for (uint32_t e = 0; e < cl->n_slots; e++) {
            slot_unlink(&cl->slots[e], b->loop);
        }
        ml_free(cl->slots);
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

int ml_cluster_index(const struct ml_cluster *cl)
{
    return (int)(cl - cl->balance->clusters);
}

const char *ml_cluster_endpoint_text(const struct ml_cluster *cl, int endpoint)
{
    if (endpoint < 0 || (uint32_t)endpoint >= cl->n_slots) {
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

int ml_cluster_pick(struct ml_cluster *cl, struct ml_balance_waiter *w, struct ml_h2_conn **conn,
                    char *why, size_t cap)
{
    struct ml_pool_slot *best = NULL;
    int rv;

    *conn = NULL;
    w->endpoint = -1;
    if (cl->n_slots == 0) {
        snprintf(why, cap, "cluster %s: no endpoint", cl->cfg->name);
        return -ENOENT;
    }
    /* Round robin per call, weighted smoothly (nginx's algorithm): with equal weights it is
     * plain round robin in config order; endpoint i gets weight_i / total of the calls, spread
     * out rather than in runs. */
    for (uint32_t e = 0; e < cl->n_slots; e++) {
        struct ml_pool_slot *s = &cl->slots[e];

        s->rr_current += cl->cfg->endpoints[e].weight;
        if (best == NULL || s->rr_current > best->rr_current) {
            best = s;
        }
    }
    best->rr_current -= cl->rr_total;
    w->endpoint = (int)best->endpoint;
    if (ml_share_join(cl, w) < 0) {
        snprintf(why, cap, "cluster %s: out of memory for a call's share", cl->cfg->name);
        return -ENOMEM;
    }
    rv = ml_pool_pick(best->pool, w, conn, why, cap);
    if (rv < 0 && rv != -EINPROGRESS) {
        ml_share_settle(w);
    }
    return rv;
}
