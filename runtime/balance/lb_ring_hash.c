/* lb = ring_hash: consistent hashing on a ring (Karger et al.; ketama, Envoy's ring_hash). Each
 * host puts points on a 32-bit ring, ML_LB_RING_POINTS_PER_HOST for the heaviest weight and in
 * proportion for the others, each point the hash of its address and its number; a call's key
 * (hash =) hashes to a place on the ring and goes to the host of the next point clockwise. A
 * host's points depend on its address and weight only, not on the other hosts, so when a hot
 * apply removes one of N hosts only the keys of its arcs move (about 1/N) and every other key
 * keeps its host. A host the pick may not take (unusable, tried) is passed over for the next
 * point's host: the ring needs no rebuild when usability changes. A call without a key gets a
 * host drawn by weight (lb = random). */
#include "balance/lb.h"

#include "balance/lb_hash.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdlib.h>

/* Points of a host of the cluster's largest weight (each host at least one): 256 keeps a host's
 * share of the keys within several percent of its weight's; the ring takes 8 bytes a point, at
 * most 256 KiB for a cluster of ML_LB_HOSTS_MAX equal hosts, 6 KiB for three. Fixed per host
 * (not a ring size shared out) so that removing a host leaves the others' points in place. */
#define ML_LB_RING_POINTS_PER_HOST 256

struct ring_point {
    uint32_t hash; /* the top half of ml_lb_hash: collisions stay rare at 32 Ki points */
    uint32_t host;
};

struct ring {
    uint32_t n; /* points */
    struct ring_point points[];
};

static int by_hash(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;

    if (x->hash != y->hash) {
        return x->hash < y->hash ? -1 : 1;
    }
    return x->host < y->host ? -1 : x->host > y->host; /* same place: a stable order */
}

/* Host h's points: ML_LB_RING_POINTS_PER_HOST × its weight / the largest, rounded, at least 1. */
static uint32_t points_of(struct ml_lb *lb, uint32_t h, uint32_t max_weight)
{
    uint64_t p =
        (ml_lb_weight(lb, h) * (uint64_t)ML_LB_RING_POINTS_PER_HOST + max_weight / 2) / max_weight;

    return p > 0 ? (uint32_t)p : 1;
}

static int ring_init(struct ml_lb *lb)
{
    uint32_t n = ml_lb_n_hosts(lb), total = 0, weights = 0;
    struct ring *r;

    for (uint32_t h = 0; h < n; h++) {
        weights = ml_lb_weight(lb, h) > weights ? ml_lb_weight(lb, h) : weights;
    }
    for (uint32_t h = 0; h < n; h++) {
        total += points_of(lb, h, weights);
    }
    if ((r = ml_malloc(sizeof(*r) + total * sizeof(r->points[0]))) == NULL) {
        return -ENOMEM;
    }
    r->n = 0;
    for (uint32_t h = 0; h < n; h++) {
        uint32_t k = points_of(lb, h, weights);

        for (uint32_t i = 0; i < k; i++) {
            r->points[r->n++] = (struct ring_point){(uint32_t)(ml_lb_hash_host(lb, h, i) >> 32), h};
        }
    }
    qsort(r->points, r->n, sizeof(r->points[0]), by_hash);
    lb->priv = r;
    return 0;
}

/* The first point at or after hash (wrapping to the first point). */
static uint32_t first_at(const struct ring *r, uint32_t hash)
{
    uint32_t lo = 0, hi = r->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (r->points[mid].hash < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < r->n ? lo : 0;
}

static int ring_pick(struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx)
{
    const struct ring *r = lb->priv;
    uint32_t at;

    if (ctx->hash_key.n == 0 || r->n == 0) {
        return ml_lb_random.pick(lb, ctx);
    }
    at = first_at(r, (uint32_t)(ml_lb_hash(ctx->hash_key.p, ctx->hash_key.n, 0) >> 32));
    /* clockwise to the first host the pick may take; once round the ring at most */
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t h = r->points[(at + i) % r->n].host;

        if (ml_lb_eligible(lb, ctx, h)) {
            return (int)h;
        }
    }
    return -ENOENT;
}

static void ring_free(struct ml_lb *lb)
{
    ml_free(lb->priv);
}

const struct ml_lb_ops ml_lb_ring_hash = {
    .name = "ring_hash",
    .init = ring_init,
    .pick = ring_pick,
    .free = ring_free,
};
