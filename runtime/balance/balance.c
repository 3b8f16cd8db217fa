#include "balance/balance.h"

#include "balance/balance_int.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/stats.h"
#include "h2/h2.h"
#include "meshlet_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ml_balance_new(struct ml_loop *loop, const struct ml_snapshot *snap, uint32_t *conn_ids,
                   struct ml_balance **out)
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
        if (cfg->n_endpoints > 0 &&
            (cl->pools = ml_calloc(cfg->n_endpoints, sizeof(*cl->pools))) == NULL) {
            b->n_clusters = i;
            ml_balance_free(b);
            return -ENOMEM;
        }
        cl->n_pools = cfg->n_endpoints;
        for (uint32_t e = 0; e < cl->n_pools; e++) {
            ml_pool_init(&cl->pools[e], cl, e);
            cl->rr_total += cfg->endpoints[e].weight;
        }
        b->n_clusters = i + 1;
    }
    *out = b;
    return 0;
}

void ml_balance_free(struct ml_balance *b)
{
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; i < b->n_clusters; i++) {
        struct ml_cluster *cl = &b->clusters[i];

        for (uint32_t e = 0; e < cl->n_pools; e++) {
            ml_pool_deinit(&cl->pools[e]);
        }
        ml_free(cl->pools);
    }
    ml_free(b->clusters);
    ml_free(b);
}

void ml_balance_set_stats(struct ml_balance *b, struct ml_stats *stats)
{
    b->stats = stats;
}

int ml_cluster_index(const struct ml_cluster *cl)
{
    return (int)(cl - cl->balance->clusters);
}

const char *ml_cluster_endpoint_text(const struct ml_cluster *cl, int endpoint)
{
    if (endpoint < 0 || (uint32_t)endpoint >= cl->n_pools) {
        return NULL;
    }
    return cl->pools[endpoint].addr_text;
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
    return 0;
}

void ml_cluster_call_end(struct ml_cluster *cl)
{
    cl->n_active--;
}

int ml_cluster_pick(struct ml_cluster *cl, struct ml_balance_waiter *w, struct ml_h2_conn **conn,
                    char *why, size_t cap)
{
    struct ml_pool *best = NULL;

    *conn = NULL;
    w->endpoint = -1;
    if (cl->n_pools == 0) {
        snprintf(why, cap, "cluster %s: no endpoint", cl->cfg->name);
        return -ENOENT;
    }
    /* Round robin per call, weighted smoothly (nginx's algorithm): with equal weights it is
     * plain round robin in config order; endpoint i gets weight_i / total of the calls, spread
     * out rather than in runs. */
    for (uint32_t e = 0; e < cl->n_pools; e++) {
        struct ml_pool *p = &cl->pools[e];

        p->rr_current += cl->cfg->endpoints[e].weight;
        if (best == NULL || p->rr_current > best->rr_current) {
            best = p;
        }
    }
    best->rr_current -= cl->rr_total;
    w->endpoint = (int)best->endpoint;
    return ml_pool_pick(best, w, conn, why, cap);
}
