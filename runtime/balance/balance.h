/* Upstream side of the proxy: per cluster, its LB policy (balance/lb.h) picks a host for every
 * attempt of a call, and per host (balance/host.h) a pool of HTTP/2 connections shared by many
 * calls. A connection carries up to min(peer's SETTINGS_MAX_CONCURRENT_STREAMS,
 * max_streams_per_connection) streams; another is opened only when those are full, up to
 * max_connections per endpoint; beyond that calls wait (max_pending per cluster), and max_requests
 * caps the active calls of a cluster. One downstream connection takes at most its fair share of a
 * cluster's slots and queue (share.c, max_share). */
#ifndef ML_BALANCE_BALANCE_H
#define ML_BALANCE_BALANCE_H

#include "balance/balance-t.h"
#include "balance/lb-t.h"
#include "config/snapshot-t.h"
#include "core/loop-t.h"

#include <stddef.h>
#include <stdint.h>

/* The clusters of snap (borrowed: it must outlive the balance). conn_ids: the counter that numbers
 * connections for logs, shared with the listeners. 0 and *out; -ENOMEM. */
int ml_balance_new(struct ml_loop *loop, const struct ml_snapshot *snap, uint32_t *conn_ids,
                   struct ml_balance **out);
/* Closes every upstream connection of pools no other balance shares (the owners of their
 * streams hear on_close) and frees b. No call of b may be waiting any more. NULL is a no-op. */
void ml_balance_free(struct ml_balance *b);

/* Hot apply, step one: the clusters of next (borrowed: it must outlive the balance), for the
 * moment a commit replaces cur. An endpoint of a cluster that cur has too (same cluster name,
 * same address) will share cur's pool, connections and waiting calls; nothing that runs changes
 * until ml_balance_commit, and ml_balance_free undoes it. 0 and *out; -ENOMEM. */
int ml_balance_prepare(struct ml_balance *cur, const struct ml_snapshot *next,
                       struct ml_balance **out);
/* Step two: next (prepared from prev) takes over the shared pools (its limits apply to them from
 * now on); prev's calls go on where they are, but prev takes no new ones: its pools that next
 * does not have close their connections once their streams end. Once no call of prev is left,
 * on_idle(user) runs once, from the end of an event (never from inside a call of this API); the
 * caller then frees prev. */
void ml_balance_commit(struct ml_balance *next, struct ml_balance *prev,
                       ml_balance_idle_fn *on_idle, void *user);

/* Where the balance counts upstream connections (core/stats.h); NULL (the default): nowhere.
 * b takes a reference on stats (ml_stats_ref) and drops it when freed or set again. */
struct ml_stats;
void ml_balance_set_stats(struct ml_balance *b, struct ml_stats *stats);

/* The endpoints of every cluster of b (*total) and of those the ones not taken out by active
 * health checks (*healthy; balance/health.h): the fleet Status counts. */
void ml_balance_endpoints(const struct ml_balance *b, uint32_t *healthy, uint32_t *total);

/* The cluster of snap->clusters[index]. */
struct ml_cluster *ml_balance_cluster(struct ml_balance *b, int index);
const char *ml_cluster_name(const struct ml_cluster *cl);
/* cl's index into snap->clusters. */
int ml_cluster_index(const struct ml_cluster *cl);
/* "127.0.0.1:50051" of endpoint (an index into cl's endpoints), or NULL for a bad index. */
const char *ml_cluster_endpoint_text(const struct ml_cluster *cl, int endpoint);

/* A call starts on cl: 0, or -EBUSY when max_requests calls are active (why says so). Each 0
 * is paired with one ml_cluster_call_end(). */
int ml_cluster_call_begin(struct ml_cluster *cl, char *why, size_t cap);
void ml_cluster_call_end(struct ml_cluster *cl);
/* A retry of a call starts on cl: 0, or -EBUSY when max_retries retries are in flight (why says
 * so: then the call is not retried; counted in the cluster's circuit-breaker stats). Each 0 is
 * paired with one ml_cluster_retry_end(), when the retried attempt is over. */
int ml_cluster_retry_begin(struct ml_cluster *cl, char *why, size_t cap);
void ml_cluster_retry_end(struct ml_cluster *cl);

/* What admin /clusters shows of one host of a cluster (a copy, valid until the next event). */
struct ml_host_view {
    const char *addr;              /* "127.0.0.1:50051" (borrowed from the host) */
    uint32_t weight;               /* the endpoint's weight in this cluster */
    unsigned state;                /* enum ml_host_state_bit (balance/host.h); 0: usable */
    uint64_t ejected_ms_left;      /* while ejected: ms until it comes back */
    uint64_t ejections;            /* times ejected */
    uint32_t consecutive_failures; /* towards outlier_errors */
    uint32_t active;               /* attempts in progress */
    uint32_t pending;              /* calls waiting in its pool for a stream slot */
    uint32_t connections;          /* its pool's connections, connecting ones included */
    uint64_t calls;                /* attempts picked */
    uint64_t failures;             /* attempts that failed */
    uint32_t connect_failures;     /* connects failed in a row */
    uint64_t backoff_ms_left;      /* ms before the next connect may start; 0: may now */
};
uint32_t ml_balance_n_clusters(const struct ml_balance *b);
/* Host numbers of cl run 0..ml_cluster_n_hosts(cl); a dns cluster's may have gaps, for which
 * ml_cluster_host_view says false. */
uint32_t ml_cluster_n_hosts(const struct ml_cluster *cl);
bool ml_cluster_host_view(const struct ml_cluster *cl, uint32_t i, struct ml_host_view *v);
/* Calls active on cl (max_requests), and waiting for a stream slot (max_pending). */
uint32_t ml_cluster_n_active(const struct ml_cluster *cl);
uint32_t ml_cluster_n_pending(const struct ml_cluster *cl);

/* An attempt of a call: the cluster's policy picks a usable host (ctx: the call's hash key, the
 * hosts it tried, a random source; NULL: none of those, the balance's own random source), and
 * the host's pool a connection with a free stream slot, within w->tenant's fair share of the
 * cluster (balance/share.c). A host the call tried is picked again only when no other usable
 * one is left. From the choice on, w->endpoint and w->host say which host (w holds a
 * reference, counted in the host's active calls) until ml_cluster_attempt_end; when this
 * returns an error the attempt has ended already (ML_ATTEMPT_NOT_SENT).
 * 0 and *conn: open the stream now (before returning to the loop);
 * -EINPROGRESS: w waits; exactly one of w->on_ready / w->on_fail runs later, never from inside
 *   this call, unless ml_balance_waiter_cancel(w) comes first;
 * -EBUSY (max_pending calls wait already, or w->tenant's share of them), -ENOENT (no
 *   endpoint, or none usable), -ENOMEM: why says so and no callback runs. */
int ml_cluster_pick(struct ml_cluster *cl, struct ml_balance_waiter *w,
                    const struct ml_lb_pick_ctx *ctx, struct ml_h2_conn **conn, char *why,
                    size_t cap);
/* The attempt w holds on a host is over, as o says (o->latency_ms is filled in here): the
 * host's counters and the policy (on_drop) hear it, and w's reference on the host goes. Each
 * 0 or -EINPROGRESS of ml_cluster_pick is paired with one call, after on_fail, after a cancel,
 * or once the upstream stream closed. A no-op when w holds no host. */
void ml_cluster_attempt_end(struct ml_cluster *cl, struct ml_balance_waiter *w,
                            const struct ml_attempt_outcome *o);
/* w stops waiting; its callbacks will not run. A no-op when it is not waiting. */
void ml_balance_waiter_cancel(struct ml_balance_waiter *w);
/* The stream w opened on the connection ml_cluster_pick or on_ready gave it is over (or was
 * never opened): its slot no longer counts in w->tenant's share. A no-op when w holds none.
 * Each 0 from ml_cluster_pick and each on_ready is paired with one release. */
void ml_balance_waiter_release(struct ml_balance_waiter *w);

#endif
