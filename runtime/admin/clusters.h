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

#endif
