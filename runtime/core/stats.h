/* Counters and call-duration histograms, kept where the decisions are made (accept/refuse,
 * connect success/failure, call start/end) and read by the admin endpoint. No globals: a stats
 * object hangs off each proxy context. Every hook takes a NULL stats (counts nothing). */
#ifndef ML_CORE_STATS_H
#define ML_CORE_STATS_H

#include "core/stats-t.h"

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
/* Another reference (for a call that counts where it started, a listener, a balance). NULL is
 * passed through. */
struct ml_stats *ml_stats_ref(struct ml_stats *st);
/* Drops a reference; the last one frees st. NULL is a no-op. */
void ml_stats_free(struct ml_stats *st);

void ml_stats_downstream(struct ml_stats *st, int listener, enum ml_stats_down_event ev);
void ml_stats_upstream(struct ml_stats *st, int cluster, int endpoint, enum ml_stats_up_event ev);
void ml_stats_cluster(struct ml_stats *st, int cluster, enum ml_stats_cluster_event ev);
/* A request-policy event of a call on route (-1: none; ignored). */
void ml_stats_route(struct ml_stats *st, int route, enum ml_stats_route_event ev);

/* A call starts on listener: c is reset to it and counted active. */
void ml_stats_call_begin(struct ml_stats *st, struct ml_stats_call *c, int listener);
/* The call was routed (cluster may be -1: it never got one). */
void ml_stats_call_route(struct ml_stats *st, struct ml_stats_call *c, int route, int cluster);
/* The call got an endpoint of its cluster. */
void ml_stats_call_endpoint(struct ml_stats *st, struct ml_stats_call *c, int endpoint);
/* The call ended: grpc_status 0..16, or -1 for none. Counted everywhere c says. */
void ml_stats_call_end(struct ml_stats *st, struct ml_stats_call *c, int grpc_status,
                       uint64_t duration_ms, uint64_t bytes_in, uint64_t bytes_out);

/* For the fleet's Status: calls ended since start (across hot applies), and of those the ones
 * that ended with a grpc-status other than 0 (OK). A NULL st gives 0 and 0. */
void ml_stats_totals(const struct ml_stats *st, uint64_t *calls_total, uint64_t *calls_failed);

/* The bucket bounds in ms (ML_STATS_N_BOUNDS of them). */
const uint32_t *ml_stats_bucket_bounds_ms(void);
void ml_stats_hist_add(struct ml_stats_hist *h, uint64_t ms);

/* Renders every counter as text ("name value" per line) or in Prometheus' text exposition
 * format 0.0.4 (names prefixed meshlet_) into out[0..cap). Returns the length (out is
 * NUL-terminated), or -ENOBUFS when cap is too small (out then holds a cut rendering). */
long ml_stats_render_text(const struct ml_stats *st, char *out, size_t cap);
long ml_stats_render_prometheus(const struct ml_stats *st, char *out, size_t cap);

#endif
