/* The load-balancing policy interface: a cluster picks a host for each attempt of a call through
 * the policy its lb = names. How to add one: balance/README.md. */
#ifndef ML_BALANCE_LB_H
#define ML_BALANCE_LB_H

#include "balance/lb-t.h"
#include "config/snapshot-t.h"

#include <stdbool.h>
#include <stdint.h>

struct ml_host;

/* The policy of lb = which; NULL: none is built for it yet (the config check refuses it). */
const struct ml_lb_ops *ml_lb_ops_for(enum ml_cfg_lb which);

/* What a policy reads of its cluster. Hosts are numbered as the cluster's endpoints. A dns
 * cluster's numbers have gaps (ml_lb_host NULL, never usable) and change with its answers: the
 * policy is then freed and initialised again over the new set. */
uint32_t ml_lb_n_hosts(const struct ml_lb *lb);
struct ml_host *ml_lb_host(const struct ml_lb *lb, uint32_t host);
uint32_t ml_lb_weight(const struct ml_lb *lb, uint32_t host); /* weight=, 1..128 */
/* Healthy, not ejected, not draining (balance/host.h). */
bool ml_lb_usable(const struct ml_lb *lb, uint32_t host);
/* usable and not in ctx->tried: what a pick may return. */
bool ml_lb_eligible(const struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx, uint32_t host);

/* The tried set. */
static inline void ml_lb_tried_add(struct ml_lb_tried *t, uint32_t host)
{
    if (host < ML_LB_HOSTS_MAX) {
        t->bits[host / 32] |= 1u << (host % 32);
    }
}
static inline bool ml_lb_tried_has(const struct ml_lb_tried *t, uint32_t host)
{
    return host < ML_LB_HOSTS_MAX && (t->bits[host / 32] & (1u << (host % 32))) != 0;
}

/* The policies (one file each). */
extern const struct ml_lb_ops ml_lb_round_robin;
extern const struct ml_lb_ops ml_lb_random;
extern const struct ml_lb_ops ml_lb_least_request;
extern const struct ml_lb_ops ml_lb_ring_hash;
extern const struct ml_lb_ops ml_lb_maglev;

#endif
