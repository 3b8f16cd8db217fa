/* The counters of several workers ([node] workers > 1) as one table: what /stats, /stats.json
 * and /stats/prometheus show. Each worker counts in its own table, on its own thread, without
 * locks or atomic read-modify-writes; the sum reads them with relaxed atomic loads (a counter is
 * one aligned 64-bit word, written only by its worker) while they run. The reader makes sure a
 * part's table stays alive meanwhile (node/workers.c holds the worker's lock). */
#include "core/stats.h"

#include "config/snapshot-t.h"
#include "core/stats_int.h"

#include <stddef.h>
#include <string.h>

/* dst[i] += src[i] for the n 64-bit words from each record's first counter on. */
static void add_words(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
}

/* The words of a record from its first counter (past refs) to its end: all uint64_t. */
#define WORDS_FROM(type, first) ((sizeof(type) - offsetof(type, first)) / sizeof(uint64_t))
#define ADD_REC(type, first, dst, src)                                                             \
    add_words((uint64_t *)(void *)&(dst)->first, (const uint64_t *)(const void *)&(src)->first,    \
              WORDS_FROM(type, first))

_Static_assert((sizeof(struct stats_listener) - offsetof(struct stats_listener, cx_accepted)) %
                       sizeof(uint64_t) ==
                   0,
               "a listener's record is counters from cx_accepted on");
_Static_assert((sizeof(struct stats_endpoint) - offsetof(struct stats_endpoint, cx_opened)) %
                       sizeof(uint64_t) ==
                   0,
               "an endpoint's record is counters from cx_opened on");
_Static_assert((sizeof(struct stats_calls) - offsetof(struct stats_calls, calls)) %
                       sizeof(uint64_t) ==
                   0,
               "a calls record is counters from calls on");

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static int find_cluster(const struct ml_stats *part, const char *name)
{
    for (uint32_t i = 0; i < part->n_clusters; i++) {
        if (strcmp(part->snap->clusters[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void add_endpoints(struct ml_stats *sum, uint32_t c, const struct ml_stats *part, int pc)
{
    const struct ml_cfg_cluster *cl = &sum->snap->clusters[c];
    const struct ml_cfg_cluster *pcl = &part->snap->clusters[pc];

    for (uint32_t e = 0; e < sum->ep_counts[c]; e++) {
        struct stats_endpoint *d = sum->eps[sum->first_ep[c] + e].e;

        for (uint32_t pe = 0; pe < part->ep_counts[pc]; pe++) {
            const struct stats_endpoint *s = part->eps[part->first_ep[pc] + pe].e;
            uint64_t unhealthy = d->unhealthy, ejected = d->ejected;

            if (strcmp(cl->endpoints[e].addr.text, pcl->endpoints[pe].addr.text) != 0) {
                continue;
            }
            ADD_REC(struct stats_endpoint, cx_opened, d, s);
            /* each worker checks and ejects on its own: out on any of them is out (1), not
             * the number of workers that took it out */
            d->unhealthy = max_u64(unhealthy, __atomic_load_n(&s->unhealthy, __ATOMIC_RELAXED));
            d->ejected = max_u64(ejected, __atomic_load_n(&s->ejected, __ATOMIC_RELAXED));
            break;
        }
    }
}

static void add_authz(struct ml_stats *sum, const struct ml_stats *part)
{
    for (uint32_t i = 0; i < sum->n_authz; i++) {
        const struct ml_cfg_authz *az = &sum->snap->authz[i];
        uint32_t slots = sum->authz_first[i + 1] - sum->authz_first[i];

        for (uint32_t j = 0; j < part->n_authz; j++) {
            /* the same section with as many slots: the same rules (a hot apply that changed
             * them is mid-way; its counters start over anyway) */
            if (strcmp(part->snap->authz[j].name, az->name) != 0 ||
                part->authz_first[j + 1] - part->authz_first[j] != slots) {
                continue;
            }
            add_words(sum->authz_ctr[sum->authz_first[i]], part->authz_ctr[part->authz_first[j]],
                      (size_t)slots * 2);
            break;
        }
    }
}

void ml_stats_sum_add(struct ml_stats *sum, const struct ml_stats *part)
{
    uint64_t dns_hosts;

    if (sum == NULL || part == NULL) {
        return;
    }
    ADD_REC(struct stats_calls, calls, sum->all, part->all);
    for (uint32_t i = 0; i < sum->n_listeners; i++) {
        for (uint32_t j = 0; j < part->n_listeners; j++) {
            if (strcmp(part->snap->listeners[j].name, sum->snap->listeners[i].name) == 0) {
                ADD_REC(struct stats_listener, cx_accepted, sum->listeners[i], part->listeners[j]);
                break;
            }
        }
    }
    for (uint32_t i = 0; i < sum->n_routes; i++) {
        for (uint32_t j = 0; j < part->n_routes; j++) {
            if (strcmp(part->snap->routes[j].name, sum->snap->routes[i].name) == 0) {
                ADD_REC(struct stats_calls, calls, sum->routes[i], part->routes[j]);
                break;
            }
        }
    }
    for (uint32_t c = 0; c < sum->n_clusters; c++) {
        int pc = find_cluster(part, sum->snap->clusters[c].name);

        if (pc < 0) {
            continue;
        }
        dns_hosts = sum->clusters[c]->dns_hosts;
        ADD_REC(struct stats_calls, calls, sum->clusters[c], part->clusters[pc]);
        /* every worker resolves the same name: the hosts it found, not their sum */
        sum->clusters[c]->dns_hosts =
            max_u64(dns_hosts, __atomic_load_n(&part->clusters[pc]->dns_hosts, __ATOMIC_RELAXED));
        add_endpoints(sum, c, part, pc);
    }
    add_authz(sum, part);
}

void ml_stats_worker_totals(const struct ml_stats *st, uint64_t *cx_total, uint64_t *cx_active,
                            uint64_t *calls_total)
{
    *cx_total = *cx_active = *calls_total = 0;
    if (st == NULL) {
        return;
    }
    for (uint32_t i = 0; i < st->n_listeners; i++) {
        *cx_total += __atomic_load_n(&st->listeners[i]->cx_accepted, __ATOMIC_RELAXED);
        *cx_active += __atomic_load_n(&st->listeners[i]->cx_active, __ATOMIC_RELAXED);
    }
    *calls_total = __atomic_load_n(&st->all->calls.total, __ATOMIC_RELAXED);
}
