/* lb = least_request: power of two choices. Two distinct hosts are drawn by weight, the one with
 * fewer active calls per unit of weight takes the call (the first drawn on a tie, so an idle
 * cluster is spread like lb = random). A slow host keeps its calls longer, so it loses more of
 * the draws; one draw of two is enough to avoid herding on the single least loaded host that
 * many proxies would all see. The active count is the host's (balance/host.h): it outlives a
 * hot apply, and it is the same for every cluster and balance that shares the host. */
#include "balance/lb.h"

#include "balance/host.h"

#include <errno.h>
#include <stdint.h>

/* The host r falls on in weights w[0..n) (r < their sum). */
static int at(const uint32_t *w, uint32_t n, uint32_t r)
{
    for (uint32_t h = 0; h < n; h++) {
        if (r < w[h]) {
            return (int)h;
        }
        r -= w[h];
    }
    return -ENOENT; /* not reached: r < the sum */
}

static int lr_pick(struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx)
{
    /* each host's weight if the pick may take it, else 0: one pass over the hosts */
    uint32_t w[ML_LB_HOSTS_MAX], n = ml_lb_n_hosts(lb), total = 0, wa;
    uint64_t load_a, load_b;
    int a, b;

    n = n < ML_LB_HOSTS_MAX ? n : ML_LB_HOSTS_MAX;
    for (uint32_t h = 0; h < n; h++) {
        w[h] = ml_lb_eligible(lb, ctx, h) ? ml_lb_weight(lb, h) : 0;
        total += w[h];
    }
    if (total == 0) {
        return -ENOENT;
    }
    a = at(w, n, ml_rand_below(ctx->rand, total));
    if (total == w[a]) {
        return a; /* the only host the pick may take */
    }
    /* the second, by weight among the others */
    wa = w[a];
    w[a] = 0;
    b = at(w, n, ml_rand_below(ctx->rand, total - wa));
    w[a] = wa;
    /* active/weight compared without division: a_active * b_weight vs b_active * a_weight */
    load_a = (uint64_t)ml_lb_host(lb, (uint32_t)a)->counters.active * w[b];
    load_b = (uint64_t)ml_lb_host(lb, (uint32_t)b)->counters.active * w[a];
    return load_b < load_a ? b : a;
}

const struct ml_lb_ops ml_lb_least_request = {
    .name = "least_request",
    .pick = lr_pick,
};
