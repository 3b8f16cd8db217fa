/* Admin GET /clusters: every cluster in force and each of its hosts (balance/host.h) with its
 * health, ejection state, active and pending calls, calls, failures, connect backoff and weight.
 * Text by default; JSON with ?format=json. */
#ifndef ML_ADMIN_CLUSTERS_H
#define ML_ADMIN_CLUSTERS_H

#include <stdbool.h>

struct ml_proxy;

/* The largest /clusters body: about 400 bytes of JSON per endpoint, room for 64 clusters of 128
 * endpoints (the schema's bound on endpoints per cluster). */
#define ML_ADMIN_CLUSTERS_MAX_BYTES (4 * 1024 * 1024)

/* The body in *body (ml_malloc'd, NUL-terminated; the caller frees it): its length; -ENOENT when
 * no configuration is applied, -ENOBUFS over ML_ADMIN_CLUSTERS_MAX_BYTES, -ENOMEM. */
long ml_admin_clusters(const struct ml_proxy *proxy, bool json, char **body);
/* The same over the balances of n workers ([node] workers): worker 0's b[0] names the clusters
 * and hosts, the others' counts for the same names are added (their pools and checks are their
 * own). The caller keeps b[1..n) alive meanwhile (node/workers.c). */
struct ml_balance;
long ml_admin_clusters_sum(struct ml_balance *const *b, unsigned int n, bool json, char **body);

#endif
