/* [node] workers = N: N event loops, one thread each, each with its own proxy (listeners bound
 * with SO_REUSEPORT, upstream pools, hosts, health checks, counters), sharing only the config
 * snapshot (refcounted atomically). Worker 0 is the node's own loop and proxy: it keeps the
 * admin endpoint, the fleet client, the signals and sd_notify (runtime/README.md "Workers").
 * This object holds workers 1..N-1; worker 0 drives them. With N = 1 there is none (NULL), and
 * every function below is a no-op on NULL. */
#ifndef ML_NODE_WORKERS_H
#define ML_NODE_WORKERS_H

#include <stddef.h>
#include <stdint.h>

struct ml_loop;
struct ml_proxy;
struct ml_snapshot;
struct ml_stats;
struct ml_workers;

/* Makes workers 1..n-1 on this thread, one after another: a loop each and the data plane of
 * snap on it (its listeners bound now). 0 and *out (NULL for n <= 1); -errno with why (a bind:
 * exit 3), and nothing is left. The threads start with ml_workers_start. */
int ml_workers_new(struct ml_snapshot *snap, unsigned int n, char *why, size_t cap,
                   struct ml_workers **out);
/* Starts a thread per worker, running its loop (SIGINT, SIGTERM, SIGHUP and SIGUSR1 blocked
 * there: worker 0 takes them). 0 or -errno (nothing runs then). */
int ml_workers_start(struct ml_workers *ws);
/* Workers including worker 0. */
unsigned int ml_workers_count(const struct ml_workers *ws);

/* Hot apply on workers 1..n-1, each on its own loop; these return once every worker did it
 * (prepare and commit are CPU work, binds and cluster builds, so worker 0 waits for them
 * instead of carrying a cross-loop state through every stop path). prepare: 0, or the first
 * failure with why, and then the workers that prepared are aborted. */
int ml_workers_prepare(struct ml_workers *ws, struct ml_snapshot *next, char *why, size_t cap);
void ml_workers_abort(struct ml_workers *ws);
void ml_workers_commit(struct ml_workers *ws);

/* SIGTERM: each worker drains like worker 0 (GOAWAY, calls finish within timeout_ms) and stops
 * its loop when done. Does not wait. */
void ml_workers_drain(struct ml_workers *ws, uint32_t timeout_ms);
/* Waits until every worker's loop stopped, or until a second SIGINT/SIGTERM. */
void ml_workers_wait(struct ml_workers *ws);
/* Stops what still runs, joins the threads, frees every worker's proxy and loop. */
void ml_workers_free(struct ml_workers *ws);

/* What the admin endpoint and the fleet's Status show: a new table for worker 0's snapshot with
 * the counters of every worker summed (core/stats.h ml_stats_sum_add); NULL when out of memory.
 * worker 0's proxy is passed in (it is the node's). */
struct ml_stats *ml_workers_stats_sum(struct ml_workers *ws, struct ml_proxy *proxy0);
/* One worker's totals for the /stats worker rows (k < ml_workers_count). */
void ml_workers_totals(struct ml_workers *ws, struct ml_proxy *proxy0, unsigned int k,
                       uint64_t *cx_total, uint64_t *cx_active, uint64_t *calls_total);
/* GET /clusters with every worker's hosts summed (admin/clusters.h ml_admin_clusters_sum). */
long ml_workers_clusters(struct ml_workers *ws, struct ml_proxy *proxy0, int json, char **body);

#endif
