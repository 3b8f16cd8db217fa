/* Passive outlier detection: a host whose attempts fail outlier_errors times in a row
 * (ml_attempt_failed: unreachable, reset, UNAVAILABLE and the like, 5xx) is ejected
 * (ML_HOST_EJECTED: no picks) for outlier_ejection × the times it was ejected, and comes back by
 * itself when that time is over (a timer). Never more than outlier_max_percent of a cluster's
 * hosts are ejected at once: past that a failing host stays in, since a cluster that ejects
 * everything serves nobody. The limits are those of the cluster that owns the host (the newest
 * balance that has it). */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "balance/host.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/timer.h"

#include <stdint.h>

/* The longest one ejection lasts, however often the host was ejected before: the schema's
 * bound on outlier_ejection, so a flapping host is retried at least this often. */
#define ML_OUTLIER_EJECTION_MAX_MS (60u * 60u * 1000u)

/* outlier_max_percent is kept in parts per million. */
#define PPM 1000000u

static void count(struct ml_host *h, enum ml_stats_up_event ev)
{
    struct ml_pool_slot *owner = ml_pool_owner(h->pool);

    ml_stats_upstream(owner->cluster->balance->stats, ml_cluster_index(owner->cluster),
                      (int)owner->endpoint, ev);
}

static void on_ejection_over(void *user)
{
    struct ml_host *h = user;

    h->outlier.consecutive_failures = 0;
    if (!ml_list_empty(&h->pool->slots)) {
        ML_LOG_INF("cluster %s: endpoint %s: ejection over, taking calls again",
                   ml_pool_cluster(h->pool)->cfg->name, ml_host_addr_text(h));
        count(h, ML_STATS_UP_RETURNED);
    }
    ml_host_state_set(h, ML_HOST_EJECTED, false);
}

/* Hosts of cl (*n_hosts), and of those the ones ejected now. */
static uint32_t n_ejected(const struct ml_cluster *cl, uint32_t *n_hosts)
{
    uint32_t n = 0;

    *n_hosts = 0;
    for (uint32_t i = 0; i < cl->n_slots; i++) {
        const struct ml_pool *p = cl->slots[i].pool; /* NULL: a free slot of a dns cluster */

        if (p != NULL) {
            ++*n_hosts;
            n += (p->host->state & ML_HOST_EJECTED) != 0;
        }
    }
    return n;
}

static void eject(struct ml_host *h, const struct ml_cluster *cl)
{
    const struct ml_cfg_cluster *cfg = cl->cfg;
    uint32_t n_hosts, out = n_ejected(cl, &n_hosts);
    uint64_t ms;

    if ((uint64_t)(out + 1) * PPM > (uint64_t)cfg->outlier_max_ppm * n_hosts) {
        ML_LOG_WRN("cluster %s: endpoint %s failed %u times in a row but stays in: "
                   "outlier_max_percent (%u%%) of the endpoints are ejected already",
                   cfg->name, ml_host_addr_text(h), h->outlier.consecutive_failures,
                   cfg->outlier_max_ppm / (PPM / 100));
        return;
    }
    if (h->outlier.timer == NULL &&
        (h->outlier.timer = ml_timer_new(h->loop, on_ejection_over, h)) == NULL) {
        ML_LOG_WRN("cluster %s: endpoint %s: out of memory for its ejection timer: not ejected",
                   cfg->name, ml_host_addr_text(h));
        return;
    }
    h->outlier.n_ejections++;
    h->outlier.ejections_total++;
    ms = (uint64_t)cfg->outlier_ejection_ms * h->outlier.n_ejections;
    if (ms > ML_OUTLIER_EJECTION_MAX_MS) {
        ms = ML_OUTLIER_EJECTION_MAX_MS;
    }
    h->outlier.ejected_until_ms = ml_time_now_ms() + ms;
    ml_timer_arm(h->outlier.timer, (uint32_t)ms);
    ML_LOG_WRN("cluster %s: endpoint %s ejected for %llu ms after %u failures in a row "
               "(ejection %u)",
               cfg->name, ml_host_addr_text(h), (unsigned long long)ms,
               h->outlier.consecutive_failures, h->outlier.n_ejections);
    count(h, ML_STATS_UP_EJECTED);
    ml_host_state_set(h, ML_HOST_EJECTED, true);
}

void ml_outlier_attempt_end(struct ml_host *h, const struct ml_attempt_outcome *o, bool failed)
{
    const struct ml_cluster *cl;
    uint64_t now;

    if (ml_list_empty(&h->pool->slots)) {
        return; /* no balance has it any more: it is being freed */
    }
    cl = ml_pool_cluster(h->pool);
    if (cl->cfg->outlier_errors == 0) {
        return;
    }
    if (!failed) {
        if (o->end != ML_ATTEMPT_RESPONDED) {
            return; /* never reached it, refused, cancelled: says nothing of the host */
        }
        h->outlier.consecutive_failures = 0;
        /* Back and serving for as long as its last ejection lasted: the next ejection starts
         * from outlier_ejection again. */
        now = ml_time_now_ms();
        if (h->outlier.n_ejections > 0 && !(h->state & ML_HOST_EJECTED) &&
            now >= h->outlier.ejected_until_ms +
                       (uint64_t)cl->cfg->outlier_ejection_ms * h->outlier.n_ejections) {
            h->outlier.n_ejections = 0;
        }
        return;
    }
    if (h->state & ML_HOST_EJECTED) {
        return; /* attempts picked before the ejection ending now */
    }
    if (++h->outlier.consecutive_failures >= cl->cfg->outlier_errors) {
        eject(h, cl);
    }
}

void ml_outlier_host_free(struct ml_host *h)
{
    ml_timer_free(h->outlier.timer);
    h->outlier.timer = NULL;
}
