/* The resolver of balance/balance_int.h in a build without CONFIG_ML_DNS (compiled instead of
 * balance/dns.c, CMakeLists.txt). The config check refuses cluster dns = in such a build, so
 * balance.c never asks for a resolver; should it, the cluster cannot be built (an error, never a
 * cluster without hosts that looks fine). */
#include "balance/balance_int.h"

#include <errno.h>
#include <stddef.h>

int ml_dns_new(struct ml_cluster *cl)
{
    return -EINVAL;
}

void ml_dns_start(struct ml_dns *d)
{
}

void ml_dns_free(struct ml_dns *d)
{
}

void ml_dns_move(struct ml_cluster *from, struct ml_cluster *to)
{
}
