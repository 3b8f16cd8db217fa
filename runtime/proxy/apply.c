/* Hot apply in the data plane: ml_proxy_prepare builds what the next snapshot needs beside what
 * runs (new binds, held; its clusters, sharing pools; its counters, sharing records), and
 * ml_proxy_commit switches in one step on the loop. Who owns what afterwards:
 *
 * - p->snap, p->balance, p->stats, p->listeners: the new ones. A call holds its own references
 *   (call->snap, its stats table in call->obs) and keeps its cluster, which belongs to the balance
 *   it started with.
 * - The old balance goes on p->retired_balances with the old snapshot's reference (its clusters
 *   point into it); it is freed when its last call ends (ml_balance_commit's on_idle), or by
 *   ml_proxy_free.
 * - A listener whose bind remains is the same object, updated; one whose bind is gone goes on
 *   p->retired_listeners (it holds its own snapshot and stats references) until its last
 *   connection closes. */
#include "proxy/proxy.h"

#include "balance/balance.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/stats.h"
#include "proxy/proxy_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* A balance of an earlier snapshot, kept while calls use it. */
struct retired_balance {
    struct ml_proxy *proxy;
    struct ml_list node; /* in proxy->retired_balances */
    struct ml_balance *balance;
    struct ml_snapshot *snap; /* its clusters point into it (a reference) */
};

struct ml_proxy_change {
    struct ml_snapshot *next; /* a reference */
    struct ml_balance *balance;
    struct ml_stats *stats;
    /* As next->listeners: a running listener whose bind remains, or a new one, held. */
    struct ml_listener **listeners;
    uint32_t n_listeners;            /* filled in */
    struct retired_balance *retired; /* for the balance in force, at commit */
};

static bool same_bind(const struct ml_cfg_addr *a, const struct ml_cfg_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, a->family == AF_INET ? 4 : 16) == 0;
}

/* The running listener bound to bind, or NULL. */
static struct ml_listener *running_listener(struct ml_proxy *p, const struct ml_cfg_addr *bind)
{
    for (uint32_t i = 0; i < p->n_listeners; i++) {
        if (same_bind(&p->listeners[i]->cfg->bind, bind)) {
            return p->listeners[i];
        }
    }
    return NULL;
}

static void change_free(struct ml_proxy *p, struct ml_proxy_change *ch)
{
    for (uint32_t i = 0; i < ch->n_listeners; i++) {
        if (ch->listeners[i]->held) {
            ml_proxy_listener_free(ch->listeners[i]); /* a new bind: closed */
        }
    }
    ml_free(ch->listeners);
    ml_free(ch->retired);
    ml_balance_free(ch->balance); /* shares nothing yet: only its own pools go */
    ml_stats_free(ch->stats);
    ml_snapshot_unref(ch->next);
    ml_free(ch);
}

int ml_proxy_prepare(struct ml_proxy *p, struct ml_snapshot *next, char *why, size_t cap,
                     struct ml_proxy_change **out)
{
    struct ml_proxy_change *ch;
    int rv = -ENOMEM;

    *out = NULL;
    if (p->prepared != NULL) {
        snprintf(why, cap, "another configuration is being applied");
        return -EBUSY;
    }
    if (p->draining) {
        snprintf(why, cap, "the node is shutting down");
        return -ECANCELED;
    }
    if ((ch = ml_calloc(1, sizeof(*ch))) == NULL) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    ch->next = ml_snapshot_ref(next);
    if ((ch->listeners = ml_calloc(next->n_listeners + 1, sizeof(*ch->listeners))) == NULL ||
        (ch->retired = ml_calloc(1, sizeof(*ch->retired))) == NULL ||
        (ch->stats = ml_stats_next(p->stats, next)) == NULL ||
        ml_balance_prepare(p->balance, next, &ch->balance) < 0) {
        snprintf(why, cap, "out of memory for the new configuration");
        goto fail;
    }
    ml_balance_set_stats(ch->balance, ch->stats);
    for (uint32_t i = 0; i < next->n_listeners; i++) {
        struct ml_listener *l = running_listener(p, &next->listeners[i].bind);

        if (l == NULL &&
            (rv = ml_proxy_listener_new(p, next, ch->stats, i, true, why, cap, &l)) < 0) {
            goto fail;
        }
        ch->listeners[i] = l;
        ch->n_listeners = i + 1;
    }
    p->prepared = ch;
    *out = ch;
    return 0;

fail:
    ML_LOG_WRN("proxy: cannot prepare config %s: %s", next->version, why);
    change_free(p, ch);
    return rv;
}

void ml_proxy_abort(struct ml_proxy *p, struct ml_proxy_change *change)
{
    if (change == NULL) {
        return;
    }
    assert(p->prepared == change);
    ML_LOG_INF("proxy: config %s not applied", change->next->version);
    p->prepared = NULL;
    change_free(p, change);
}

static void retired_balance_free(struct retired_balance *r)
{
    ml_list_remove(&r->node);
    ml_balance_free(r->balance);
    ml_snapshot_unref(r->snap);
    ml_free(r);
}

/* The last call of a retired balance ended. */
static void on_balance_idle(void *user)
{
    struct retired_balance *r = user;

    ML_LOG_DBG("proxy: the clusters of config %s have no call left: freed", r->snap->version);
    retired_balance_free(r);
}

void ml_proxy_commit(struct ml_proxy *p, struct ml_proxy_change *ch)
{
    struct ml_snapshot *next = ch->next, *prev = p->snap;
    struct retired_balance *r = ch->retired;
    uint32_t kept = 0, added = 0, removed = 0;

    assert(p->prepared == ch);
    p->prepared = NULL;
    /* Listeners: those whose bind is gone retire; those that remain take their new settings;
     * the new ones start serving (after the switch: their first calls route on next). */
    for (uint32_t i = 0; i < p->n_listeners; i++) {
        struct ml_listener *l = p->listeners[i];
        bool stays = false;

        for (uint32_t j = 0; j < ch->n_listeners && !stays; j++) {
            stays = ch->listeners[j] == l;
        }
        if (!stays) {
            removed++;
            ml_proxy_listener_retire(l);
        }
    }
    ml_free(p->listeners);
    p->listeners = ch->listeners;
    p->n_listeners = ch->n_listeners;
    ch->listeners = NULL;
    /* Clusters: the new balance takes over the shared pools; the old one lives on its calls. */
    r->proxy = p;
    r->balance = p->balance;
    r->snap = prev; /* p's reference moves here */
    ml_list_add_tail(&p->retired_balances, &r->node);
    ch->retired = NULL;
    p->balance = ch->balance;
    ch->balance = NULL;
    ml_balance_commit(p->balance, r->balance, on_balance_idle, r);
    /* Counters and the snapshot new calls start on. */
    ml_stats_free(p->stats);
    p->stats = ch->stats;
    ch->stats = NULL;
    p->snap = next;
    ch->next = NULL;
    for (uint32_t i = 0; i < p->n_listeners; i++) {
        struct ml_listener *l = p->listeners[i];

        if (l->held) {
            added++;
            ml_proxy_listener_serve(l);
        } else {
            kept++;
        }
        if (l->snap != next) {
            ml_proxy_listener_update(l, next, p->stats, i);
        }
    }
    ML_LOG_INF("proxy: config %s applied (was %s): listeners: %u kept, %u added, %u removed",
               next->version, prev->version, kept, added, removed);
    ml_free(ch);
}

void ml_proxy_apply_free(struct ml_proxy *p)
{
    struct ml_list *n;

    while ((n = ml_list_first(&p->retired_balances)) != NULL) {
        retired_balance_free(ML_CONTAINER_OF(n, struct retired_balance, node));
    }
}
