#include "proxy/route.h"

#include "core/glob.h"

#include "h2/hdrs.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

struct ml_slice ml_route_authority_host(struct ml_slice a)
{
    if (a.n > 0 && a.p[0] == '[') {
        const uint8_t *close = memchr(a.p, ']', a.n);
        if (close != NULL) {
            a.n = (size_t)(close - a.p) + 1;
        }
        return a;
    }
    for (size_t i = a.n; i > 0; i--) {
        if (a.p[i - 1] == ':') {
            a.n = i - 1;
            break;
        }
        if (!isdigit(a.p[i - 1])) {
            break;
        }
    }
    return a;
}

bool ml_route_glob(const char *pattern, struct ml_slice s)
{
    /* "*" is a route's authority when the file says none (the default): any host, told without
     * walking it byte by byte (~150 instructions per call, every call on every route tried). */
    if (pattern[0] == '*' && pattern[1] == '\0') {
        return true;
    }
    return ml_glob_match(pattern, s, ML_GLOB_FOLD_CASE);
}

/* The path without its query string. */
static struct ml_slice path_only(struct ml_slice path)
{
    const uint8_t *q = memchr(path.p, '?', path.n);

    if (q != NULL) {
        path.n = (size_t)(q - path.p);
    }
    return path;
}

static bool header_matches(const struct ml_cfg_header_match *m, const struct ml_h2_hdrs *hdrs)
{
    size_t vlen = m->value != NULL ? strlen(m->value) : 0;

    for (int i = ml_h2_hdrs_find(hdrs, m->name, 0); i >= 0;
         i = ml_h2_hdrs_find(hdrs, m->name, (uint32_t)i + 1)) {
        struct ml_slice v = ml_h2_hdrs_value(hdrs, (uint32_t)i);

        if (m->value == NULL || (v.n == vlen && memcmp(v.p, m->value, vlen) == 0)) {
            return true;
        }
    }
    return false;
}

static bool route_matches(const struct ml_cfg_route *r, struct ml_slice host, struct ml_slice path,
                          const struct ml_h2_hdrs *hdrs)
{
    if (r->authority != NULL && !ml_route_glob(r->authority, host)) {
        return false;
    }
    if (r->path != NULL && (path.n != strlen(r->path) || memcmp(path.p, r->path, path.n) != 0)) {
        return false;
    }
    if (r->prefix != NULL &&
        (path.n < strlen(r->prefix) || memcmp(path.p, r->prefix, strlen(r->prefix)) != 0)) {
        return false;
    }
    for (uint32_t i = 0; i < r->n_headers; i++) {
        if (!header_matches(&r->headers[i], hdrs)) {
            return false;
        }
    }
    return true;
}

int ml_route_match(const struct ml_snapshot *snap, int listener, const struct ml_route_request *req)
{
    struct ml_slice host = ml_route_authority_host(req->authority);
    struct ml_slice path = path_only(req->path);

    for (uint32_t i = 0; i < snap->n_routes; i++) {
        const struct ml_cfg_route *r = &snap->routes[i];

        if (r->listener == listener && route_matches(r, host, path, req->hdrs)) {
            return (int)i;
        }
    }
    return -ENOENT;
}

int ml_route_pick_cluster(const struct ml_cfg_route *route, uint32_t r)
{
    uint64_t total = 0, x;

    for (uint32_t i = 0; i < route->n_split; i++) {
        total += route->split[i].weight;
    }
    x = ((uint64_t)r * total) >> 32; /* uniform in [0, total) without modulo bias */
    for (uint32_t i = 0; i < route->n_split; i++) {
        if (x < route->split[i].weight) {
            return route->split[i].cluster;
        }
        x -= route->split[i].weight;
    }
    return route->split[route->n_split - 1].cluster;
}
