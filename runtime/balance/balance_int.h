/* balance/-private: clusters, pools and pooled connections, shared by balance.c and pool.c. */
#ifndef ML_BALANCE_BALANCE_INT_H
#define ML_BALANCE_BALANCE_INT_H

#include "balance/balance-t.h"
#include "config/snapshot-t.h"
#include "core/list-t.h"
#include "core/loop-t.h"
#include "core/sock-t.h"
#include "h2/h2-t.h"

#include <stdbool.h>
#include <stdint.h>

struct ml_timer;

/* One upstream connection of a pool. */
struct ml_pool_conn {
    struct ml_pool *pool;
    struct ml_h2_conn *conn;
    struct ml_list node; /* in pool->conns */
    bool ready;          /* connected: streams may be opened */
    bool going_away;     /* GOAWAY: finishing its streams, takes no new ones (n_going_away) */
    struct ml_timer *keepalive; /* cluster keepalive: PINGs a quiet connection; NULL when off */
    uint64_t ping_sent_ms;      /* ml_time_now_ms() of the PING in flight */
};

struct ml_pool {
    struct ml_cluster *cluster;
    uint32_t endpoint; /* index into the cluster's config endpoints */
    struct ml_sock_addr addr;
    char addr_text[ML_SOCK_ADDR_TEXT_MAX];
    struct ml_list conns; /* struct ml_pool_conn, ready and connecting; filled in this order */
    uint32_t n_conns;
    uint32_t n_connecting;
    uint32_t n_going_away;  /* of n_conns: GOAWAY'd ones, not counted against max_connections */
    struct ml_list waiters; /* struct ml_balance_waiter, FIFO */
    uint32_t n_waiting;
    struct ml_defer dispatch; /* hand free slots to waiters at the end of the event */
    int64_t rr_current;       /* smooth weighted round robin: this endpoint's current weight */
};

struct ml_cluster {
    struct ml_balance *balance;
    const struct ml_cfg_cluster *cfg;
    struct ml_pool *pools; /* one per endpoint, in config order */
    uint32_t n_pools;
    uint32_t rr_total;       /* sum of the endpoints' weights */
    uint32_t n_active;       /* calls between call_begin and call_end */
    uint32_t n_pending;      /* calls waiting in this cluster's pools */
    uint32_t slots_per_conn; /* min(max_streams_per_connection, the 100 nghttp2 assumes before
                                the peer's SETTINGS): what one new connection is expected to take */
    struct ml_h2_settings settings; /* what upstream connections advertise */
};

struct ml_balance {
    struct ml_loop *loop;
    const struct ml_snapshot *snap;
    uint32_t *conn_ids;
    struct ml_stats *stats;      /* where connections are counted; NULL: nowhere */
    struct ml_cluster *clusters; /* as snap->clusters */
    uint32_t n_clusters;
};

/* pool.c */
void ml_pool_init(struct ml_pool *p, struct ml_cluster *cl, uint32_t endpoint);
/* Closes the pool's connections; no call may wait on it any more. */
void ml_pool_deinit(struct ml_pool *p);
/* ml_cluster_pick once the endpoint is chosen. */
int ml_pool_pick(struct ml_pool *p, struct ml_balance_waiter *w, struct ml_h2_conn **conn,
                 char *why, size_t cap);

#endif
