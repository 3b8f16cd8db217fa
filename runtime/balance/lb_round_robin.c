/* lb = round_robin: smooth weighted round robin (nginx's algorithm). With equal weights it is
 * plain round robin in config order; host i gets weight_i / total of the picks, spread out
 * rather than in runs. Hosts a pick may not take (not usable, tried) sit that pick out: they
 * gain no weight and the others share their turn. */
#include "balance/lb.h"

#include "core/alloc.h"

#include <errno.h>
#include <stddef.h>

/* lb->priv: int64_t current[n_hosts], each host's current weight. */
static int rr_init(struct ml_lb *lb)
{
    uint32_t n = ml_lb_n_hosts(lb);

    return (lb->priv = ml_calloc(n > 0 ? n : 1, sizeof(int64_t))) != NULL ? 0 : -ENOMEM;
}

static int rr_pick(struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx)
{
    int64_t *current = lb->priv;
    uint32_t n = ml_lb_n_hosts(lb);
    int64_t total = 0;
    int best = -ENOENT;

    for (uint32_t h = 0; h < n; h++) {
        if (!ml_lb_eligible(lb, ctx, h)) {
            continue;
        }
        current[h] += ml_lb_weight(lb, h);
        total += ml_lb_weight(lb, h);
        if (best < 0 || current[h] > current[best]) {
            best = (int)h;
        }
    }
    if (best >= 0) {
        current[best] -= total;
    }
    return best;
}

static void rr_free(struct ml_lb *lb)
{
    ml_free(lb->priv);
}

const struct ml_lb_ops ml_lb_round_robin = {
    .name = "round_robin",
    .init = rr_init,
    .pick = rr_pick,
    .free = rr_free,
};
