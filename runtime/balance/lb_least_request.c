/* lb = least_request: power of two choices. Two distinct hosts are drawn by weight, the one with
 * fewer active calls per unit of weight takes the call (the first drawn on a tie, so an idle
 * cluster is spread like lb = random). A slow host keeps its calls longer, so it loses more of
 * the draws; one draw of two is enough to avoid herding on the single least loaded host that
 * many proxies would all see. The active count is the host's (balance/host.h): it outlives a
 * hot apply, and it is the same for every cluster and balance that shares the host. */
#include "balance/lb.h"

#include "balance/host.h"

#include <errno.h>
#include <stdbool.h>

/* A host by weight among the eligible ones other than not (-1: none excluded); -ENOENT. */
static int draw(struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx, int not )
{
    uint32_t n = ml_lb_n_hosts(lb), total = 0, r;

    for (uint32_t h = 0; h < n; h++) {
        total += (int)h != not &&ml_lb_eligible(lb, ctx, h) ? ml_lb_weight(lb, h) : 0;
    }
    if (total == 0) {
        return -ENOENT;
    }
    r = ml_rand_below(ctx->rand, total);
    for (uint32_t h = 0; h < n; h++) {
        uint32_t w = (int)h != not &&ml_lb_eligible(lb, ctx, h) ? ml_lb_weight(lb, h) : 0;

        if (r < w) {
            return (int)h;
        }
        r -= w;
    }
    return -ENOENT; /* not reached: r < total */
}

static int lr_pick(struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx)
{
    int a = draw(lb, ctx, -1), b;
    uint64_t load_a, load_b;

    if (a < 0 || (b = draw(lb, ctx, a)) < 0) {
        return a; /* none, or only one host to choose from */
    }
    /* active/weight compared without division: a_active * b_weight vs b_active * a_weight */
    load_a = (uint64_t)ml_lb_host(lb, (uint32_t)a)->counters.active * ml_lb_weight(lb, (uint32_t)b);
    load_b = (uint64_t)ml_lb_host(lb, (uint32_t)b)->counters.active * ml_lb_weight(lb, (uint32_t)a);
    return load_b < load_a ? b : a;
}

const struct ml_lb_ops ml_lb_least_request = {
    .name = "least_request",
    .pick = lr_pick,
};
