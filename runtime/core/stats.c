/* Counters and histograms of one proxy, and their two renderings (text, Prometheus 0.0.4).
 * Everything is sized once from the snapshot: counting never allocates.
 *
 * A hot apply (proxy/apply.c) makes a new table for the new snapshot with ml_stats_next: the
 * counters of a listener, route, cluster or endpoint whose name remains are the same record in
 * both tables (refcounted), so they carry on, and a call in flight that counts in the table it
 * started with counts in them too; records of names that are gone live while an old table
 * does. */
#include "core/stats.h"

#include "config/snapshot-t.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const uint32_t bounds_ms[ML_STATS_N_BOUNDS] = {ML_STATS_BUCKETS_MS};

/* Every record starts with its reference count (see rec_ref / rec_unref). */
struct stats_listener {
    int refs;
    uint64_t cx_accepted, cx_active, cx_refused;
    uint64_t cx_handshake_timeout, cx_reclaimed;
    uint64_t rq_stalled; /* calls reset by stream_stall_timeout */
    struct ml_stats_calls calls;
};

struct stats_endpoint {
    int refs;
    uint64_t cx_opened, cx_active, cx_failed;
    uint64_t unhealthy;  /* 1 while active health checks have it out */
    uint64_t ejected;    /* 1 while outlier detection has it ejected */
    uint64_t ejections;  /* times ejected */
    uint64_t cx_backoff; /* connects not started: connect backoff */
    struct ml_stats_calls calls;
};

/* The whole proxy, a route, a cluster. */
struct stats_calls {
    int refs;
    struct ml_stats_calls calls;
    uint64_t route_ev[ML_STATS_ROUTE_N_EVENTS]; /* routes only */
    /* circuit breakers, clusters only */
    uint64_t rq_pending_overflow, cb_max_requests, cb_max_retries;
};

/* Names of the route events: text "route.NAME.rq_<name>", Prometheus
 * "meshlet_route_rq_<name>_total". */
static const char *const route_ev_name[ML_STATS_ROUTE_N_EVENTS] = {
    "retry", "retry_overflow", "fault_delayed", "fault_aborted", "rate_limited"};
static const char *const route_ev_help[ML_STATS_ROUTE_N_EVENTS] = {
    "Failed attempts sent again (retries)",
    "Failed attempts not retried because max_retries retries were in flight",
    "Calls delayed by fault injection", "Calls aborted by fault injection",
    "Calls refused by the route's rate_limit"};

/* An endpoint's place in one table. */
struct stats_ep_slot {
    struct stats_endpoint *e;
    int cluster;  /* index into snap->clusters */
    int endpoint; /* index into its endpoints */
};

struct ml_stats {
    int refs;
    const struct ml_snapshot *snap; /* names, for rendering; borrowed */
    /* Sizes, kept here: counting never reads snap (an old table may outlive its use). */
    uint32_t n_listeners, n_routes, n_clusters, n_eps;
    uint32_t *ep_counts;               /* as snap->clusters: endpoints per cluster */
    uint32_t *first_ep;                /* as snap->clusters: its endpoints in eps */
    struct stats_calls *all;           /* every call */
    struct stats_listener **listeners; /* as snap->listeners */
    struct stats_calls **routes;       /* as snap->routes */
    struct stats_calls **clusters;     /* as snap->clusters */
    struct stats_ep_slot *eps;         /* every cluster's endpoints, cluster by cluster */
};

static void *rec_new(size_t size)
{
    int *r = ml_calloc(1, size);

    if (r != NULL) {
        *r = 1;
    }
    return r;
}

static void *rec_ref(void *rec)
{
    ++*(int *)rec;
    return rec;
}

static void rec_unref(void *rec)
{
    if (rec != NULL && --*(int *)rec == 0) {
        ml_free(rec);
    }
}

/* The record of prev named like snap's entry, with a new reference; else a new one. */
static void *rec_take(void *found, size_t size)
{
    return found != NULL ? rec_ref(found) : rec_new(size);
}

static void *find_listener(const struct ml_stats *prev, const char *name)
{
    for (uint32_t i = 0; prev != NULL && i < prev->n_listeners; i++) {
        if (strcmp(prev->snap->listeners[i].name, name) == 0) {
            return prev->listeners[i];
        }
    }
    return NULL;
}

static void *find_route(const struct ml_stats *prev, const char *name)
{
    for (uint32_t i = 0; prev != NULL && i < prev->n_routes; i++) {
        if (strcmp(prev->snap->routes[i].name, name) == 0) {
            return prev->routes[i];
        }
    }
    return NULL;
}

static int find_cluster(const struct ml_stats *prev, const char *name)
{
    for (uint32_t i = 0; prev != NULL && i < prev->n_clusters; i++) {
        if (strcmp(prev->snap->clusters[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void *find_endpoint(const struct ml_stats *prev, int cluster, const char *addr)
{
    const struct ml_cfg_cluster *cl;

    if (cluster < 0) {
        return NULL;
    }
    cl = &prev->snap->clusters[cluster];
    for (uint32_t e = 0; e < prev->ep_counts[cluster]; e++) {
        if (strcmp(cl->endpoints[e].addr.text, addr) == 0) {
            return prev->eps[prev->first_ep[cluster] + e].e;
        }
    }
    return NULL;
}

static struct ml_stats *stats_build(const struct ml_stats *prev, const struct ml_snapshot *snap)
{
    struct ml_stats *st = ml_calloc(1, sizeof(*st));
    uint32_t n_eps = 0;

    if (st == NULL) {
        return NULL;
    }
    st->refs = 1;
    st->snap = snap;
    for (uint32_t c = 0; c < snap->n_clusters; c++) {
        n_eps += snap->clusters[c].n_endpoints;
    }
    /* calloc(n + 1): never a zero-size allocation to tell apart from a failure. */
    st->listeners = ml_calloc(snap->n_listeners + 1, sizeof(*st->listeners));
    st->routes = ml_calloc(snap->n_routes + 1, sizeof(*st->routes));
    st->clusters = ml_calloc(snap->n_clusters + 1, sizeof(*st->clusters));
    st->ep_counts = ml_calloc(snap->n_clusters + 1, sizeof(*st->ep_counts));
    st->first_ep = ml_calloc(snap->n_clusters + 1, sizeof(*st->first_ep));
    st->eps = ml_calloc(n_eps + 1, sizeof(*st->eps));
    if (st->listeners == NULL || st->routes == NULL || st->clusters == NULL ||
        st->ep_counts == NULL || st->first_ep == NULL || st->eps == NULL) {
        goto fail;
    }
    if ((st->all = prev != NULL ? rec_ref(prev->all) : rec_new(sizeof(*st->all))) == NULL) {
        goto fail;
    }
    /* The counts grow with what is filled in: ml_stats_free releases exactly that. */
    for (uint32_t i = 0; i < snap->n_listeners; i++) {
        st->listeners[i] =
            rec_take(find_listener(prev, snap->listeners[i].name), sizeof(struct stats_listener));
        if (st->listeners[i] == NULL) {
            goto fail;
        }
        st->n_listeners = i + 1;
    }
    for (uint32_t i = 0; i < snap->n_routes; i++) {
        st->routes[i] =
            rec_take(find_route(prev, snap->routes[i].name), sizeof(struct stats_calls));
        if (st->routes[i] == NULL) {
            goto fail;
        }
        st->n_routes = i + 1;
    }
    for (uint32_t c = 0; c < snap->n_clusters; c++) {
        const struct ml_cfg_cluster *cl = &snap->clusters[c];
        int old = find_cluster(prev, cl->name);

        st->clusters[c] =
            rec_take(old >= 0 ? prev->clusters[old] : NULL, sizeof(struct stats_calls));
        if (st->clusters[c] == NULL) {
            goto fail;
        }
        st->n_clusters = c + 1;
        st->first_ep[c] = st->n_eps;
        for (uint32_t e = 0; e < cl->n_endpoints; e++) {
            struct stats_ep_slot *s = &st->eps[st->n_eps];

            s->e = rec_take(find_endpoint(prev, old, cl->endpoints[e].addr.text),
                            sizeof(struct stats_endpoint));
            if (s->e == NULL) {
                goto fail;
            }
            s->cluster = (int)c;
            s->endpoint = (int)e;
            st->n_eps++;
            st->ep_counts[c] = e + 1;
        }
    }
    return st;

fail:
    ml_stats_free(st);
    return NULL;
}

struct ml_stats *ml_stats_new(const struct ml_snapshot *snap)
{
    return stats_build(NULL, snap);
}

struct ml_stats *ml_stats_next(const struct ml_stats *prev, const struct ml_snapshot *snap)
{
    return stats_build(prev, snap);
}

struct ml_stats *ml_stats_ref(struct ml_stats *st)
{
    if (st != NULL) {
        st->refs++;
    }
    return st;
}

void ml_stats_free(struct ml_stats *st)
{
    if (st == NULL || --st->refs > 0) {
        return;
    }
    for (uint32_t i = 0; i < st->n_listeners; i++) {
        rec_unref(st->listeners[i]);
    }
    for (uint32_t i = 0; i < st->n_routes; i++) {
        rec_unref(st->routes[i]);
    }
    for (uint32_t i = 0; i < st->n_clusters; i++) {
        rec_unref(st->clusters[i]);
    }
    for (uint32_t i = 0; i < st->n_eps; i++) {
        rec_unref(st->eps[i].e);
    }
    rec_unref(st->all);
    ml_free(st->listeners);
    ml_free(st->routes);
    ml_free(st->clusters);
    ml_free(st->ep_counts);
    ml_free(st->first_ep);
    ml_free(st->eps);
    ml_free(st);
}

const uint32_t *ml_stats_bucket_bounds_ms(void)
{
    return bounds_ms;
}

void ml_stats_hist_add(struct ml_stats_hist *h, uint64_t ms)
{
    int i = 0;

    while (i < ML_STATS_N_BOUNDS && ms > bounds_ms[i]) {
        i++;
    }
    h->buckets[i]++;
    h->sum_ms += ms;
    h->count++;
}

/* ---- counting -------------------------------------------------------------------------- */

static bool in(int i, uint32_t n)
{
    return i >= 0 && (uint32_t)i < n;
}

static struct stats_endpoint *endpoint_of(struct ml_stats *st, int cluster, int endpoint)
{
    if (!in(cluster, st->n_clusters) || !in(endpoint, st->ep_counts[cluster])) {
        return NULL;
    }
    return st->eps[st->first_ep[cluster] + (uint32_t)endpoint].e;
}

void ml_stats_downstream(struct ml_stats *st, int listener, enum ml_stats_down_event ev)
{
    struct stats_listener *l;

    if (st == NULL || !in(listener, st->n_listeners)) {
        return;
    }
    l = st->listeners[listener];
    switch (ev) {
    case ML_STATS_DOWN_ACCEPTED:
        l->cx_accepted++;
        l->cx_active++;
        break;
    case ML_STATS_DOWN_REFUSED:
        l->cx_refused++;
        break;
    case ML_STATS_DOWN_CLOSED:
        if (l->cx_active > 0) {
            l->cx_active--;
        }
        break;
    case ML_STATS_DOWN_HANDSHAKE_TIMEOUT:
        l->cx_handshake_timeout++;
        break;
    case ML_STATS_DOWN_RECLAIMED:
        l->cx_reclaimed++;
        break;
    case ML_STATS_DOWN_RQ_STALLED:
        l->rq_stalled++;
        break;
    }
}

void ml_stats_route(struct ml_stats *st, int route, enum ml_stats_route_event ev)
{
    if (st == NULL || !in(route, st->n_routes) || (unsigned)ev >= ML_STATS_ROUTE_N_EVENTS) {
        return;
    }
    st->routes[route]->route_ev[ev]++;
}

void ml_stats_upstream(struct ml_stats *st, int cluster, int endpoint, enum ml_stats_up_event ev)
{
    struct stats_endpoint *e;

    if (st == NULL || (e = endpoint_of(st, cluster, endpoint)) == NULL) {
        return;
    }
    switch (ev) {
    case ML_STATS_UP_OPENED:
        e->cx_opened++;
        break;
    case ML_STATS_UP_CONNECTED:
        e->cx_active++;
        break;
    case ML_STATS_UP_FAILED:
        e->cx_failed++;
        break;
    case ML_STATS_UP_CLOSED:
        if (e->cx_active > 0) {
            e->cx_active--;
        }
        break;
    case ML_STATS_UP_EJECTED:
        e->ejected = 1;
        e->ejections++;
        break;
    case ML_STATS_UP_RETURNED:
        e->ejected = 0;
        break;
    case ML_STATS_UP_BACKOFF:
        e->cx_backoff++;
        break;
    case ML_STATS_UP_UNHEALTHY:
        e->unhealthy = 1;
        break;
    case ML_STATS_UP_HEALTHY:
        e->unhealthy = 0;
        break;
    }
}

void ml_stats_cluster(struct ml_stats *st, int cluster, enum ml_stats_cluster_event ev)
{
    struct stats_calls *c;

    if (st == NULL || !in(cluster, st->n_clusters)) {
        return;
    }
    c = st->clusters[cluster];
    switch (ev) {
    case ML_STATS_CL_PENDING_OVERFLOW:
        c->rq_pending_overflow++;
        break;
    case ML_STATS_CL_OVER_MAX_REQUESTS:
        c->cb_max_requests++;
        break;
    case ML_STATS_CL_OVER_MAX_RETRIES:
        c->cb_max_retries++;
        break;
    }
}

/* The counters c is counted in, at most 5 (all, listener, route, cluster, endpoint). */
static int calls_of(struct ml_stats *st, const struct ml_stats_call *c,
                    struct ml_stats_calls *out[5])
{
    struct stats_endpoint *e;
    int n = 0;

    out[n++] = &st->all->calls;
    if (in(c->listener, st->n_listeners)) {
        out[n++] = &st->listeners[c->listener]->calls;
    }
    if (in(c->route, st->n_routes)) {
        out[n++] = &st->routes[c->route]->calls;
    }
    if (in(c->cluster, st->n_clusters)) {
        out[n++] = &st->clusters[c->cluster]->calls;
        if ((e = endpoint_of(st, c->cluster, c->endpoint)) != NULL) {
            out[n++] = &e->calls;
        }
    }
    return n;
}

void ml_stats_call_begin(struct ml_stats *st, struct ml_stats_call *c, int listener)
{
    *c = (struct ml_stats_call){.listener = listener, .route = -1, .cluster = -1, .endpoint = -1};
    if (st == NULL) {
        return;
    }
    st->all->calls.active++;
    if (in(listener, st->n_listeners)) {
        st->listeners[listener]->calls.active++;
    }
}

void ml_stats_call_route(struct ml_stats *st, struct ml_stats_call *c, int route, int cluster)
{
    if (st == NULL || c->route >= 0) {
        return;
    }
    c->route = in(route, st->n_routes) ? route : -1;
    c->cluster = in(cluster, st->n_clusters) ? cluster : -1;
    if (c->route >= 0) {
        st->routes[c->route]->calls.active++;
    }
    if (c->cluster >= 0) {
        st->clusters[c->cluster]->calls.active++;
    }
}

void ml_stats_call_endpoint(struct ml_stats *st, struct ml_stats_call *c, int endpoint)
{
    struct stats_endpoint *e;

    struct stats_endpoint *old;

    if (st == NULL || c->endpoint == endpoint ||
        (e = endpoint_of(st, c->cluster, endpoint)) == NULL) {
        return;
    }
    /* Sent again elsewhere (a replay after GOAWAY): counted where it went last. */
    if ((old = endpoint_of(st, c->cluster, c->endpoint)) != NULL && old->calls.active > 0) {
        old->calls.active--;
    }
    c->endpoint = endpoint;
    e->calls.active++;
}

void ml_stats_call_end(struct ml_stats *st, struct ml_stats_call *c, int grpc_status,
                       uint64_t duration_ms, uint64_t bytes_in, uint64_t bytes_out)
{
    struct ml_stats_calls *all[5];
    int n, s = grpc_status >= 0 && grpc_status <= 16 ? grpc_status : ML_STATS_STATUS_NONE;

    if (st == NULL) {
        return;
    }
    n = calls_of(st, c, all);
    for (int i = 0; i < n; i++) {
        all[i]->total++;
        if (all[i]->active > 0) {
            all[i]->active--;
        }
        all[i]->by_status[s]++;
        all[i]->bytes_in += bytes_in;
        all[i]->bytes_out += bytes_out;
        ml_stats_hist_add(&all[i]->duration, duration_ms);
    }
    *c = (struct ml_stats_call){.listener = -1, .route = -1, .cluster = -1, .endpoint = -1};
}

void ml_stats_totals(const struct ml_stats *st, uint64_t *calls_total, uint64_t *calls_failed)
{
    *calls_total = 0;
    *calls_failed = 0;
    if (st == NULL) {
        return;
    }
    *calls_total = st->all->calls.total;
    for (int s = 1; s <= 16; s++) {
        *calls_failed += st->all->calls.by_status[s];
    }
}

/* ---- rendering ----------------------------------------------------------------------------- */

struct out {
    char *p;
    size_t n, cap;
    bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int rv;

    if (o->full) {
        return;
    }
    va_start(ap, fmt);
    rv = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
    va_end(ap);
    if (rv < 0 || (size_t)rv >= o->cap - o->n) {
        o->full = true;
        o->p[o->n] = '\0'; /* only whole lines */
        return;
    }
    o->n += (size_t)rv;
}

static long finish(struct out *o)
{
    return o->full ? -ENOBUFS : (long)o->n;
}

static const char *status_name(int s, char *buf, size_t cap)
{
    if (s == ML_STATS_STATUS_NONE) {
        return "none";
    }
    snprintf(buf, cap, "%d", s);
    return buf;
}

/* ---- text: "name value" ---- */

static void text_calls(struct out *o, const char *prefix, const char *rq,
                       const struct ml_stats_calls *c, bool hist, bool all_codes)
{
    char code[16];
    uint64_t cum = 0;

    put(o, "%s%s_total %llu\n", prefix, rq, (unsigned long long)c->total);
    put(o, "%s%s_active %llu\n", prefix, rq, (unsigned long long)c->active);
    for (int s = 0; s < ML_STATS_N_STATUS; s++) {
        if (all_codes || c->by_status[s] > 0) {
            put(o, "%sgrpc_status.%s %llu\n", prefix, status_name(s, code, sizeof(code)),
                (unsigned long long)c->by_status[s]);
        }
    }
    put(o, "%sbytes_in %llu\n", prefix, (unsigned long long)c->bytes_in);
    put(o, "%sbytes_out %llu\n", prefix, (unsigned long long)c->bytes_out);
    if (!hist) {
        return;
    }
    for (int b = 0; b < ML_STATS_N_BUCKETS; b++) {
        cum += c->duration.buckets[b];
        if (b < ML_STATS_N_BOUNDS) {
            put(o, "%sduration_ms.le_%u %llu\n", prefix, bounds_ms[b], (unsigned long long)cum);
        } else {
            put(o, "%sduration_ms.le_inf %llu\n", prefix, (unsigned long long)cum);
        }
    }
    put(o, "%sduration_ms.sum %llu\n", prefix, (unsigned long long)c->duration.sum_ms);
    put(o, "%sduration_ms.count %llu\n", prefix, (unsigned long long)c->duration.count);
}

long ml_stats_render_text(const struct ml_stats *st, char *out, size_t cap)
{
    const struct ml_snapshot *snap = st->snap;
    struct out o = {.p = out, .cap = cap};
    char prefix[256];

    if (cap == 0) {
        return -ENOBUFS;
    }
    out[0] = '\0';
    text_calls(&o, "calls.", "rq", &st->all->calls, true, true);
    for (uint32_t i = 0; i < snap->n_listeners; i++) {
        const struct stats_listener *l = st->listeners[i];

        snprintf(prefix, sizeof(prefix), "listener.%s.", snap->listeners[i].name);
        put(&o, "%sdownstream_cx_accepted %llu\n", prefix, (unsigned long long)l->cx_accepted);
        put(&o, "%sdownstream_cx_active %llu\n", prefix, (unsigned long long)l->cx_active);
        put(&o, "%sdownstream_cx_refused %llu\n", prefix, (unsigned long long)l->cx_refused);
        put(&o, "%sdownstream_cx_handshake_timeout %llu\n", prefix,
            (unsigned long long)l->cx_handshake_timeout);
        put(&o, "%sdownstream_cx_reclaimed %llu\n", prefix, (unsigned long long)l->cx_reclaimed);
        put(&o, "%sdownstream_rq_stalled %llu\n", prefix, (unsigned long long)l->rq_stalled);
        text_calls(&o, prefix, "downstream_rq", &l->calls, true, false);
    }
    for (uint32_t i = 0; i < snap->n_routes; i++) {
        snprintf(prefix, sizeof(prefix), "route.%s.", snap->routes[i].name);
        text_calls(&o, prefix, "rq", &st->routes[i]->calls, true, false);
        for (int e = 0; e < ML_STATS_ROUTE_N_EVENTS; e++) {
            put(&o, "%srq_%s %llu\n", prefix, route_ev_name[e],
                (unsigned long long)st->routes[i]->route_ev[e]);
        }
    }
    for (uint32_t c = 0; c < snap->n_clusters; c++) {
        const struct stats_calls *cl = st->clusters[c];
        uint32_t first_ep = st->first_ep[c];
        uint64_t opened = 0, active = 0, failed = 0;

        for (uint32_t e = 0; e < snap->clusters[c].n_endpoints; e++) {
            opened += st->eps[first_ep + e].e->cx_opened;
            active += st->eps[first_ep + e].e->cx_active;
            failed += st->eps[first_ep + e].e->cx_failed;
        }
        snprintf(prefix, sizeof(prefix), "cluster.%s.", snap->clusters[c].name);
        put(&o, "%supstream_cx_opened %llu\n", prefix, (unsigned long long)opened);
        put(&o, "%supstream_cx_active %llu\n", prefix, (unsigned long long)active);
        put(&o, "%supstream_cx_failed %llu\n", prefix, (unsigned long long)failed);
        put(&o, "%supstream_rq_pending_overflow %llu\n", prefix,
            (unsigned long long)cl->rq_pending_overflow);
        put(&o, "%supstream_cb_max_requests %llu\n", prefix,
            (unsigned long long)cl->cb_max_requests);
        put(&o, "%supstream_cb_max_retries %llu\n", prefix, (unsigned long long)cl->cb_max_retries);
        text_calls(&o, prefix, "upstream_rq", &cl->calls, true, false);
        for (uint32_t e = 0; e < snap->clusters[c].n_endpoints; e++) {
            const struct stats_endpoint *ep = st->eps[first_ep + e].e;

            snprintf(prefix, sizeof(prefix), "cluster.%s.endpoint.%s.", snap->clusters[c].name,
                     snap->clusters[c].endpoints[e].addr.text);
            put(&o, "%scx_opened %llu\n", prefix, (unsigned long long)ep->cx_opened);
            put(&o, "%scx_active %llu\n", prefix, (unsigned long long)ep->cx_active);
            put(&o, "%scx_failed %llu\n", prefix, (unsigned long long)ep->cx_failed);
            put(&o, "%scx_backoff %llu\n", prefix, (unsigned long long)ep->cx_backoff);
            put(&o, "%sunhealthy %llu\n", prefix, (unsigned long long)ep->unhealthy);
            put(&o, "%sejected %llu\n", prefix, (unsigned long long)ep->ejected);
            put(&o, "%sejections %llu\n", prefix, (unsigned long long)ep->ejections);
            text_calls(&o, prefix, "rq", &ep->calls, false, false);
        }
    }
    return finish(&o);
}

/* ---- Prometheus text exposition format 0.0.4 ---- */

enum scope { SCOPE_ALL, SCOPE_LISTENER, SCOPE_ROUTE, SCOPE_CLUSTER, SCOPE_ENDPOINT, N_SCOPES };

static const char *const scope_prefix[N_SCOPES] = {"", "listener_", "route_", "cluster_",
                                                   "endpoint_"};
static const char *const scope_what[N_SCOPES] = {"", " per listener", " per route", " per cluster",
                                                 " per endpoint"};

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

/* Entity i of scope s: its counters, and its labels ("listener=\"x\"", no braces) in buf. */
static const struct ml_stats_calls *scope_entity(const struct ml_stats *st, enum scope s,
                                                 uint32_t i, char *labels, size_t cap)
{
    const struct ml_snapshot *snap = st->snap;
    char a[160], b[160];

    labels[0] = '\0';
    switch (s) {
    case SCOPE_ALL:
        return &st->all->calls;
    case SCOPE_LISTENER:
        label_value(a, sizeof(a), snap->listeners[i].name);
        snprintf(labels, cap, "listener=\"%s\"", a);
        return &st->listeners[i]->calls;
    case SCOPE_ROUTE:
        label_value(a, sizeof(a), snap->routes[i].name);
        snprintf(labels, cap, "route=\"%s\"", a);
        return &st->routes[i]->calls;
    case SCOPE_CLUSTER:
        label_value(a, sizeof(a), snap->clusters[i].name);
        snprintf(labels, cap, "cluster=\"%s\"", a);
        return &st->clusters[i]->calls;
    case SCOPE_ENDPOINT: {
        const struct stats_ep_slot *e = &st->eps[i];
        const struct ml_cfg_cluster *cl = &snap->clusters[e->cluster];

        label_value(a, sizeof(a), cl->name);
        label_value(b, sizeof(b), cl->endpoints[e->endpoint].addr.text);
        snprintf(labels, cap, "cluster=\"%s\",endpoint=\"%s\"", a, b);
        return &e->e->calls;
    }
    default:
        return NULL;
    }
}

static void family(struct out *o, const char *name, const char *type, const char *help,
                   const char *what)
{
    put(o, "# HELP %s %s%s.\n# TYPE %s %s\n", name, help, what, name, type);
}

/* "{a,b}" / "{a}" / "{b}" / "" */
static const char *braces(char *buf, size_t cap, const char *a, const char *b)
{
    const char *sep = a[0] != '\0' && b[0] != '\0' ? "," : "";

    if (a[0] == '\0' && b[0] == '\0') {
        buf[0] = '\0';
    } else {
        snprintf(buf, cap, "{%s%s%s}", a, sep, b);
    }
    return buf;
}

static void prom_calls(struct out *o, const struct ml_stats *st, enum scope s)
{
    char name[96], labels[400], extra[64], lb[480], code[16];
    const char *pre = scope_prefix[s];
    uint32_t n = scope_count(st, s);

    if (n == 0) {
        return;
    }
    snprintf(name, sizeof(name), "meshlet_%scalls_total", pre);
    family(o, name, "counter", "Calls ended, by grpc-status (code=\"none\": ended without one)",
           scope_what[s]);
    for (uint32_t i = 0; i < n; i++) {
        const struct ml_stats_calls *c = scope_entity(st, s, i, labels, sizeof(labels));

        for (int k = 0; k < ML_STATS_N_STATUS; k++) {
            /* The whole proxy: every code, so a dashboard finds each series from the start. */
            if (s == SCOPE_ALL || c->by_status[k] > 0) {
                snprintf(extra, sizeof(extra), "code=\"%s\"", status_name(k, code, sizeof(code)));
                put(o, "%s%s %llu\n", name, braces(lb, sizeof(lb), labels, extra),
                    (unsigned long long)c->by_status[k]);
            }
        }
    }
    snprintf(name, sizeof(name), "meshlet_%scalls_active", pre);
    family(o, name, "gauge", "Calls in progress", scope_what[s]);
    for (uint32_t i = 0; i < n; i++) {
        const struct ml_stats_calls *c = scope_entity(st, s, i, labels, sizeof(labels));

        put(o, "%s%s %llu\n", name, braces(lb, sizeof(lb), labels, ""),
            (unsigned long long)c->active);
    }
    snprintf(name, sizeof(name), "meshlet_%sreceived_bytes_total", pre);
    family(o, name, "counter", "Request DATA payload bytes received from downstream",
           scope_what[s]);
    for (uint32_t i = 0; i < n; i++) {
        const struct ml_stats_calls *c = scope_entity(st, s, i, labels, sizeof(labels));

        put(o, "%s%s %llu\n", name, braces(lb, sizeof(lb), labels, ""),
            (unsigned long long)c->bytes_in);
    }
    snprintf(name, sizeof(name), "meshlet_%ssent_bytes_total", pre);
    family(o, name, "counter", "Response DATA payload bytes sent downstream", scope_what[s]);
    for (uint32_t i = 0; i < n; i++) {
        const struct ml_stats_calls *c = scope_entity(st, s, i, labels, sizeof(labels));

        put(o, "%s%s %llu\n", name, braces(lb, sizeof(lb), labels, ""),
            (unsigned long long)c->bytes_out);
    }
    if (s == SCOPE_ENDPOINT) {
        return; /* no histogram per endpoint: it would be the biggest part of the page */
    }
    snprintf(name, sizeof(name), "meshlet_%scall_duration_seconds", pre);
    family(o, name, "histogram", "Call durations, from request headers to the end of the call",
           scope_what[s]);
    for (uint32_t i = 0; i < n; i++) {
        const struct ml_stats_calls *c = scope_entity(st, s, i, labels, sizeof(labels));
        uint64_t cum = 0;

        for (int b = 0; b < ML_STATS_N_BUCKETS; b++) {
            cum += c->duration.buckets[b];
            if (b < ML_STATS_N_BOUNDS) {
                snprintf(extra, sizeof(extra), "le=\"%u.%03u\"", bounds_ms[b] / 1000,
                         bounds_ms[b] % 1000);
            } else {
                snprintf(extra, sizeof(extra), "le=\"+Inf\"");
            }
            put(o, "%s_bucket%s %llu\n", name, braces(lb, sizeof(lb), labels, extra),
                (unsigned long long)cum);
        }
        put(o, "%s_sum%s %llu.%03llu\n", name, braces(lb, sizeof(lb), labels, ""),
            (unsigned long long)(c->duration.sum_ms / 1000),
            (unsigned long long)(c->duration.sum_ms % 1000));
        put(o, "%s_count%s %llu\n", name, braces(lb, sizeof(lb), labels, ""),
            (unsigned long long)c->duration.count);
    }
}

/* One per-listener or per-endpoint connection counter family. */
static void prom_cx(struct out *o, const struct ml_stats *st, enum scope s, const char *name,
                    const char *type, const char *help, size_t offset)
{
    char labels[400], lb[480];

    family(o, name, type, help, scope_what[s]);
    for (uint32_t i = 0; i < scope_count(st, s); i++) {
        const void *rec = s == SCOPE_LISTENER  ? (const void *)st->listeners[i]
                          : s == SCOPE_CLUSTER ? (const void *)st->clusters[i]
                                               : (const void *)st->eps[i].e;
        uint64_t v;

        scope_entity(st, s, i, labels, sizeof(labels));
        memcpy(&v, (const char *)rec + offset, sizeof(v));
        put(o, "%s%s %llu\n", name, braces(lb, sizeof(lb), labels, ""), (unsigned long long)v);
    }
}

static void prom_route_events(struct out *o, const struct ml_stats *st)
{
    char name[96], labels[400], lb[480];

    for (int e = 0; e < ML_STATS_ROUTE_N_EVENTS && st->n_routes > 0; e++) {
        snprintf(name, sizeof(name), "meshlet_route_rq_%s_total", route_ev_name[e]);
        family(o, name, "counter", route_ev_help[e], scope_what[SCOPE_ROUTE]);
        for (uint32_t i = 0; i < st->n_routes; i++) {
            scope_entity(st, SCOPE_ROUTE, i, labels, sizeof(labels));
            put(o, "%s%s %llu\n", name, braces(lb, sizeof(lb), labels, ""),
                (unsigned long long)st->routes[i]->route_ev[e]);
        }
    }
}

long ml_stats_render_prometheus(const struct ml_stats *st, char *out, size_t cap)
{
    struct out o = {.p = out, .cap = cap};

    if (cap == 0) {
        return -ENOBUFS;
    }
    out[0] = '\0';
    for (int s = 0; s < N_SCOPES; s++) {
        prom_calls(&o, st, (enum scope)s);
    }
    if (st->n_listeners > 0) {
        prom_cx(&o, st, SCOPE_LISTENER, "meshlet_downstream_cx_accepted_total", "counter",
                "Downstream connections accepted", offsetof(struct stats_listener, cx_accepted));
        prom_cx(&o, st, SCOPE_LISTENER, "meshlet_downstream_cx_active", "gauge",
                "Downstream connections open", offsetof(struct stats_listener, cx_active));
        prom_cx(&o, st, SCOPE_LISTENER, "meshlet_downstream_cx_refused_total", "counter",
                "Downstream connections refused (max_connections, out of memory)",
                offsetof(struct stats_listener, cx_refused));
        prom_cx(&o, st, SCOPE_LISTENER, "meshlet_downstream_cx_handshake_timeout_total", "counter",
                "Downstream connections closed before the HTTP/2 handshake completed",
                offsetof(struct stats_listener, cx_handshake_timeout));
        prom_cx(&o, st, SCOPE_LISTENER, "meshlet_downstream_cx_reclaimed_total", "counter",
                "Idle downstream connections closed to make room at max_connections",
                offsetof(struct stats_listener, cx_reclaimed));
        prom_cx(&o, st, SCOPE_LISTENER, "meshlet_downstream_rq_stalled_total", "counter",
                "Calls reset because no bytes moved for stream_stall_timeout",
                offsetof(struct stats_listener, rq_stalled));
    }
    if (st->n_eps > 0) {
        prom_cx(&o, st, SCOPE_ENDPOINT, "meshlet_upstream_cx_opened_total", "counter",
                "Upstream connections started", offsetof(struct stats_endpoint, cx_opened));
        prom_cx(&o, st, SCOPE_ENDPOINT, "meshlet_upstream_cx_active", "gauge",
                "Upstream connections up", offsetof(struct stats_endpoint, cx_active));
        prom_cx(&o, st, SCOPE_ENDPOINT, "meshlet_upstream_cx_failed_total", "counter",
                "Upstream connections that never came up",
                offsetof(struct stats_endpoint, cx_failed));
        prom_cx(&o, st, SCOPE_ENDPOINT, "meshlet_upstream_cx_backoff_total", "counter",
                "Upstream connects not started: the endpoint's connect backoff after failures",
                offsetof(struct stats_endpoint, cx_backoff));
        prom_cx(&o, st, SCOPE_ENDPOINT, "meshlet_endpoint_unhealthy", "gauge",
                "1 while active health checks have the endpoint out",
                offsetof(struct stats_endpoint, unhealthy));
        prom_cx(&o, st, SCOPE_ENDPOINT, "meshlet_endpoint_ejected", "gauge",
                "1 while outlier detection has the endpoint ejected",
                offsetof(struct stats_endpoint, ejected));
        prom_cx(&o, st, SCOPE_ENDPOINT, "meshlet_endpoint_ejections_total", "counter",
                "Outlier ejections of the endpoint", offsetof(struct stats_endpoint, ejections));
    }
    if (st->n_clusters > 0) {
        prom_cx(&o, st, SCOPE_CLUSTER, "meshlet_cluster_rq_pending_overflow_total", "counter",
                "Calls refused at once: max_pending calls were waiting",
                offsetof(struct stats_calls, rq_pending_overflow));
        prom_cx(&o, st, SCOPE_CLUSTER, "meshlet_cluster_cb_max_requests_total", "counter",
                "Calls refused at once: max_requests calls were active",
                offsetof(struct stats_calls, cb_max_requests));
        prom_cx(&o, st, SCOPE_CLUSTER, "meshlet_cluster_cb_max_retries_total", "counter",
                "Retries not made: max_retries retries were in flight",
                offsetof(struct stats_calls, cb_max_retries));
    }
    prom_route_events(&o, st);
    return finish(&o);
}
