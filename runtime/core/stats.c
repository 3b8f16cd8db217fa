/* Counters and histograms of one proxy, and their two renderings (text, Prometheus 0.0.4).
 * Everything is sized once from the snapshot: counting never allocates.
 *
 * A hot apply (proxy/apply.c) makes a new table for the new snapshot with ml_stats_next: the
 * counters of a listener, route, cluster or endpoint whose name remains are the same record in
 * both tables (refcounted), so they carry on, and a call in flight that counts in the table it
 * started with counts in them too; records of names that are gone live while an old table
 * does. The renderings are in core/stats_render.c. */
#include "core/stats.h"

#include "config/snapshot-t.h"
#include "core/alloc.h"
#include "core/stats_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const uint32_t bounds_us[ML_STATS_N_BOUNDS] = {ML_STATS_BUCKETS_US};

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

static bool authz_rule_same(const struct ml_cfg_authz_rule *a, const struct ml_cfg_authz_rule *b)
{
    return a->allow == b->allow && strcmp(a->principal, b->principal) == 0 &&
           strcmp(a->path, b->path) == 0;
}

/* The [authz] counters of snap: a rule's (and the default's) carry on when prev has the same
 * section with the same rule at the same place (or the same default). */
static int authz_build(struct ml_stats *st, const struct ml_stats *prev,
                       const struct ml_snapshot *snap)
{
    uint32_t slots = 0;

    st->authz_first = ml_calloc(snap->n_authz + 1, sizeof(*st->authz_first));
    for (uint32_t i = 0; i < snap->n_authz; i++) {
        slots += snap->authz[i].n_rules + 1;
    }
    st->authz_ctr = ml_calloc(slots + 1, sizeof(*st->authz_ctr));
    if (st->authz_first == NULL || st->authz_ctr == NULL) {
        return -ENOMEM;
    }
    slots = 0;
    for (uint32_t i = 0; i < snap->n_authz; i++) {
        const struct ml_cfg_authz *az = &snap->authz[i];

        st->authz_first[i] = slots;
        for (uint32_t j = 0; prev != NULL && j < prev->n_authz; j++) {
            const struct ml_cfg_authz *old = &prev->snap->authz[j];
            uint32_t of = prev->authz_first[j];

            if (strcmp(old->name, az->name) != 0) {
                continue;
            }
            for (uint32_t r = 0; r < az->n_rules && r < old->n_rules; r++) {
                if (authz_rule_same(&az->rules[r], &old->rules[r])) {
                    memcpy(st->authz_ctr[slots + r], prev->authz_ctr[of + r],
                           sizeof(st->authz_ctr[0]));
                }
            }
            if (az->default_allow == old->default_allow) {
                memcpy(st->authz_ctr[slots + az->n_rules], prev->authz_ctr[of + old->n_rules],
                       sizeof(st->authz_ctr[0]));
            }
        }
        slots += az->n_rules + 1;
    }
    st->authz_first[snap->n_authz] = slots; /* the end of the last section's slots */
    st->n_authz = snap->n_authz;
    return 0;
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
    if (authz_build(st, prev, snap) < 0) {
        goto fail;
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
    ml_free(st->authz_first);
    ml_free(st->authz_ctr);
    ml_free(st);
}

const uint32_t *ml_stats_bucket_bounds_us(void)
{
    return bounds_us;
}

int ml_stats_bucket(uint64_t us)
{
    int lo = 0, hi = ML_STATS_N_BOUNDS;

    /* The first bound >= us (bounds ascend), by halving: 5 steps where a walk from the first
     * bound took up to 17, and a slow call (the ones a histogram is for) walked the most. */
    while (lo < hi) {
        int mid = (lo + hi) / 2;

        if (us > bounds_us[mid]) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* us, which falls in bucket b (ml_stats_bucket), into h. */
static void hist_add_at(struct ml_stats_hist *h, int b, uint64_t us)
{
    ML_STAT_ADD(h->buckets[b], 1);
    ML_STAT_ADD(h->sum_us, us);
    ML_STAT_ADD(h->count, 1);
}

void ml_stats_hist_add(struct ml_stats_hist *h, uint64_t us)
{
    hist_add_at(h, ml_stats_bucket(us), us);
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
        ML_STAT_ADD(l->cx_accepted, 1);
        ML_STAT_ADD(l->cx_active, 1);
        break;
    case ML_STATS_DOWN_REFUSED:
        ML_STAT_ADD(l->cx_refused, 1);
        break;
    case ML_STATS_DOWN_CLOSED:
        if (l->cx_active > 0) {
            ML_STAT_ADD(l->cx_active, -1);
        }
        break;
    case ML_STATS_DOWN_HANDSHAKE_TIMEOUT:
        ML_STAT_ADD(l->cx_handshake_timeout, 1);
        break;
    case ML_STATS_DOWN_RECLAIMED:
        ML_STAT_ADD(l->cx_reclaimed, 1);
        break;
    case ML_STATS_DOWN_RQ_STALLED:
        ML_STAT_ADD(l->rq_stalled, 1);
        break;
    case ML_STATS_DOWN_TLS_HANDSHAKE:
        ML_STAT_ADD(l->tls_handshake, 1);
        break;
    case ML_STATS_DOWN_TLS_BUSY:
        ML_STAT_ADD(l->tls_busy, 1);
        break;
    case ML_STATS_DOWN_TLS_FAIL_BAD_CERT:
    case ML_STATS_DOWN_TLS_FAIL_UNKNOWN_CA:
    case ML_STATS_DOWN_TLS_FAIL_NO_ALPN:
    case ML_STATS_DOWN_TLS_FAIL_VERSION:
    case ML_STATS_DOWN_TLS_FAIL_TIMEOUT:
    case ML_STATS_DOWN_TLS_FAIL_PLAINTEXT:
    case ML_STATS_DOWN_TLS_FAIL_OTHER:
        ML_STAT_ADD(l->tls_failed[ev - ML_STATS_DOWN_TLS_FAIL_BAD_CERT], 1);
        break;
    }
}

void ml_stats_route(struct ml_stats *st, int route, enum ml_stats_route_event ev)
{
    if (st == NULL || !in(route, st->n_routes) || (unsigned)ev >= ML_STATS_ROUTE_N_EVENTS) {
        return;
    }
    ML_STAT_ADD(st->routes[route]->route_ev[ev], 1);
}

void ml_stats_dns(struct ml_stats *st, int cluster, bool failed, uint32_t hosts)
{
    struct stats_calls *c;

    if (st == NULL || !in(cluster, st->n_clusters)) {
        return;
    }
    c = st->clusters[cluster];
    ML_STAT_ADD(c->dns_resolutions, 1);
    ML_STAT_ADD(c->dns_failures, failed);
    ML_STAT_SET(c->dns_hosts, hosts);
}

void ml_stats_authz(struct ml_stats *st, int authz, int rule, bool allowed)
{
    uint32_t n_rules;

    if (st == NULL || !in(authz, st->n_authz)) {
        return;
    }
    /* from the table's own sizes: counting never reads snap */
    n_rules = st->authz_first[authz + 1] - st->authz_first[authz] - 1;
    ML_STAT_ADD(st->authz_ctr[st->authz_first[authz] +
                              (in(rule, n_rules) ? (uint32_t)rule : n_rules)][allowed ? 1 : 0],
                1);
}

void ml_stats_upstream(struct ml_stats *st, int cluster, int endpoint, enum ml_stats_up_event ev)
{
    struct stats_endpoint *e;

    if (st == NULL || (e = endpoint_of(st, cluster, endpoint)) == NULL) {
        return;
    }
    switch (ev) {
    case ML_STATS_UP_OPENED:
        ML_STAT_ADD(e->cx_opened, 1);
        break;
    case ML_STATS_UP_CONNECTED:
        ML_STAT_ADD(e->cx_active, 1);
        break;
    case ML_STATS_UP_FAILED:
        ML_STAT_ADD(e->cx_failed, 1);
        break;
    case ML_STATS_UP_CLOSED:
        if (e->cx_active > 0) {
            ML_STAT_ADD(e->cx_active, -1);
        }
        break;
    case ML_STATS_UP_EJECTED:
        ML_STAT_SET(e->ejected, 1);
        ML_STAT_ADD(e->ejections, 1);
        break;
    case ML_STATS_UP_RETURNED:
        ML_STAT_SET(e->ejected, 0);
        break;
    case ML_STATS_UP_BACKOFF:
        ML_STAT_ADD(e->cx_backoff, 1);
        break;
    case ML_STATS_UP_UNHEALTHY:
        ML_STAT_SET(e->unhealthy, 1);
        break;
    case ML_STATS_UP_HEALTHY:
        ML_STAT_SET(e->unhealthy, 0);
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
        ML_STAT_ADD(c->rq_pending_overflow, 1);
        break;
    case ML_STATS_CL_OVER_MAX_REQUESTS:
        ML_STAT_ADD(c->cb_max_requests, 1);
        break;
    case ML_STATS_CL_OVER_MAX_RETRIES:
        ML_STAT_ADD(c->cb_max_retries, 1);
        break;
    case ML_STATS_CL_TLS_HANDSHAKE:
        ML_STAT_ADD(c->up_tls_handshake, 1);
        break;
    case ML_STATS_CL_TLS_FAIL_BAD_CERT:
    case ML_STATS_CL_TLS_FAIL_UNKNOWN_CA:
    case ML_STATS_CL_TLS_FAIL_NO_ALPN:
    case ML_STATS_CL_TLS_FAIL_VERSION:
    case ML_STATS_CL_TLS_FAIL_TIMEOUT:
    case ML_STATS_CL_TLS_FAIL_IDENTITY:
    case ML_STATS_CL_TLS_FAIL_OTHER:
        ML_STAT_ADD(c->up_tls_failed[ev - ML_STATS_CL_TLS_FAIL_BAD_CERT], 1);
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
    ML_STAT_ADD(st->all->calls.active, 1);
    if (in(listener, st->n_listeners)) {
        ML_STAT_ADD(st->listeners[listener]->calls.active, 1);
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
        ML_STAT_ADD(st->routes[c->route]->calls.active, 1);
    }
    if (c->cluster >= 0) {
        ML_STAT_ADD(st->clusters[c->cluster]->calls.active, 1);
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
        ML_STAT_ADD(old->calls.active, -1);
    }
    c->endpoint = endpoint;
    ML_STAT_ADD(e->calls.active, 1);
}

void ml_stats_call_end(struct ml_stats *st, struct ml_stats_call *c, int grpc_status,
                       uint64_t duration_ms, uint64_t bytes_in, uint64_t bytes_out)
{
    ml_stats_call_end_us(st, c, grpc_status, duration_ms * 1000, ML_STATS_NO_UPSTREAM, bytes_in,
                         bytes_out);
}

void ml_stats_call_end_us(struct ml_stats *st, struct ml_stats_call *c, int grpc_status,
                          uint64_t duration_us, uint64_t upstream_us, uint64_t bytes_in,
                          uint64_t bytes_out)
{
    struct ml_stats_calls *all[5];
    int n, s = grpc_status >= 0 && grpc_status <= 16 ? grpc_status : ML_STATS_STATUS_NONE;
    int dur_b, up_b;

    if (st == NULL) {
        return;
    }
    /* One bucket search per call, not one per record the call counts in (up to 5). */
    dur_b = ml_stats_bucket(duration_us);
    up_b = upstream_us != ML_STATS_NO_UPSTREAM ? ml_stats_bucket(upstream_us) : 0;
    n = calls_of(st, c, all);
    for (int i = 0; i < n; i++) {
        ML_STAT_ADD(all[i]->total, 1);
        if (all[i]->active > 0) {
            ML_STAT_ADD(all[i]->active, -1);
        }
        ML_STAT_ADD(all[i]->by_status[s], 1);
        ML_STAT_ADD(all[i]->bytes_in, bytes_in);
        ML_STAT_ADD(all[i]->bytes_out, bytes_out);
        hist_add_at(&all[i]->duration, dur_b, duration_us);
        if (upstream_us != ML_STATS_NO_UPSTREAM) {
            hist_add_at(&all[i]->upstream, up_b, upstream_us);
        }
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
