/* Counters and call-duration histograms, kept where the decisions are made (accept/refuse,
 * connect success/failure, call start/end) and read by the admin endpoint. No globals: a stats
 * object hangs off each proxy context. Every hook takes a NULL stats (counts nothing). */
#ifndef ML_CORE_STATS_H
#define ML_CORE_STATS_H

#include "core/stats-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_snapshot;

/* Counters for the listeners, routes, clusters and endpoints of snap, all zero. snap is borrowed
 * for names (rendering, ml_stats_next) and must outlive that use; counting does not read it.
 * NULL when out of memory. The caller holds the one reference. */
struct ml_stats *ml_stats_new(const struct ml_snapshot *snap);
/* The counters of snap after a hot apply: those of the whole proxy, and of each listener, route,
 * cluster (by name) and endpoint (by cluster name and address as written) that prev has too, are
 * the very same counters (they carry on, whichever table counts); the others start at zero.
 * prev is not changed and prev's snapshot must still be alive. NULL when out of memory. */
struct ml_stats *ml_stats_next(const struct ml_stats *prev, const struct ml_snapshot *snap);
/* [node] workers > 1 (core/stats_sum.c): sum is a table made with ml_stats_new for the
 * snapshot to show; ml_stats_sum_add adds part's counters to it, matched by name as
 * ml_stats_next matches them (gauges of one endpoint's state, and a cluster's DNS hosts, take
 * the largest instead). part may be another worker's table, counting meanwhile on its thread:
 * it is read with relaxed atomic loads; the caller keeps it alive. */
void ml_stats_sum_add(struct ml_stats *sum, const struct ml_stats *part);
/* One worker's downstream connections accepted and open, and calls ended (/stats' worker rows). */
void ml_stats_worker_totals(const struct ml_stats *st, uint64_t *cx_total, uint64_t *cx_active,
                            uint64_t *calls_total);
/* Another reference (for a call that counts where it started, a listener, a balance). NULL is
 * passed through. */
struct ml_stats *ml_stats_ref(struct ml_stats *st);
/* Drops a reference; the last one frees st. NULL is a no-op. */
void ml_stats_free(struct ml_stats *st);

void ml_stats_downstream(struct ml_stats *st, int listener, enum ml_stats_down_event ev);
void ml_stats_upstream(struct ml_stats *st, int cluster, int endpoint, enum ml_stats_up_event ev);
void ml_stats_cluster(struct ml_stats *st, int cluster, enum ml_stats_cluster_event ev);
/* A lookup of cluster's dns = was answered (failed: it failed or found nothing); hosts: how many
 * the cluster has now. */
void ml_stats_dns(struct ml_stats *st, int cluster, bool failed, uint32_t hosts);
/* A request-policy event of a call on route (-1: none; ignored). */
void ml_stats_route(struct ml_stats *st, int route, enum ml_stats_route_event ev);
/* An [authz] decision (authz: index into snap->authz; rule: the rule that matched, -1: the
 * default): text "authz.LISTENER.rule.N.allowed|denied" (N from 1) and
 * "authz.LISTENER.default.allowed|denied", Prometheus meshlet_authz_rq_{allowed,denied}_total. */
void ml_stats_authz(struct ml_stats *st, int authz, int rule, bool allowed);

/* A call starts on listener: c is reset to it and counted active. */
void ml_stats_call_begin(struct ml_stats *st, struct ml_stats_call *c, int listener);
/* The call was routed (cluster may be -1: it never got one). */
void ml_stats_call_route(struct ml_stats *st, struct ml_stats_call *c, int route, int cluster);
/* The call got an endpoint of its cluster. */
void ml_stats_call_endpoint(struct ml_stats *st, struct ml_stats_call *c, int endpoint);
/* The call ended: grpc_status 0..16, or -1 for none. Counted everywhere c says. */
void ml_stats_call_end(struct ml_stats *st, struct ml_stats_call *c, int grpc_status,
                       uint64_t duration_ms, uint64_t bytes_in, uint64_t bytes_out);
/* upstream_us when the call never opened an upstream stream. */
#define ML_STATS_NO_UPSTREAM UINT64_MAX
/* The same in µs, with the time from the upstream stream's open to the end (upstream_us, or
 * ML_STATS_NO_UPSTREAM) apart from the whole call's (duration_us). */
void ml_stats_call_end_us(struct ml_stats *st, struct ml_stats_call *c, int grpc_status,
                          uint64_t duration_us, uint64_t upstream_us, uint64_t bytes_in,
                          uint64_t bytes_out);

/* For the fleet's Status: calls ended since start (across hot applies), and of those the ones
 * that ended with a grpc-status other than 0 (OK). A NULL st gives 0 and 0. */
void ml_stats_totals(const struct ml_stats *st, uint64_t *calls_total, uint64_t *calls_failed);

/* The bucket bounds in µs (ML_STATS_N_BOUNDS of them). */
const uint32_t *ml_stats_bucket_bounds_us(void);
/* The bucket of a duration of us: the index of the first bound >= us, ML_STATS_N_BOUNDS (+Inf)
 * past the last. */
int ml_stats_bucket(uint64_t us);
void ml_stats_hist_add(struct ml_stats_hist *h, uint64_t us);
/* The canonical text of bucket b's upper bound in seconds, as Prometheus clients write `le`
 * ("5e-05", "0.0001", ..., "10", "+Inf" for b = ML_STATS_N_BOUNDS). */
const char *ml_stats_bucket_le(int b);
/* The grpc-status name of s (0..16: "OK" ... "UNAUTHENTICATED"; ML_STATS_STATUS_NONE: "none"). */
const char *ml_stats_status_name(int s);

/* A piece of one rendering small enough never to need more: one entity's lines. A buffer of at
 * least this size always makes progress. */
#define ML_STATS_ITEM_MAX_BYTES 8192

/* Renders the next whole pieces of st in format f after cur into out[0..cap) (NUL-terminated)
 * and moves cur past them; cur->done once the last piece is in. The rendering has no size
 * bound: it is written piece by piece (the admin endpoint streams it). Returns the length
 * (0 only when done), or -ENOBUFS when the next piece alone does not fit in cap. st and its
 * snapshot must be the same throughout. */
long ml_stats_render_part(const struct ml_stats *st, enum ml_stats_format f,
                          struct ml_stats_cursor *cur, char *out, size_t cap);

/* The whole rendering at once into out[0..cap): the length, or -ENOBUFS when it does not fit.
 * Text: "name value" per line; Prometheus: text exposition format 0.0.4 (names meshlet_...). */
long ml_stats_render_text(const struct ml_stats *st, char *out, size_t cap);
long ml_stats_render_prometheus(const struct ml_stats *st, char *out, size_t cap);

#endif
