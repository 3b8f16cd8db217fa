/* The renderings of struct ml_stats (core/stats.h): text, Prometheus 0.0.4, JSON. Each is a
 * sequence of parts (a metric family, a list of entities), each part a sequence of items (one
 * entity's lines): a rendering is written item by item, so the admin endpoint streams any number
 * of clusters and endpoints through a small buffer instead of building the whole page. */
#include "core/out.h"
#include "core/stats.h"

#include "config/snapshot-t.h"
#include "core/stats_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const uint32_t bounds_us[ML_STATS_N_BOUNDS] = {ML_STATS_BUCKETS_US};

/* Names of the route events (enum ml_stats_route_event): text "route.NAME.rq_<name>", JSON
 * "rq_<name>", Prometheus "meshlet_route_rq_<name>_total". */
static const char *const route_ev_name[ML_STATS_ROUTE_N_EVENTS] = {
    "retry", "retry_overflow", "fault_delayed", "fault_aborted", "rate_limited"};

/* The TLS failure reasons, in the order of ML_STATS_DOWN_TLS_FAIL_* (tls/tls.h's names): text
 * "listener.NAME.downstream_cx_tls_failed_<name>", JSON "cx_tls_failed_<name>", Prometheus
 * "meshlet_downstream_cx_tls_failed_<name>_total". */
/* The upstream TLS failure reasons, in the order of ML_STATS_CL_TLS_FAIL_*: text
 * "cluster.NAME.upstream_cx_tls_failed_<name>", JSON "up_tls_failed_<name>", Prometheus
 * "meshlet_upstream_cx_tls_failed_<name>_total". */
static const char *const up_tls_fail_name[ML_STATS_UP_TLS_FAIL_KINDS] = {
    "bad_cert", "unknown_ca", "no_alpn_h2", "version", "timeout", "identity", "other",
};

static const char *const tls_fail_name[ML_STATS_TLS_FAIL_KINDS] = {
    "bad_cert", "unknown_ca", "no_alpn_h2", "version", "timeout", "plaintext", "other",
};

/* As Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus' own clients write. */
static const char *const bucket_le[ML_STATS_N_BUCKETS] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",  "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",   "+Inf"};
_Static_assert(ML_STATS_N_BUCKETS == 18, "bucket_le must name every bucket");

static const char *const status_names[ML_STATS_N_STATUS] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
    "none",
};

const char *ml_stats_bucket_le(int b)
{
    return b >= 0 && b < ML_STATS_N_BUCKETS ? bucket_le[b] : "+Inf";
}

const char *ml_stats_status_name(int s)
{
    return s >= 0 && s < ML_STATS_N_STATUS ? status_names[s] : "none";
}

/* ---- output ------------------------------------------------------------------------------ */

/* µs as seconds with 6 decimals ("0.000123"). */
static void put_seconds(struct ml_out *o, uint64_t us)
{
    ml_out_printf(o, "%llu.%06llu", (unsigned long long)(us / 1000000),
                  (unsigned long long)(us % 1000000));
}

/* What one item step did. */
enum step { STEP_ITEM, STEP_PART_END, STEP_END };

typedef enum step item_fn(const struct ml_stats *st, unsigned int part, unsigned int item,
                          struct ml_out *o);

/* ---- entities ------------------------------------------------------------------------------ */

enum scope { SCOPE_ALL, SCOPE_LISTENER, SCOPE_ROUTE, SCOPE_CLUSTER, SCOPE_ENDPOINT, N_SCOPES };

static uint32_t scope_count(const struct ml_stats *st, enum scope s)
{
    switch (s) {
    case SCOPE_ALL:
        return 1;
    case SCOPE_LISTENER:
        return st->n_listeners;
    case SCOPE_ROUTE:
        return st->n_routes;
    case SCOPE_CLUSTER:
        return st->n_clusters;
    case SCOPE_ENDPOINT:
        return st->n_eps;
    default:
        return 0;
    }
}

static const struct ml_stats_calls *scope_calls(const struct ml_stats *st, enum scope s, uint32_t i)
{
    switch (s) {
    case SCOPE_LISTENER:
        return &st->listeners[i]->calls;
    case SCOPE_ROUTE:
        return &st->routes[i]->calls;
    case SCOPE_CLUSTER:
        return &st->clusters[i]->calls;
    case SCOPE_ENDPOINT:
        return &st->eps[i].e->calls;
    default:
        return &st->all->calls;
    }
}

static const char *endpoint_addr(const struct ml_stats *st, uint32_t i)
{
    const struct stats_ep_slot *e = &st->eps[i];

    return st->snap->clusters[e->cluster].endpoints[e->endpoint].addr.text;
}

static uint64_t errors_of(const struct ml_stats_calls *c)
{
    return c->total - c->by_status[0];
}

/* ---- text: "name value" -------------------------------------------------------------------- */

static void text_hist(struct ml_out *o, const char *prefix, const char *name,
                      const struct ml_stats_hist *h)
{
    uint64_t cum = 0;

    for (int b = 0; b < ML_STATS_N_BUCKETS; b++) {
        cum += h->buckets[b];
        if (b < ML_STATS_N_BOUNDS) {
            ml_out_printf(o, "%s%s.le_%u %llu\n", prefix, name, bounds_us[b],
                          (unsigned long long)cum);
        } else {
            ml_out_printf(o, "%s%s.le_inf %llu\n", prefix, name, (unsigned long long)cum);
        }
    }
    ml_out_printf(o, "%s%s.sum %llu\n", prefix, name, (unsigned long long)h->sum_us);
    ml_out_printf(o, "%s%s.count %llu\n", prefix, name, (unsigned long long)h->count);
}

static void text_calls(struct ml_out *o, const char *prefix, const char *rq,
                       const struct ml_stats_calls *c, bool hist, bool all_codes)
{
    ml_out_printf(o, "%s%s_total %llu\n", prefix, rq, (unsigned long long)c->total);
    ml_out_printf(o, "%s%s_active %llu\n", prefix, rq, (unsigned long long)c->active);
    for (int s = 0; s < ML_STATS_N_STATUS; s++) {
        if (all_codes || c->by_status[s] > 0) {
            if (s == ML_STATS_STATUS_NONE) {
                ml_out_printf(o, "%sgrpc_status.none %llu\n", prefix,
                              (unsigned long long)c->by_status[s]);
            } else {
                ml_out_printf(o, "%sgrpc_status.%d %llu\n", prefix, s,
                              (unsigned long long)c->by_status[s]);
            }
        }
    }
    ml_out_printf(o, "%sbytes_in %llu\n", prefix, (unsigned long long)c->bytes_in);
    ml_out_printf(o, "%sbytes_out %llu\n", prefix, (unsigned long long)c->bytes_out);
    if (hist) {
        text_hist(o, prefix, "duration_us", &c->duration);
        text_hist(o, prefix, "upstream_duration_us", &c->upstream);
    }
}

static void text_listener(const struct ml_stats *st, uint32_t i, struct ml_out *o)
{
    const struct stats_listener *l = st->listeners[i];
    char prefix[256];

    snprintf(prefix, sizeof(prefix), "listener.%s.", st->snap->listeners[i].name);
    ml_out_printf(o, "%sdownstream_cx_accepted %llu\n", prefix, (unsigned long long)l->cx_accepted);
    ml_out_printf(o, "%sdownstream_cx_active %llu\n", prefix, (unsigned long long)l->cx_active);
    ml_out_printf(o, "%sdownstream_cx_refused %llu\n", prefix, (unsigned long long)l->cx_refused);
    ml_out_printf(o, "%sdownstream_cx_handshake_timeout %llu\n", prefix,
                  (unsigned long long)l->cx_handshake_timeout);
    ml_out_printf(o, "%sdownstream_cx_reclaimed %llu\n", prefix,
                  (unsigned long long)l->cx_reclaimed);
    ml_out_printf(o, "%sdownstream_rq_stalled %llu\n", prefix, (unsigned long long)l->rq_stalled);
    ml_out_printf(o, "%sdownstream_cx_tls_handshake %llu\n", prefix,
                  (unsigned long long)l->tls_handshake);
    ml_out_printf(o, "%sdownstream_cx_tls_busy %llu\n", prefix, (unsigned long long)l->tls_busy);
    for (int r = 0; r < ML_STATS_TLS_FAIL_KINDS; r++) {
        ml_out_printf(o, "%sdownstream_cx_tls_failed_%s %llu\n", prefix, tls_fail_name[r],
                      (unsigned long long)l->tls_failed[r]);
    }
    text_calls(o, prefix, "downstream_rq", &l->calls, true, false);
}

static void text_cluster(const struct ml_stats *st, uint32_t c, struct ml_out *o)
{
    uint32_t first_ep = st->first_ep[c];
    uint64_t opened = 0, active = 0, failed = 0;
    char prefix[256];

    for (uint32_t e = 0; e < st->ep_counts[c]; e++) {
        opened += st->eps[first_ep + e].e->cx_opened;
        active += st->eps[first_ep + e].e->cx_active;
        failed += st->eps[first_ep + e].e->cx_failed;
    }
    snprintf(prefix, sizeof(prefix), "cluster.%s.", st->snap->clusters[c].name);
    ml_out_printf(o, "%supstream_cx_opened %llu\n", prefix, (unsigned long long)opened);
    ml_out_printf(o, "%supstream_cx_active %llu\n", prefix, (unsigned long long)active);
    ml_out_printf(o, "%supstream_cx_failed %llu\n", prefix, (unsigned long long)failed);
    ml_out_printf(o, "%supstream_rq_pending_overflow %llu\n", prefix,
                  (unsigned long long)st->clusters[c]->rq_pending_overflow);
    ml_out_printf(o, "%supstream_cb_max_requests %llu\n", prefix,
                  (unsigned long long)st->clusters[c]->cb_max_requests);
    ml_out_printf(o, "%supstream_cb_max_retries %llu\n", prefix,
                  (unsigned long long)st->clusters[c]->cb_max_retries);
    text_calls(o, prefix, "upstream_rq", &st->clusters[c]->calls, true, false);
    if (st->snap->clusters[c].tls != ML_CFG_TLS_OFF) {
        ml_out_printf(o, "%supstream_cx_tls_handshake %llu\n", prefix,
                      (unsigned long long)st->clusters[c]->up_tls_handshake);
        for (int r = 0; r < ML_STATS_UP_TLS_FAIL_KINDS; r++) {
            ml_out_printf(o, "%supstream_cx_tls_failed_%s %llu\n", prefix, up_tls_fail_name[r],
                          (unsigned long long)st->clusters[c]->up_tls_failed[r]);
        }
    }
    if (st->snap->clusters[c].dns_host != NULL) {
        ml_out_printf(o, "%sdns_resolutions %llu\n", prefix,
                      (unsigned long long)st->clusters[c]->dns_resolutions);
        ml_out_printf(o, "%sdns_failures %llu\n", prefix,
                      (unsigned long long)st->clusters[c]->dns_failures);
        ml_out_printf(o, "%sdns_hosts %llu\n", prefix,
                      (unsigned long long)st->clusters[c]->dns_hosts);
    }
}

static void text_endpoint(const struct ml_stats *st, uint32_t i, struct ml_out *o)
{
    const struct stats_endpoint *ep = st->eps[i].e;
    char prefix[256];

    snprintf(prefix, sizeof(prefix), "cluster.%s.endpoint.%s.",
             st->snap->clusters[st->eps[i].cluster].name, endpoint_addr(st, i));
    ml_out_printf(o, "%scx_opened %llu\n", prefix, (unsigned long long)ep->cx_opened);
    ml_out_printf(o, "%scx_active %llu\n", prefix, (unsigned long long)ep->cx_active);
    ml_out_printf(o, "%scx_failed %llu\n", prefix, (unsigned long long)ep->cx_failed);
    ml_out_printf(o, "%scx_backoff %llu\n", prefix, (unsigned long long)ep->cx_backoff);
    ml_out_printf(o, "%sunhealthy %llu\n", prefix, (unsigned long long)ep->unhealthy);
    ml_out_printf(o, "%sejected %llu\n", prefix, (unsigned long long)ep->ejected);
    ml_out_printf(o, "%sejections %llu\n", prefix, (unsigned long long)ep->ejections);
    text_calls(o, prefix, "rq", &ep->calls, false, false);
}

/* One [authz] section's decisions: "authz.LISTENER.rule.N.allowed|denied" (N from 1), then
 * "authz.LISTENER.default.allowed|denied". */
static void text_authz(const struct ml_stats *st, uint32_t i, struct ml_out *o)
{
    const struct ml_cfg_authz *az = &st->snap->authz[i];
    char prefix[256];

    for (uint32_t r = 0; r <= az->n_rules; r++) {
        const uint64_t *v = st->authz_ctr[st->authz_first[i] + r];

        if (r < az->n_rules) {
            snprintf(prefix, sizeof(prefix), "authz.%s.rule.%u.", az->name, r + 1);
        } else {
            snprintf(prefix, sizeof(prefix), "authz.%s.default.", az->name);
        }
        ml_out_printf(o, "%sallowed %llu\n", prefix, (unsigned long long)v[1]);
        ml_out_printf(o, "%sdenied %llu\n", prefix, (unsigned long long)v[0]);
    }
}

/* Parts: the whole proxy, listeners, routes, then each cluster followed by its endpoints (item
 * k of part 3 runs over clusters and endpoints in that order), then the [authz] sections. */
static enum step text_item(const struct ml_stats *st, unsigned int part, unsigned int item,
                           struct ml_out *o)
{
    char prefix[256];

    switch (part) {
    case 0:
        if (item > 0) {
            return STEP_PART_END;
        }
        text_calls(o, "calls.", "rq", &st->all->calls, true, true);
        return STEP_ITEM;
    case 1:
        if (item >= st->n_listeners) {
            return STEP_PART_END;
        }
        text_listener(st, item, o);
        return STEP_ITEM;
    case 2:
        if (item >= st->n_routes) {
            return STEP_PART_END;
        }
        snprintf(prefix, sizeof(prefix), "route.%s.", st->snap->routes[item].name);
        text_calls(o, prefix, "rq", &st->routes[item]->calls, true, false);
        for (int e = 0; e < ML_STATS_ROUTE_N_EVENTS; e++) {
            ml_out_printf(o, "%srq_%s %llu\n", prefix, route_ev_name[e],
                          (unsigned long long)st->routes[item]->route_ev[e]);
        }
        return STEP_ITEM;
    case 3:
        for (uint32_t c = 0; c < st->n_clusters; c++) {
            uint32_t at = c + st->first_ep[c]; /* the cluster's place in the sequence */

            if (item == at) {
                text_cluster(st, c, o);
                return STEP_ITEM;
            }
            if (item <= at + st->ep_counts[c]) {
                text_endpoint(st, st->first_ep[c] + (item - at - 1), o);
                return STEP_ITEM;
            }
        }
        return STEP_PART_END;
    case 4:
        if (item >= st->n_authz) {
            return STEP_PART_END;
        }
        text_authz(st, item, o);
        return STEP_ITEM;
    default:
        return STEP_END;
    }
}

/* ---- Prometheus text exposition format 0.0.4 ---------------------------------------------- */

static const char *const scope_prefix[N_SCOPES] = {"", "listener_", "route_", "cluster_",
                                                   "endpoint_"};
static const char *const scope_what[N_SCOPES] = {"", " per listener", " per route", " per cluster",
                                                 " per endpoint"};

/* A label value with \, " and newline escaped. */
static void label_value(char *buf, size_t cap, const char *v)
{
    size_t n = 0;

    for (; *v != '\0' && n + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            buf[n++] = '\\';
            buf[n++] = *v;
        } else if (*v == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else {
            buf[n++] = *v;
        }
    }
    buf[n] = '\0';
}

/* The labels of entity i of scope s, followed by a comma when there are any ("" for the whole
 * proxy): a label of the sample's own is appended after. */
static void scope_labels(const struct ml_stats *st, enum scope s, uint32_t i, char *out, size_t cap)
{
    const struct ml_snapshot *snap = st->snap;
    char a[160], b[160];

    out[0] = '\0';
    switch (s) {
    case SCOPE_LISTENER:
        label_value(a, sizeof(a), snap->listeners[i].name);
        snprintf(out, cap, "listener=\"%s\",", a);
        break;
    case SCOPE_ROUTE:
        label_value(a, sizeof(a), snap->routes[i].name);
        snprintf(out, cap, "route=\"%s\",", a);
        break;
    case SCOPE_CLUSTER:
        label_value(a, sizeof(a), snap->clusters[i].name);
        snprintf(out, cap, "cluster=\"%s\",", a);
        break;
    case SCOPE_ENDPOINT:
        label_value(a, sizeof(a), snap->clusters[st->eps[i].cluster].name);
        label_value(b, sizeof(b), endpoint_addr(st, i));
        snprintf(out, cap, "cluster=\"%s\",endpoint=\"%s\",", a, b);
        break;
    default:
        break;
    }
}

/* "name{labels} " with labels' trailing comma cut; no braces when there are no labels. */
static void sample(struct ml_out *o, const char *name, const char *suffix, const char *labels,
                   const char *own)
{
    size_t n = strlen(labels);

    if (own[0] != '\0') {
        ml_out_printf(o, "%s%s{%s%s} ", name, suffix, labels, own);
    } else if (n > 0) {
        ml_out_printf(o, "%s%s{%.*s} ", name, suffix, (int)(n - 1), labels);
    } else {
        ml_out_printf(o, "%s%s ", name, suffix);
    }
}

/* The families of each scope's calls, in this order. */
enum calls_metric { CM_CALLS, CM_ACTIVE, CM_RX, CM_TX, CM_DURATION, CM_UPSTREAM, N_CM };

static const struct {
    const char *name, *type, *help;
} calls_family[N_CM] = {
    {"calls_total", "counter",
     "Calls ended, by grpc-status name (grpc_code=\"none\": without one)"},
    {"calls_active", "gauge", "Calls in progress"},
    {"received_bytes_total", "counter", "Request DATA payload bytes received from downstream"},
    {"sent_bytes_total", "counter", "Response DATA payload bytes sent downstream"},
    {"call_duration_seconds", "histogram",
     "Call durations, from the request headers to the end of the call"},
    {"upstream_duration_seconds", "histogram",
     "Upstream durations, from the upstream stream's open to the end of the call"},
};

static void prom_hist(struct ml_out *o, const char *name, const char *labels,
                      const struct ml_stats_hist *h)
{
    char own[32];
    uint64_t cum = 0;

    for (int b = 0; b < ML_STATS_N_BUCKETS; b++) {
        cum += h->buckets[b];
        snprintf(own, sizeof(own), "le=\"%s\"", bucket_le[b]);
        sample(o, name, "_bucket", labels, own);
        ml_out_printf(o, "%llu\n", (unsigned long long)cum);
    }
    sample(o, name, "_sum", labels, "");
    put_seconds(o, h->sum_us);
    ml_out_printf(o, "\n");
    sample(o, name, "_count", labels, "");
    ml_out_printf(o, "%llu\n", (unsigned long long)h->count);
}

static void prom_calls_item(const struct ml_stats *st, enum scope s, enum calls_metric m,
                            uint32_t i, struct ml_out *o)
{
    const struct ml_stats_calls *c = scope_calls(st, s, i);
    char name[96], labels[400], own[48];

    snprintf(name, sizeof(name), "meshlet_%s%s", scope_prefix[s], calls_family[m].name);
    if (i == 0) {
        ml_out_printf(o, "# HELP %s %s%s.\n# TYPE %s %s\n", name, calls_family[m].help,
                      scope_what[s], name, calls_family[m].type);
    }
    scope_labels(st, s, i, labels, sizeof(labels));
    switch (m) {
    case CM_CALLS:
        /* every code of every entity, from the start: rate() and alerts see a series go from
         * 0 to 1, and a dashboard finds each series before its first event */
        for (int k = 0; k < ML_STATS_N_STATUS; k++) {
            snprintf(own, sizeof(own), "grpc_code=\"%s\"", status_names[k]);
            sample(o, name, "", labels, own);
            ml_out_printf(o, "%llu\n", (unsigned long long)c->by_status[k]);
        }
        break;
    case CM_ACTIVE:
        sample(o, name, "", labels, "");
        ml_out_printf(o, "%llu\n", (unsigned long long)c->active);
        break;
    case CM_RX:
        sample(o, name, "", labels, "");
        ml_out_printf(o, "%llu\n", (unsigned long long)c->bytes_in);
        break;
    case CM_TX:
        sample(o, name, "", labels, "");
        ml_out_printf(o, "%llu\n", (unsigned long long)c->bytes_out);
        break;
    case CM_DURATION:
        prom_hist(o, name, labels, &c->duration);
        break;
    case CM_UPSTREAM:
        prom_hist(o, name, labels, &c->upstream);
        break;
    default:
        break;
    }
}

/* The counter families read from a record: per listener, per route (request-policy events), per
 * endpoint. */
/* A family named DNS_FAMILY... is only for clusters with dns =. */
#define DNS_FAMILY "meshlet_cluster_dns_"

static bool dns_family(unsigned int f);

static const struct {
    enum scope scope;
    const char *name, *type, *help;
    size_t offset;
} cx_family[] = {
    {SCOPE_LISTENER, "meshlet_downstream_cx_accepted_total", "counter",
     "Downstream connections accepted", offsetof(struct stats_listener, cx_accepted)},
    {SCOPE_LISTENER, "meshlet_downstream_cx_active", "gauge", "Downstream connections open",
     offsetof(struct stats_listener, cx_active)},
    {SCOPE_LISTENER, "meshlet_downstream_cx_refused_total", "counter",
     "Downstream connections refused (max_connections, out of memory)",
     offsetof(struct stats_listener, cx_refused)},
    {SCOPE_LISTENER, "meshlet_downstream_cx_handshake_timeout_total", "counter",
     "Downstream connections closed before the HTTP/2 handshake completed",
     offsetof(struct stats_listener, cx_handshake_timeout)},
    {SCOPE_LISTENER, "meshlet_downstream_cx_reclaimed_total", "counter",
     "Idle downstream connections closed to make room at max_connections",
     offsetof(struct stats_listener, cx_reclaimed)},
    {SCOPE_LISTENER, "meshlet_downstream_rq_stalled_total", "counter",
     "Calls reset because no bytes moved for stream_stall_timeout",
     offsetof(struct stats_listener, rq_stalled)},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_handshake_total", "counter",
     "TLS handshakes completed on downstream connections",
     offsetof(struct stats_listener, tls_handshake)},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_busy_total", "counter",
     "Downstream connections refused: too many TLS handshakes in progress",
     offsetof(struct stats_listener, tls_busy)},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_failed_bad_cert_total", "counter",
     "TLS handshakes failed: the client certificate missing, expired or unusable",
     offsetof(struct stats_listener, tls_failed[0])},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_failed_unknown_ca_total", "counter",
     "TLS handshakes failed: the client certificate does not chain to ca",
     offsetof(struct stats_listener, tls_failed[1])},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_failed_no_alpn_h2_total", "counter",
     "TLS handshakes failed: the client did not offer ALPN h2",
     offsetof(struct stats_listener, tls_failed[2])},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_failed_version_total", "counter",
     "TLS handshakes failed: no TLS 1.2 or 1.3 offered",
     offsetof(struct stats_listener, tls_failed[3])},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_failed_timeout_total", "counter",
     "TLS handshakes not done in time", offsetof(struct stats_listener, tls_failed[4])},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_failed_plaintext_total", "counter",
     "Plaintext connections to a TLS-only listener",
     offsetof(struct stats_listener, tls_failed[5])},
    {SCOPE_LISTENER, "meshlet_downstream_cx_tls_failed_other_total", "counter",
     "TLS handshakes failed for another reason", offsetof(struct stats_listener, tls_failed[6])},
    {SCOPE_ROUTE, "meshlet_route_rq_retry_total", "counter", "Failed attempts sent again (retries)",
     offsetof(struct stats_calls, route_ev[ML_STATS_ROUTE_RETRY])},
    {SCOPE_ROUTE, "meshlet_route_rq_retry_overflow_total", "counter",
     "Failed attempts not retried because max_retries retries were in flight",
     offsetof(struct stats_calls, route_ev[ML_STATS_ROUTE_RETRY_OVERFLOW])},
    {SCOPE_ROUTE, "meshlet_route_rq_fault_delayed_total", "counter",
     "Calls delayed by fault injection",
     offsetof(struct stats_calls, route_ev[ML_STATS_ROUTE_FAULT_DELAYED])},
    {SCOPE_ROUTE, "meshlet_route_rq_fault_aborted_total", "counter",
     "Calls aborted by fault injection",
     offsetof(struct stats_calls, route_ev[ML_STATS_ROUTE_FAULT_ABORTED])},
    {SCOPE_ROUTE, "meshlet_route_rq_rate_limited_total", "counter",
     "Calls refused by the route's rate_limit",
     offsetof(struct stats_calls, route_ev[ML_STATS_ROUTE_RATE_LIMITED])},
    /* dns = clusters only (the others have no sample) */
    {SCOPE_CLUSTER, "meshlet_cluster_dns_resolutions_total", "counter",
     "dns lookups answered, failed ones included", offsetof(struct stats_calls, dns_resolutions)},
    {SCOPE_CLUSTER, "meshlet_cluster_dns_failures_total", "counter",
     "dns lookups that failed or found no address (the last hosts stayed)",
     offsetof(struct stats_calls, dns_failures)},
    {SCOPE_CLUSTER, "meshlet_cluster_dns_hosts", "gauge",
     "Hosts of the last good dns answer, draining ones included",
     offsetof(struct stats_calls, dns_hosts)},
    {SCOPE_ENDPOINT, "meshlet_upstream_cx_opened_total", "counter", "Upstream connections started",
     offsetof(struct stats_endpoint, cx_opened)},
    {SCOPE_ENDPOINT, "meshlet_upstream_cx_active", "gauge", "Upstream connections up",
     offsetof(struct stats_endpoint, cx_active)},
    {SCOPE_ENDPOINT, "meshlet_upstream_cx_failed_total", "counter",
     "Upstream connections that never came up", offsetof(struct stats_endpoint, cx_failed)},
    {SCOPE_ENDPOINT, "meshlet_upstream_cx_backoff_total", "counter",
     "Upstream connects not started: the endpoint's connect backoff after failures",
     offsetof(struct stats_endpoint, cx_backoff)},
    {SCOPE_ENDPOINT, "meshlet_endpoint_unhealthy", "gauge",
     "1 while active health checks have the endpoint out",
     offsetof(struct stats_endpoint, unhealthy)},
    {SCOPE_ENDPOINT, "meshlet_endpoint_ejected", "gauge",
     "1 while outlier detection has the endpoint ejected",
     offsetof(struct stats_endpoint, ejected)},
    {SCOPE_ENDPOINT, "meshlet_endpoint_ejections_total", "counter",
     "Outlier ejections of the endpoint", offsetof(struct stats_endpoint, ejections)},
    {SCOPE_CLUSTER, "meshlet_cluster_rq_pending_overflow_total", "counter",
     "Calls refused at once: max_pending calls were waiting",
     offsetof(struct stats_calls, rq_pending_overflow)},
    {SCOPE_CLUSTER, "meshlet_cluster_cb_max_requests_total", "counter",
     "Calls refused at once: max_requests calls were active",
     offsetof(struct stats_calls, cb_max_requests)},
    {SCOPE_CLUSTER, "meshlet_cluster_cb_max_retries_total", "counter",
     "Retries not made: max_retries retries were in flight",
     offsetof(struct stats_calls, cb_max_retries)},
    {SCOPE_CLUSTER, "meshlet_upstream_cx_tls_handshake_total", "counter",
     "TLS handshakes completed to the endpoints", offsetof(struct stats_calls, up_tls_handshake)},
    {SCOPE_CLUSTER, "meshlet_upstream_cx_tls_failed_bad_cert_total", "counter",
     "Upstream TLS handshakes failed: the server certificate expired or unusable",
     offsetof(struct stats_calls, up_tls_failed[0])},
    {SCOPE_CLUSTER, "meshlet_upstream_cx_tls_failed_unknown_ca_total", "counter",
     "Upstream TLS handshakes failed: the server certificate does not chain to ca",
     offsetof(struct stats_calls, up_tls_failed[1])},
    {SCOPE_CLUSTER, "meshlet_upstream_cx_tls_failed_no_alpn_h2_total", "counter",
     "Upstream TLS handshakes failed: the server did not select ALPN h2",
     offsetof(struct stats_calls, up_tls_failed[2])},
    {SCOPE_CLUSTER, "meshlet_upstream_cx_tls_failed_version_total", "counter",
     "Upstream TLS handshakes failed: no TLS 1.2 or 1.3 in common",
     offsetof(struct stats_calls, up_tls_failed[3])},
    {SCOPE_CLUSTER, "meshlet_upstream_cx_tls_failed_timeout_total", "counter",
     "Upstream TLS handshakes not done within connect_timeout",
     offsetof(struct stats_calls, up_tls_failed[4])},
    {SCOPE_CLUSTER, "meshlet_upstream_cx_tls_failed_identity_total", "counter",
     "Upstream TLS handshakes failed: the server name does not match identity",
     offsetof(struct stats_calls, up_tls_failed[5])},
    {SCOPE_CLUSTER, "meshlet_upstream_cx_tls_failed_other_total", "counter",
     "Upstream TLS handshakes failed for another reason",
     offsetof(struct stats_calls, up_tls_failed[6])},
};
#define N_CX_FAMILIES (sizeof(cx_family) / sizeof(cx_family[0]))

static bool dns_family(unsigned int f)
{
    return strncmp(cx_family[f].name, DNS_FAMILY, strlen(DNS_FAMILY)) == 0;
}

/* Upstream TLS families: only clusters with tls = on | mtls have samples. */
#define UP_TLS_FAMILY "meshlet_upstream_cx_tls_"

static bool up_tls_family(unsigned int f)
{
    return strncmp(cx_family[f].name, UP_TLS_FAMILY, strlen(UP_TLS_FAMILY)) == 0;
}

static void prom_cx_item(const struct ml_stats *st, unsigned int f, uint32_t i, struct ml_out *o)
{
    enum scope s = cx_family[f].scope;
    const void *rec = s == SCOPE_LISTENER  ? (const void *)st->listeners[i]
                      : s == SCOPE_ROUTE   ? (const void *)st->routes[i]
                      : s == SCOPE_CLUSTER ? (const void *)st->clusters[i]
                                           : (const void *)st->eps[i].e;
    char labels[400];
    uint64_t v;

    if (i == 0) {
        ml_out_printf(o, "# HELP %s %s%s.\n# TYPE %s %s\n", cx_family[f].name, cx_family[f].help,
                      scope_what[s], cx_family[f].name, cx_family[f].type);
    }
    if (dns_family(f) && st->snap->clusters[i].dns_host == NULL) {
        return;
    }
    if (up_tls_family(f) && st->snap->clusters[i].tls == ML_CFG_TLS_OFF) {
        return;
    }
    scope_labels(st, s, i, labels, sizeof(labels));
    memcpy(&v, (const char *)rec + cx_family[f].offset, sizeof(v));
    sample(o, cx_family[f].name, "", labels, "");
    ml_out_printf(o, "%llu\n", (unsigned long long)v);
}

/* meshlet_authz_rq_{allowed,denied}_total{listener,rule}: one [authz] section's samples (rule
 * from 1, or "default"), after the family's HELP and TYPE before the first. */
static void prom_authz_item(const struct ml_stats *st, bool allowed, uint32_t i, struct ml_out *o)
{
    const char *name = allowed ? "meshlet_authz_rq_allowed_total" : "meshlet_authz_rq_denied_total";
    const struct ml_cfg_authz *az = &st->snap->authz[i];
    char a[160], rule[16];

    if (i == 0) {
        ml_out_printf(o,
                      "# HELP %s %s per listener and rule (rule=\"default\": no rule matched).\n"
                      "# TYPE %s counter\n",
                      name, allowed ? "Calls let through by [authz]" : "Calls denied by [authz]",
                      name);
    }
    label_value(a, sizeof(a), az->name);
    for (uint32_t r = 0; r <= az->n_rules; r++) {
        if (r < az->n_rules) {
            snprintf(rule, sizeof(rule), "%u", r + 1);
        } else {
            snprintf(rule, sizeof(rule), "default");
        }
        ml_out_printf(o, "%s{listener=\"%s\",rule=\"%s\"} %llu\n", name, a, rule,
                      (unsigned long long)st->authz_ctr[st->authz_first[i] + r][allowed ? 1 : 0]);
    }
}

/* Whether a cluster has dns = (its families are left out otherwise). */
static bool any_dns(const struct ml_stats *st)
{
    for (uint32_t i = 0; i < st->n_clusters; i++) {
        if (st->snap->clusters[i].dns_host != NULL) {
            return true;
        }
    }
    return false;
}

/* Whether a cluster has tls = on | mtls (the upstream TLS families are left out otherwise). */
static bool any_up_tls(const struct ml_stats *st)
{
    for (uint32_t i = 0; i < st->n_clusters; i++) {
        if (st->snap->clusters[i].tls != ML_CFG_TLS_OFF) {
            return true;
        }
    }
    return false;
}

/* Parts: each scope's call families (no histograms per endpoint: with thousands of endpoints
 * they would be most of the page, and the cluster's say the same), then the connection ones. A
 * family without entities is left out whole. */
static enum step prom_item(const struct ml_stats *st, unsigned int part, unsigned int item,
                           struct ml_out *o)
{
    if (part < N_SCOPES * N_CM) {
        enum scope s = (enum scope)(part / N_CM);
        enum calls_metric m = (enum calls_metric)(part % N_CM);

        if (item >= scope_count(st, s) ||
            (s == SCOPE_ENDPOINT && (m == CM_DURATION || m == CM_UPSTREAM))) {
            return STEP_PART_END;
        }
        prom_calls_item(st, s, m, item, o);
        return STEP_ITEM;
    }
    part -= N_SCOPES * N_CM;
    if (part < N_CX_FAMILIES) {
        if (item >= scope_count(st, cx_family[part].scope) || (dns_family(part) && !any_dns(st)) ||
            (up_tls_family(part) && !any_up_tls(st))) {
            return STEP_PART_END;
        }
        prom_cx_item(st, part, item, o);
        return STEP_ITEM;
    }
    part -= N_CX_FAMILIES;
    if (part < 2) {
        if (item >= st->n_authz) {
            return STEP_PART_END;
        }
        prom_authz_item(st, part == 0, item, o);
        return STEP_ITEM;
    }
    return STEP_END;
}

/* ---- JSON, for the admin page -------------------------------------------------------------- */

static void json_hist(struct ml_out *o, const char *key, const struct ml_stats_hist *h,
                      bool buckets)
{
    ml_out_printf(o, ",\"%s\":{\"sum\":%llu,\"count\":%llu", key, (unsigned long long)h->sum_us,
                  (unsigned long long)h->count);
    if (buckets) {
        ml_out_printf(o, ",\"buckets\":[");
        for (int b = 0; b < ML_STATS_N_BUCKETS; b++) {
            ml_out_printf(o, "%s%llu", b > 0 ? "," : "", (unsigned long long)h->buckets[b]);
        }
        ml_out_printf(o, "]");
    }
    ml_out_printf(o, "}");
}

/* The fields of c (after an opening brace and at least one field). */
static void json_calls(struct ml_out *o, const struct ml_stats_calls *c, bool buckets)
{
    bool first = true;

    ml_out_printf(
        o, ",\"total\":%llu,\"active\":%llu,\"errors\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu",
        (unsigned long long)c->total, (unsigned long long)c->active,
        (unsigned long long)errors_of(c), (unsigned long long)c->bytes_in,
        (unsigned long long)c->bytes_out);
    ml_out_printf(o, ",\"codes\":{");
    for (int s = 0; s < ML_STATS_N_STATUS; s++) {
        if (c->by_status[s] > 0) {
            ml_out_printf(o, "%s\"%s\":%llu", first ? "" : ",", status_names[s],
                          (unsigned long long)c->by_status[s]);
            first = false;
        }
    }
    ml_out_printf(o, "}");
    json_hist(o, "duration_us", &c->duration, buckets);
    json_hist(o, "upstream_us", &c->upstream, buckets);
}

static void json_entity(const struct ml_stats *st, enum scope s, uint32_t i, struct ml_out *o)
{
    const struct ml_snapshot *snap = st->snap;

    ml_out_printf(o, "{\"name\":");
    switch (s) {
    case SCOPE_LISTENER: {
        const struct stats_listener *l = st->listeners[i];

        ml_out_json_str(o, snap->listeners[i].name);
        ml_out_printf(o,
                      ",\"cx_accepted\":%llu,\"cx_active\":%llu,\"cx_refused\":%llu,"
                      "\"cx_handshake_timeout\":%llu,\"cx_reclaimed\":%llu,\"rq_stalled\":%llu",
                      (unsigned long long)l->cx_accepted, (unsigned long long)l->cx_active,
                      (unsigned long long)l->cx_refused,
                      (unsigned long long)l->cx_handshake_timeout,
                      (unsigned long long)l->cx_reclaimed, (unsigned long long)l->rq_stalled);
        ml_out_printf(o, ",\"cx_tls_handshake\":%llu,\"cx_tls_busy\":%llu",
                      (unsigned long long)l->tls_handshake, (unsigned long long)l->tls_busy);
        for (int r = 0; r < ML_STATS_TLS_FAIL_KINDS; r++) {
            ml_out_printf(o, ",\"cx_tls_failed_%s\":%llu", tls_fail_name[r],
                          (unsigned long long)l->tls_failed[r]);
        }
        break;
    }
    case SCOPE_ROUTE:
        ml_out_json_str(o, snap->routes[i].name);
        for (int e = 0; e < ML_STATS_ROUTE_N_EVENTS; e++) {
            ml_out_printf(o, ",\"rq_%s\":%llu", route_ev_name[e],
                          (unsigned long long)st->routes[i]->route_ev[e]);
        }
        break;
    case SCOPE_CLUSTER:
        ml_out_json_str(o, snap->clusters[i].name);
        ml_out_printf(
            o, ",\"rq_pending_overflow\":%llu,\"cb_max_requests\":%llu,\"cb_max_retries\":%llu",
            (unsigned long long)st->clusters[i]->rq_pending_overflow,
            (unsigned long long)st->clusters[i]->cb_max_requests,
            (unsigned long long)st->clusters[i]->cb_max_retries);
        if (snap->clusters[i].tls != ML_CFG_TLS_OFF) {
            ml_out_printf(o, ",\"up_tls_handshake\":%llu",
                          (unsigned long long)st->clusters[i]->up_tls_handshake);
            for (int r = 0; r < ML_STATS_UP_TLS_FAIL_KINDS; r++) {
                ml_out_printf(o, ",\"up_tls_failed_%s\":%llu", up_tls_fail_name[r],
                              (unsigned long long)st->clusters[i]->up_tls_failed[r]);
            }
        }
        if (snap->clusters[i].dns_host != NULL) {
            ml_out_printf(o, ",\"dns_resolutions\":%llu,\"dns_failures\":%llu,\"dns_hosts\":%llu",
                          (unsigned long long)st->clusters[i]->dns_resolutions,
                          (unsigned long long)st->clusters[i]->dns_failures,
                          (unsigned long long)st->clusters[i]->dns_hosts);
        }
        break;
    case SCOPE_ENDPOINT: {
        const struct stats_endpoint *e = st->eps[i].e;

        ml_out_json_str(o, endpoint_addr(st, i));
        ml_out_printf(o, ",\"cluster\":");
        ml_out_json_str(o, snap->clusters[st->eps[i].cluster].name);
        ml_out_printf(o, ",\"cx_opened\":%llu,\"cx_active\":%llu,\"cx_failed\":%llu",
                      (unsigned long long)e->cx_opened, (unsigned long long)e->cx_active,
                      (unsigned long long)e->cx_failed);
        ml_out_printf(o,
                      ",\"cx_backoff\":%llu,\"unhealthy\":%llu,\"ejected\":%llu,\"ejections\":%llu",
                      (unsigned long long)e->cx_backoff, (unsigned long long)e->unhealthy,
                      (unsigned long long)e->ejected, (unsigned long long)e->ejections);
        break;
    }
    default:
        ml_out_json_str(o, "all");
        break;
    }
    json_calls(o, scope_calls(st, s, i), s != SCOPE_ENDPOINT);
    ml_out_printf(o, "}");
}

static const char *const json_list[N_SCOPES] = {"", "listeners", "routes", "clusters", "endpoints"};

/* Parts: the head (bucket bounds, the whole proxy), then one list per scope, whose last item
 * closes it (and the last list the object). */
static enum step json_item(const struct ml_stats *st, unsigned int part, unsigned int item,
                           struct ml_out *o)
{
    uint32_t n;

    if (part == 0) {
        if (item > 0) {
            return STEP_PART_END;
        }
        ml_out_printf(o, "{\"bounds_us\":[");
        for (int b = 0; b < ML_STATS_N_BOUNDS; b++) {
            ml_out_printf(o, "%s%u", b > 0 ? "," : "", bounds_us[b]);
        }
        ml_out_printf(o, "],\"calls\":");
        json_entity(st, SCOPE_ALL, 0, o);
        return STEP_ITEM;
    }
    if (part >= N_SCOPES) {
        return STEP_END;
    }
    n = scope_count(st, (enum scope)part);
    if (item > n) {
        return STEP_PART_END;
    }
    if (item == 0) {
        ml_out_printf(o, ",\"%s\":[", json_list[part]);
    }
    if (item < n) {
        ml_out_printf(o, "%s", item > 0 ? "," : "");
        json_entity(st, (enum scope)part, item, o);
    } else {
        ml_out_printf(o, part == N_SCOPES - 1 ? "]}\n" : "]");
    }
    return STEP_ITEM;
}

/* ---- the driver ------------------------------------------------------------------------------ */

long ml_stats_render_part(const struct ml_stats *st, enum ml_stats_format f,
                          struct ml_stats_cursor *cur, char *out, size_t cap)
{
    item_fn *fn = f == ML_STATS_PROMETHEUS ? prom_item : f == ML_STATS_JSON ? json_item : text_item;
    struct ml_out o = {.p = out, .cap = cap};

    if (cap == 0) {
        return -ENOBUFS;
    }
    out[0] = '\0';
    while (!cur->done) {
        size_t mark = o.n;
        enum step step = fn(st, cur->part, cur->item, &o);

        if (o.full) {
            /* only whole items: the one cut is written next time, from its start */
            out[mark] = '\0';
            return mark > 0 ? (long)mark : -ENOBUFS;
        }
        switch (step) {
        case STEP_ITEM:
            cur->item++;
            break;
        case STEP_PART_END:
            cur->part++;
            cur->item = 0;
            break;
        case STEP_END:
            cur->done = 1;
            break;
        }
    }
    return (long)o.n;
}

static long render_whole(const struct ml_stats *st, enum ml_stats_format f, char *out, size_t cap)
{
    struct ml_stats_cursor cur = {0};
    long n = ml_stats_render_part(st, f, &cur, out, cap);

    return n >= 0 && !cur.done ? -ENOBUFS : n;
}

long ml_stats_render_text(const struct ml_stats *st, char *out, size_t cap)
{
    return render_whole(st, ML_STATS_TEXT, out, cap);
}

long ml_stats_render_prometheus(const struct ml_stats *st, char *out, size_t cap)
{
    return render_whole(st, ML_STATS_PROMETHEUS, out, cap);
}
