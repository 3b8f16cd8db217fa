/* Route matching: pure functions over a config snapshot (no I/O, no state). */
#ifndef ML_PROXY_ROUTE_H
#define ML_PROXY_ROUTE_H

#include "config/snapshot-t.h"
#include "core/slice-t.h"
#include "h2/hdrs-t.h"

#include <stdbool.h>
#include <stdint.h>

/* What route matching looks at in a request; everything borrowed. */
struct ml_route_request {
    struct ml_slice authority;     /* :authority (or Host), as sent: the port is stripped here */
    struct ml_slice path;          /* :path, as sent: the query string is ignored */
    const struct ml_h2_hdrs *hdrs; /* every field, for `header` matchers */
};

/* The first route of listener (index into snap->listeners), in file order, whose authority glob,
 * path or prefix and header matchers all match req: its index into snap->routes, or -ENOENT. A
 * header matcher matches when any field of that name (case-insensitive) has exactly the value
 * (or, without a value, when one is present). */
int ml_route_match(const struct ml_snapshot *snap, int listener,
                   const struct ml_route_request *req);

/* The cluster (index into snap->clusters) of route's weighted split for r, a uniformly random
 * 32-bit number: cluster i is picked with probability weight_i / sum of weights. */
int ml_route_pick_cluster(const struct ml_cfg_route *route, uint32_t r);

/* :authority without its port ("host:8080" → "host", "[::1]:8080" → "[::1]"). */
struct ml_slice ml_route_authority_host(struct ml_slice authority);

/* Glob match of s against pattern ('*' any run, '?' one byte), case-insensitive (host names). */
bool ml_route_glob(const char *pattern, struct ml_slice s);

#endif
