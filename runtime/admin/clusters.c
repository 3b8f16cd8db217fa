/* admin/clusters.h: GET /clusters, rendered from the balance in force. */
#include "admin/clusters.h"

#include "admin/admin.h"
#include "balance/balance.h"
#include "balance/host.h"
#include "core/alloc.h"
#include "core/out.h"
#include "proxy/obs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The first buffer tried; doubled until the body fits, up to ML_ADMIN_CLUSTERS_MAX_BYTES. */
#define CLUSTERS_FIRST_BYTES 8192

static const char *health_text(unsigned state)
{
    return state & ML_HOST_UNHEALTHY ? "unhealthy" : "healthy";
}

/* The balances of every worker ([node] workers): worker 0's names what is shown, the others add
 * their counts for the same cluster and host (each worker has its own pools, health checks and
 * outlier detection). */
struct views {
    struct ml_balance *const *b;
    unsigned int n;
};

static struct ml_cluster *cluster_named(struct ml_balance *b, const char *name)
{
    for (uint32_t c = 0; c < ml_balance_n_clusters(b); c++) {
        struct ml_cluster *cl = ml_balance_cluster(b, (int)c);

        if (strcmp(ml_cluster_name(cl), name) == 0) {
            return cl;
        }
    }
    return NULL;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Calls active and pending on cluster cl of worker 0, over every worker. */
static void cluster_sum(const struct views *vs, struct ml_cluster *cl, uint32_t *active,
                        uint32_t *pending)
{
    *active = ml_cluster_n_active(cl);
    *pending = ml_cluster_n_pending(cl);
    for (unsigned int k = 1; k < vs->n; k++) {
        struct ml_cluster *o = cluster_named(vs->b[k], ml_cluster_name(cl));

        if (o != NULL) {
            *active += ml_cluster_n_active(o);
            *pending += ml_cluster_n_pending(o);
        }
    }
}

/* Host i of cl (worker 0's) with the other workers' view of the same address added: counts
 * summed, a state bit set on any worker, the longest wait. */
static bool host_sum(const struct views *vs, struct ml_cluster *cl, uint32_t i,
                     struct ml_host_view *v)
{
    if (!ml_cluster_host_view(cl, i, v)) {
        return false;
    }
    for (unsigned int k = 1; k < vs->n; k++) {
        struct ml_cluster *o = cluster_named(vs->b[k], ml_cluster_name(cl));
        struct ml_host_view w;

        for (uint32_t j = 0; o != NULL && j < ml_cluster_n_hosts(o); j++) {
            if (!ml_cluster_host_view(o, j, &w) || strcmp(w.addr, v->addr) != 0) {
                continue;
            }
            v->state |= w.state;
            v->ejected_ms_left = max_u64(v->ejected_ms_left, w.ejected_ms_left);
            v->ejections += w.ejections;
            v->consecutive_failures += w.consecutive_failures;
            v->active += w.active;
            v->pending += w.pending;
            v->connections += w.connections;
            v->calls += w.calls;
            v->failures += w.failures;
            v->connect_failures += w.connect_failures;
            v->backoff_ms_left = max_u64(v->backoff_ms_left, w.backoff_ms_left);
            break;
        }
    }
    return true;
}

static void render_text(struct ml_out *o, const struct views *vs)
{
    struct ml_balance *b = vs->b[0];

    for (uint32_t c = 0; c < ml_balance_n_clusters(b); c++) {
        struct ml_cluster *cl = ml_balance_cluster(b, (int)c);
        uint32_t active, pending;

        cluster_sum(vs, cl, &active, &pending);
        ml_out_printf(o, "cluster %s: active %u pending %u\n", ml_cluster_name(cl), active,
                      pending);
        for (uint32_t i = 0; i < ml_cluster_n_hosts(cl); i++) {
            struct ml_host_view v;

            if (!host_sum(vs, cl, i, &v)) {
                continue;
            }
            ml_out_printf(
                o,
                "  %s weight %u health %s ejected %s ejected_ms_left %llu ejections %llu "
                "draining %s active %u pending %u calls %llu failures %llu "
                "consecutive_failures %u connections %u connect_failures %u backoff_ms_left "
                "%llu\n",
                v.addr, v.weight, health_text(v.state), v.state & ML_HOST_EJECTED ? "yes" : "no",
                (unsigned long long)v.ejected_ms_left, (unsigned long long)v.ejections,
                v.state & ML_HOST_DRAINING ? "yes" : "no", v.active, v.pending,
                (unsigned long long)v.calls, (unsigned long long)v.failures, v.consecutive_failures,
                v.connections, v.connect_failures, (unsigned long long)v.backoff_ms_left);
        }
    }
}

static void render_json(struct ml_out *o, const struct views *vs)
{
    struct ml_balance *b = vs->b[0];
    uint32_t active, pending;
    bool first;

    ml_out_printf(o, "{\"clusters\":[");
    for (uint32_t c = 0; c < ml_balance_n_clusters(b); c++) {
        struct ml_cluster *cl = ml_balance_cluster(b, (int)c);

        ml_out_printf(o, "%s{\"name\":", c > 0 ? "," : "");
        ml_out_json_str(o, ml_cluster_name(cl));
        cluster_sum(vs, cl, &active, &pending);
        ml_out_printf(o, ",\"active\":%u,\"pending\":%u,\"hosts\":[", active, pending);
        first = true;
        for (uint32_t i = 0; i < ml_cluster_n_hosts(cl); i++) {
            struct ml_host_view v;

            if (!host_sum(vs, cl, i, &v)) {
                continue;
            }
            ml_out_printf(o, "%s{\"address\":", first ? "" : ",");
            first = false;
            ml_out_json_str(o, v.addr);
            ml_out_printf(
                o,
                ",\"weight\":%u,\"health\":\"%s\",\"ejected\":%s,\"ejected_ms_left\":%llu,"
                "\"ejections\":%llu,\"draining\":%s,\"usable\":%s,\"active\":%u,\"pending\":%u,"
                "\"calls\":%llu,\"failures\":%llu,\"consecutive_failures\":%u,"
                "\"connections\":%u,\"connect_failures\":%u,\"backoff_ms_left\":%llu}",
                v.weight, health_text(v.state), v.state & ML_HOST_EJECTED ? "true" : "false",
                (unsigned long long)v.ejected_ms_left, (unsigned long long)v.ejections,
                v.state & ML_HOST_DRAINING ? "true" : "false", v.state == 0 ? "true" : "false",
                v.active, v.pending, (unsigned long long)v.calls, (unsigned long long)v.failures,
                v.consecutive_failures, v.connections, v.connect_failures,
                (unsigned long long)v.backoff_ms_left);
        }
        ml_out_printf(o, "]}");
    }
    ml_out_printf(o, "]}\n");
}

long ml_admin_clusters(const struct ml_proxy *proxy, bool json, char **body)
{
    struct ml_balance *b = proxy != NULL ? ml_proxy_balance(proxy) : NULL;

    *body = NULL;
    return b == NULL ? -ENOENT : ml_admin_clusters_sum(&b, 1, json, body);
}

long ml_admin_clusters_sum(struct ml_balance *const *b, unsigned int n, bool json, char **body)
{
    const struct views vs = {b, n};
    size_t cap = CLUSTERS_FIRST_BYTES;

    *body = NULL;
    if (n == 0 || b[0] == NULL) {
        return -ENOENT;
    }
    for (;;) {
        struct ml_out o = {.cap = cap};

        if ((o.p = ml_malloc(cap)) == NULL) {
            return -ENOMEM;
        }
        o.p[0] = '\0';
        if (json) {
            render_json(&o, &vs);
        } else {
            render_text(&o, &vs);
        }
        if (!o.full) {
            *body = o.p;
            return (long)o.n;
        }
        ml_free(o.p);
        if (cap >= ML_ADMIN_CLUSTERS_MAX_BYTES) {
            return -ENOBUFS;
        }
        cap *= 2;
    }
}
