/* balance/host.h: the host object and its state changes. */
#include "balance/host.h"

#include "balance/balance.h"
#include "balance/balance_int.h"
#include "balance/health.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/stats.h"
#include "grpc/status-t.h"

#include <stddef.h>

struct ml_host *ml_host_new(struct ml_loop *loop, struct ml_pool *pool)
{
    struct ml_host *h = ml_calloc(1, sizeof(*h));

    if (h == NULL) {
        return NULL;
    }
    h->refs = 1;
    h->loop = loop;
    h->pool = pool;
    pool->host = h;
    return h;
}

struct ml_host *ml_host_ref(struct ml_host *h)
{
    h->refs++;
    return h;
}

void ml_host_unref(struct ml_host *h)
{
    if (h == NULL || --h->refs > 0) {
        return;
    }
    ml_outlier_host_free(h);
    ml_host_health_stop(h);
    ml_pool_free(h->pool, h->loop);
    ml_free(h);
}

const char *ml_host_addr_text(const struct ml_host *h)
{
    return h->pool->addr_text;
}

void ml_host_state_set(struct ml_host *h, unsigned bits, bool on)
{
    bool was = ml_host_usable(h);
    unsigned before = h->state;
    struct ml_list *n;

    h->state = on ? h->state | bits : h->state & ~bits;
    if ((before ^ h->state) & ML_HOST_UNHEALTHY && !ml_list_empty(&h->pool->slots)) {
        struct ml_pool_slot *owner = ml_pool_owner(h->pool);

        /* the per-endpoint health gauge, wherever the health checks set it from */
        ml_stats_upstream(
            owner->cluster->balance->stats, ml_cluster_index(owner->cluster), (int)owner->endpoint,
            h->state & ML_HOST_UNHEALTHY ? ML_STATS_UP_UNHEALTHY : ML_STATS_UP_HEALTHY);
    }
    if (was == ml_host_usable(h)) {
        return;
    }
    /* Every cluster that has the host (old and new balance during a hot apply). */
    for (n = h->pool->slots.next; n != &h->pool->slots; n = n->next) {
        struct ml_pool_slot *s = ML_CONTAINER_OF(n, struct ml_pool_slot, node);
        struct ml_lb *lb = &s->cluster->lb;

        if (lb->ops != NULL && lb->ops->on_host_state != NULL) {
            lb->ops->on_host_state(lb, s->endpoint);
        }
    }
}

bool ml_attempt_failed(const struct ml_attempt_outcome *o)
{
    switch (o->end) {
    case ML_ATTEMPT_CONNECT_FAILED:
    case ML_ATTEMPT_RESET:
        return true;
    case ML_ATTEMPT_RESPONDED:
        return o->grpc_status == ML_GRPC_UNAVAILABLE || o->grpc_status == ML_GRPC_INTERNAL ||
               o->grpc_status == ML_GRPC_UNKNOWN || o->grpc_status == ML_GRPC_DATA_LOSS ||
               o->http_status >= 500;
    case ML_ATTEMPT_NOT_SENT:
    case ML_ATTEMPT_REFUSED:
    case ML_ATTEMPT_CANCELLED:
        return false;
    }
    return false;
}
