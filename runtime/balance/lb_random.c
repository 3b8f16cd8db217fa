/* lb = random: each pick independent, host i chosen with probability weight_i / (the weights of
 * the hosts the pick may take). No state: nothing to rebuild when a host changes. */
#include "balance/lb.h"

#include <errno.h>

static int random_pick(struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx)
{
    uint32_t n = ml_lb_n_hosts(lb), total = 0, r;

    for (uint32_t h = 0; h < n; h++) {
        total += ml_lb_eligible(lb, ctx, h) ? ml_lb_weight(lb, h) : 0;
    }
    if (total == 0) {
        return -ENOENT;
    }
    r = ml_rand_below(ctx->rand, total);
    for (uint32_t h = 0; h < n; h++) {
        uint32_t w = ml_lb_eligible(lb, ctx, h) ? ml_lb_weight(lb, h) : 0;

        if (r < w) {
            return (int)h;
        }
        r -= w;
    }
    return -ENOENT; /* not reached: r < total */
}

const struct ml_lb_ops ml_lb_random = {
    .name = "random",
    .pick = random_pick,
};
