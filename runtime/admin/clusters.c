/* admin/clusters.h: GET /clusters, rendered from the balance in force. */
#include "admin/clusters.h"

#include "admin/admin.h"
#include "balance/balance.h"
#include "balance/host.h"
#include "core/alloc.h"
#include "proxy/obs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The first buffer tried; doubled until the body fits, up to ML_ADMIN_CLUSTERS_MAX_BYTES. */
#define CLUSTERS_FIRST_BYTES 8192

struct out {
    char *p;
    size_t cap, n;
    bool full;
};

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->full) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->n) {
        o->full = true;
        return;
    }
    o->n += (size_t)n;
}

/* s as a JSON string (names and addresses are validated, but a quote must never break it). */
static void put_json_str(struct out *o, const char *s)
{
    put(o, "\"");
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            put(o, "\\%c", *s);
        } else if ((unsigned char)*s < 0x20) {
            put(o, "\\u%04x", (unsigned)(unsigned char)*s);
        } else {
            put(o, "%c", *s);
        }
    }
    put(o, "\"");
}

static const char *health_text(unsigned state)
{
    return state & ML_HOST_UNHEALTHY ? "unhealthy" : "healthy";
}

static void render_text(struct out *o, struct ml_balance *b)
{
    for (uint32_t c = 0; c < ml_balance_n_clusters(b); c++) {
        struct ml_cluster *cl = ml_balance_cluster(b, (int)c);

        put(o, "cluster %s: active %u pending %u\n", ml_cluster_name(cl), ml_cluster_n_active(cl),
            ml_cluster_n_pending(cl));
        for (uint32_t i = 0; i < ml_cluster_n_hosts(cl); i++) {
            struct ml_host_view v;

            if (!ml_cluster_host_view(cl, i, &v)) {
                continue;
            }
            put(o,
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

static void render_json(struct out *o, struct ml_balance *b)
{
    bool first;

    put(o, "{\"clusters\":[");
    for (uint32_t c = 0; c < ml_balance_n_clusters(b); c++) {
        struct ml_cluster *cl = ml_balance_cluster(b, (int)c);

        put(o, "%s{\"name\":", c > 0 ? "," : "");
        put_json_str(o, ml_cluster_name(cl));
        put(o, ",\"active\":%u,\"pending\":%u,\"hosts\":[", ml_cluster_n_active(cl),
            ml_cluster_n_pending(cl));
        first = true;
        for (uint32_t i = 0; i < ml_cluster_n_hosts(cl); i++) {
            struct ml_host_view v;

            if (!ml_cluster_host_view(cl, i, &v)) {
                continue;
            }
            put(o, "%s{\"address\":", first ? "" : ",");
            first = false;
            put_json_str(o, v.addr);
            put(o,
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
        put(o, "]}");
    }
    put(o, "]}\n");
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
        struct out o = {.cap = cap};

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
