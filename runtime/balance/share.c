/* Fair shares of a cluster's stream slots between downstream connections.
 *
 * Why: upstream stream slots are few (max_connections x max_streams_per_connection per endpoint)
 * and a call holds one until its upstream stream ends. A client that opens many streams and reads
 * their responses slowly keeps its slots busy for as long as it likes; with nothing to stop it,
 * it takes them all and every other client's calls wait until they fail (UNAVAILABLE at
 * max_pending, or DEADLINE_EXCEEDED).
 *
 * The rule: one downstream connection may hold at most
 *     hold_max = max(1, min(capacity * max_share / 100, capacity / N))
 * of a cluster's slots, where capacity = min(max_requests, the sum over endpoints of
 * max_connections x streams per connection (max_streams_per_connection, or less when the
 * peer's SETTINGS say so)), N = the downstream connections that hold or wait for a slot of the
 * cluster right now, and max_share the cluster's percent (default 100: the limits of a single
 * client are max_requests and max_pending as configured). capacity / N splits the
 * slots evenly between the connections that want them; max_share keeps part of them free for a
 * connection that comes later even while one is alone: slots already taken cannot be taken back
 * (a stream is not cut because another client arrived), so the room must be left beforehand.
 * max_share = 100 gives a lone connection everything (a gateway with one client); 50 keeps half
 * of the pool for a newcomer. Past
 * hold_max a connection's calls wait in the pool's queue like any others, but are passed over
 * while it is over its share (others behind them go first); at most
 *     wait_max = max(1, min(max_pending * max_share / 100, max_pending / N))
 * of its calls wait, so it cannot fill max_pending either: past that its calls fail at once with
 * UNAVAILABLE naming the share.
 *
 * A share is kept only while it holds or waits: a map from tenant to counts, as a list per
 * cluster (a gateway has few downstream connections per cluster at a time; each lookup is a
 * walk over them). */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "core/alloc.h"
#include "core/list.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The stream slots of cl: what its endpoints' pools carry at most, never above max_requests. */
static uint32_t capacity(const struct ml_cluster *cl)
{
    uint64_t c = 0;

    for (uint32_t e = 0; e < cl->n_slots; e++) {
        const struct ml_pool *p = cl->slots[e].pool;

        if (p == NULL) {
            continue; /* a free slot of a dns cluster */
        }
        uint32_t per = p->conn_streams != 0 && p->conn_streams < cl->cfg->max_streams_per_connection
                           ? p->conn_streams
                           : cl->cfg->max_streams_per_connection;

        c += (uint64_t)cl->cfg->max_connections * per;
    }
    return c < cl->cfg->max_requests ? (uint32_t)c : cl->cfg->max_requests;
}

/* One connection's part of total: max(1, min(total * max_share / 100, total / N)). */
static uint32_t part(const struct ml_cluster *cl, uint32_t total)
{
    uint64_t by_share = (uint64_t)total * cl->cfg->max_share_percent / 100;
    uint32_t by_n = total / (cl->n_shares > 1 ? cl->n_shares : 1);
    uint64_t n = by_share < by_n ? by_share : by_n;

    return n > 0 ? (uint32_t)n : 1;
}

uint32_t ml_share_hold_max(const struct ml_cluster *cl)
{
    return part(cl, capacity(cl));
}

uint32_t ml_share_wait_max(const struct ml_cluster *cl)
{
    return part(cl, cl->cfg->max_pending);
}

bool ml_share_may_hold(const struct ml_balance_waiter *w)
{
    return w->share == NULL || w->share->n_held < ml_share_hold_max(w->share->cluster);
}

void ml_share_why(const struct ml_balance_waiter *w, char *why, size_t cap)
{
    const struct ml_cluster *cl = w->share->cluster;

    snprintf(why, cap,
             "cluster %s: this client connection holds %u stream slots, its fair share of %u "
             "(max_share %u%%), and %u of its calls wait already, its share of max_pending (%u)",
             cl->cfg->name, w->share->n_held, ml_share_hold_max(cl), cl->cfg->max_share_percent,
             w->share->n_waiting, cl->cfg->max_pending);
}

int ml_share_join(struct ml_cluster *cl, struct ml_balance_waiter *w)
{
    struct ml_share *sh;

    if (w->tenant == NULL || w->share != NULL) {
        return 0;
    }
    for (struct ml_list *n = ml_list_first(&cl->shares); n != NULL;
         n = ml_list_next(&cl->shares, n)) {
        sh = ML_CONTAINER_OF(n, struct ml_share, node);
        if (sh->tenant == w->tenant) {
            w->share = sh;
            return 0;
        }
    }
    if ((sh = cl->spare_share) != NULL) {
        cl->spare_share = NULL;
        memset(sh, 0, sizeof(*sh));
    } else if ((sh = ml_calloc(1, sizeof(*sh))) == NULL) {
        return -ENOMEM;
    }
    sh->tenant = w->tenant;
    sh->cluster = cl;
    ml_list_add_tail(&cl->shares, &sh->node);
    cl->n_shares++;
    w->share = sh;
    return 0;
}

/* The limits of cl's shares changed: waiters they held back may go now. */
static void kick(struct ml_cluster *cl)
{
    for (uint32_t e = 0; e < cl->n_slots; e++) {
        if (cl->slots[e].pool != NULL && cl->slots[e].pool->n_waiting > 0) {
            ml_pool_dispatch_later(cl->slots[e].pool);
        }
    }
}

void ml_share_settle(struct ml_balance_waiter *w)
{
    struct ml_share *sh = w->share;
    struct ml_cluster *cl;

    if (sh == NULL || w->holding || w->pool != NULL) {
        return;
    }
    w->share = NULL;
    if (sh->n_held == 0 && sh->n_waiting == 0) {
        cl = sh->cluster;
        ml_list_remove(&sh->node);
        cl->n_shares--;
        if (cl->spare_share == NULL) {
            cl->spare_share = sh;
        } else {
            ml_free(sh);
        }
        kick(cl); /* one connection fewer: the others' share grew */
    }
}

void ml_share_hold(struct ml_balance_waiter *w)
{
    if (w->share != NULL) {
        w->share->n_held++;
        w->holding = true;
    }
}

void ml_balance_waiter_release(struct ml_balance_waiter *w)
{
    struct ml_cluster *cl;

    if (!w->holding) {
        return;
    }
    cl = w->share->cluster;
    w->share->n_held--;
    w->holding = false;
    ml_share_settle(w);
    kick(cl); /* below its share again: its waiters may go */
}
