/* balance/lb.h: the table of policies by lb =, and what a policy may read of its cluster. */
#include "balance/lb.h"

#include "balance/balance_int.h"
#include "balance/host.h"
#include "core/kconfig.h"

#include <stddef.h>

/* A policy not in this table is refused by the config check (config/unimplemented.c): until its
 * file exists, or when Kconfig leaves it out (ML_LB_RING_HASH, ML_LB_MAGLEV: their files are then
 * not compiled, CMakeLists.txt). */
/* One entry a line: clang-format cannot tell that ML_IF_ENABLED ends with a comma. */
/* clang-format off */
static const struct ml_lb_ops *const policies[] = {
    [ML_CFG_LB_ROUND_ROBIN] = &ml_lb_round_robin,
    [ML_CFG_LB_RANDOM] = &ml_lb_random,
    [ML_CFG_LB_LEAST_REQUEST] = &ml_lb_least_request,
    ML_IF_ENABLED(CONFIG_ML_LB_RING_HASH, ([ML_CFG_LB_RING_HASH] = &ml_lb_ring_hash,))
    ML_IF_ENABLED(CONFIG_ML_LB_MAGLEV, ([ML_CFG_LB_MAGLEV] = &ml_lb_maglev,))
};
/* clang-format on */

const struct ml_lb_ops *ml_lb_ops_for(enum ml_cfg_lb which)
{
    if ((size_t)which >= sizeof(policies) / sizeof(policies[0])) {
        return NULL;
    }
    return policies[which];
}

uint32_t ml_lb_n_hosts(const struct ml_lb *lb)
{
    return lb->cluster->n_slots;
}

struct ml_host *ml_lb_host(const struct ml_lb *lb, uint32_t host)
{
    const struct ml_pool *p = lb->cluster->slots[host].pool;

    return p != NULL ? p->host : NULL; /* NULL: a free slot of a dns cluster */
}

uint32_t ml_lb_weight(const struct ml_lb *lb, uint32_t host)
{
    const struct ml_cfg_cluster *cfg = lb->cluster->cfg;

    return host < cfg->n_endpoints ? cfg->endpoints[host].weight : 1; /* dns: all alike */
}

bool ml_lb_usable(const struct ml_lb *lb, uint32_t host)
{
    const struct ml_host *h = ml_lb_host(lb, host);

    return h != NULL && ml_host_usable(h);
}

bool ml_lb_eligible(const struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx, uint32_t host)
{
    return ml_lb_usable(lb, host) && (ctx->tried == NULL || !ml_lb_tried_has(ctx->tried, host));
}
