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

/* The first buffer tried; doubled until the body fits, up to ML_ADMIN_CLUSTERS_MAX_BYTES. */
#define CLUSTERS_FIRST_BYTES 8192

static const char *health_text(unsigned state)
{
    return state & ML_HOST_UNHEALTHY ? "unhealthy" : "healthy";
}

static void render_text(struct ml_out *o, struct ml_balance *b)
{
    for (uint32_t c = 0; c < ml_balance_n_clusters(b); c++) {
        struct ml_cluster *cl = ml_balance_cluster(b, (int)c);

        ml_out_printf(o, "cluster %s: active %u pending %u\n", ml_cluster_name(cl),
                      ml_cluster_n_active(cl), ml_cluster_n_pending(cl));
        for (uint32_t i = 0; i < ml_cluster_n_hosts(cl); i++) {
            struct ml_host_view v;

            if (!ml_cluster_host_view(cl, i, &v)) {
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

static void render_json(struct ml_out *o, struct ml_balance *b)
{
    bool first;

    ml_out_printf(o, "{\"clusters\":[");
    for (uint32_t c = 0; c < ml_balance_n_clusters(b); c++) {
        struct ml_cluster *cl = ml_balance_cluster(b, (int)c);

        ml_out_printf(o, "%s{\"name\":", c > 0 ? "," : "");
        ml_out_json_str(o, ml_cluster_name(cl));
        ml_out_printf(o, ",\"active\":%u,\"pending\":%u,\"hosts\":[", ml_cluster_n_active(cl),
                      ml_cluster_n_pending(cl));
        first = true;
        for (uint32_t i = 0; i < ml_cluster_n_hosts(cl); i++) {
            struct ml_host_view v;

            if (!ml_cluster_host_view(cl, i, &v)) {
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
    size_t cap = CLUSTERS_FIRST_BYTES;

    *body = NULL;
    if (b == NULL) {
        return -ENOENT;
    }
    for (;;) {
        struct ml_out o = {.cap = cap};

        if ((o.p = ml_malloc(cap)) == NULL) {
            return -ENOMEM;
        }
        o.p[0] = '\0';
        if (json) {
            render_json(&o, b);
        } else {
            render_text(&o, b);
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
