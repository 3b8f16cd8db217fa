/* Active health checks (cluster health_check = tcp | grpc): each host of such a cluster is
 * checked every health_interval, within health_timeout; unhealthy_threshold failures in a row set
 * ML_HOST_UNHEALTHY (balance/host.h: policies stop picking it), healthy_threshold passes in a
 * row clear it. A host starts healthy: a new config or a restart does not refuse calls while
 * the first checks run. When no host of a cluster is healthy its calls fail UNAVAILABLE ("no
 * usable endpoint"): no panic mode that would send them to hosts known to fail.
 *
 * grpc sends grpc.health.v1.Health/Check (grpc/health.h) on a connection of the checker's own,
 * kept open between checks, not on the host's pool: a check must see the host, not the pool's
 * limits (a pool full at max_connections, max_pending or the fair share would fail checks of a
 * host that is fine, and a check must not take a call's stream slot). It costs one upstream
 * connection per grpc-checked host, from the upstream fd budget (core/fd_budget.h). A pass is
 * HTTP 200, grpc-status 0 and status SERVING; NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN, a
 * grpc-status (NOT_FOUND: the service is unknown), a reset, a lost connection or the timeout
 * fail. tcp passes when a connect succeeds (closed right away). */
#ifndef ML_BALANCE_HEALTH_H
#define ML_BALANCE_HEALTH_H

struct ml_balance;
struct ml_host;

/* Starts, reconfigures or stops the checks of every host that a cluster of b owns, as that
 * cluster's config says (after ml_balance_new, and for the new balance at a commit). A host
 * whose checks stop is healthy again. */
void ml_balance_health_sync(struct ml_balance *b);
/* Stops h's checks and frees the checker (its host is being freed). A no-op without one. */
void ml_host_health_stop(struct ml_host *h);

#endif
