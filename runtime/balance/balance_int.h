/* balance/-private: clusters, pools and pooled connections, shared by balance.c and pool.c. */
#ifndef ML_BALANCE_BALANCE_INT_H
#define ML_BALANCE_BALANCE_INT_H

#include "balance/balance-t.h"
#include "balance/lb-t.h"
#include "config/snapshot-t.h"
#include "core/list-t.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop-t.h"
#include "core/sock-t.h"
#include "h2/h2-t.h"

#include <stdbool.h>
#include <stdint.h>

struct ml_timer;
struct ml_tls_client;
struct ml_transport;

/* One upstream connection of a pool. */
struct ml_pool_conn {
    struct ml_pool *pool;
    struct ml_h2_conn *conn;
    struct ml_transport *tls; /* cluster tls: the connection's TLS (conn owns it); else NULL */
    struct ml_list node;      /* in pool->conns */
    bool connected;      /* the TCP connection is up (the peer's SETTINGS may still be due) */
    bool ready;          /* the peer's SETTINGS arrived: streams may be opened */
    struct ml_timer *handshake; /* connect_timeout, from the connect to the peer's SETTINGS;
                                   NULL once ready */
    bool going_away; /* GOAWAY: finishing its streams, takes no new ones (n_going_away) */
    struct ml_timer *keepalive; /* cluster keepalive: PINGs a quiet connection; NULL when off */
    uint64_t ping_sent_ms;      /* ml_time_now_ms() of the PING in flight */
};

/* One endpoint of one cluster: where its calls find the endpoint's pool. A hot apply shares a
 * pool between the clusters of the old and the new balance that have the same name and endpoint
 * address, so the pool's connections carry on. */
struct ml_pool_slot {
    struct ml_cluster *cluster;
    uint32_t endpoint; /* index into cluster->cfg->endpoints */
    struct ml_pool *pool;
    struct ml_list node; /* in pool->slots while linked */
    bool linked;         /* false only in a prepared balance, for a pool it will share;
                            a linked slot holds a reference on the pool's host */
    bool held;           /* unlinked, yet holding a reference on the pool's host: a dns
                            cluster's prepared slot, whose host the running cluster's
                            resolver may drop before the commit */
};

struct ml_pool {
    struct ml_host *host; /* the host that owns it (balance/host.h) */
    struct ml_list slots; /* struct ml_pool_slot, oldest balance first; the last one is the
                             owner: its cluster's limits and stats apply */
    bool retired;         /* no balance in force has it: connections close once idle */
    struct ml_sock_addr addr;
    char addr_text[ML_SOCK_ADDR_TEXT_MAX];
    /* "connect failed" lines: one per attempt would be one per call to a dead endpoint. */
    struct ml_log_limit connect_log;
    struct ml_list conns; /* struct ml_pool_conn, ready and connecting; filled in this order */
    uint32_t n_conns;
    uint32_t n_connecting;
    uint32_t n_going_away;    /* of n_conns: GOAWAY'd ones, not counted against max_connections */
    struct ml_list waiters;   /* struct ml_balance_waiter, FIFO */
    uint32_t n_waiting;       /* counted in the owner's cluster->n_pending */
    struct ml_defer dispatch; /* hand free slots to waiters at the end of the event */
    uint32_t conn_streams;    /* streams one connection takes: min(max_streams_per_connection,
                                 the peer's SETTINGS_MAX_CONCURRENT_STREAMS) as last seen; 0 until
                                 a connection came up */
    /* Connect backoff (pool.c): after connects that failed in a row, no new connect before
     * backoff_until_ms, so that calls to a dead endpoint do not each open one. */
    uint32_t connect_failures; /* in a row; 0 once a connection came up */
    uint64_t backoff_until_ms; /* ml_time_now_ms() before which no connect starts */
    uint64_t backoff_skipped;  /* connects not started because of the backoff (/clusters) */
};

/* One downstream connection's part of one cluster (share.c): exists while one of its calls
 * holds a stream slot of the cluster or waits for one. */
struct ml_share {
    const void *tenant; /* the downstream connection (compared, never dereferenced) */
    struct ml_cluster *cluster;
    struct ml_list node; /* in cluster->shares */
    uint32_t n_held;     /* its calls' upstream streams on the cluster */
    uint32_t n_waiting;  /* its calls in the cluster's pools' queues */
};

struct ml_dns;

struct ml_cluster {
    struct ml_balance *balance;
    const struct ml_cfg_cluster *cfg;
    struct ml_pool_slot *slots; /* one per endpoint, in config order; a dns cluster has
                                   ML_LB_HOSTS_MAX, those without a pool are free */
    uint32_t n_slots;           /* slots in use: up to the last one with a pool */
    struct ml_dns *dns;         /* dns = HOST:PORT: its resolver (dns.c); NULL otherwise */
    struct ml_cluster_dns_stats dns_stats;
    struct ml_lb lb;         /* its policy (lb =), over the slots' hosts */
    uint32_t n_active;       /* calls between call_begin and call_end */
    uint32_t n_pending;      /* calls waiting in the pools this cluster owns */
    uint32_t n_retrying;     /* retries in flight (max_retries): begin to end of the attempt */
    uint32_t slots_per_conn; /* min(max_streams_per_connection, the 100 nghttp2 assumes before
                                the peer's SETTINGS): what one new connection is expected to take */
    struct ml_h2_settings settings; /* what upstream connections advertise */
    /* tls = on | mtls: the files of this config, read when the balance was built (a SIGHUP or
     * push reads them again: new connections use them, pooled ones keep theirs); else NULL */
    struct ml_tls_client *tls;
    struct ml_list shares;          /* struct ml_share: the downstream connections using it */
    uint32_t n_shares;
    struct ml_share *spare_share; /* the last share that emptied, kept for the next (a lone
                                     client's calls one after the other allocate nothing) */
};

struct ml_balance {
    struct ml_loop *loop;
    const struct ml_snapshot *snap;
    uint32_t *conn_ids;
    struct ml_stats *stats;      /* where connections are counted (a reference); NULL: nowhere */
    struct ml_cluster *clusters; /* as snap->clusters */
    uint32_t n_clusters;
    uint64_t n_active; /* calls of every cluster between call_begin and call_end */
    bool retired;      /* ml_balance_retire ran: on_idle once n_active is 0 */
    ml_balance_idle_fn *on_idle;
    void *idle_user;
    struct ml_defer idle_defer;
    struct ml_rand rand; /* for picks whose caller gives no random source (ctx NULL) */
};

/* The pool's owner: the slot of the newest balance that has it. */
static inline struct ml_pool_slot *ml_pool_owner(const struct ml_pool *p)
{
    return ML_CONTAINER_OF(p->slots.prev, struct ml_pool_slot, node);
}

static inline struct ml_cluster *ml_pool_cluster(const struct ml_pool *p)
{
    return ml_pool_owner(p)->cluster;
}

/* pool.c */
/* A new pool for endpoint of cl (not linked to any slot yet, no host yet). NULL: no memory. */
struct ml_pool *ml_pool_new(const struct ml_cluster *cl, uint32_t endpoint);
/* The same for an address (a dns answer's). */
struct ml_pool *ml_pool_new_at(const struct ml_sock_addr *a);
/* Closes the pool's connections and frees it; no call may wait on it any more. Only its host
 * calls this (ml_host_unref), or the builder of a pool whose host could not be made. */
void ml_pool_free(struct ml_pool *p, struct ml_loop *loop);
/* The pool gets a new owner (the last slot changed): moves its waiters' count. */
void ml_pool_owner_change(struct ml_pool *p, struct ml_cluster *from, struct ml_cluster *to);
/* p is retired (no balance in force has it): closes its idle connections now and the others once
 * their streams end. */
void ml_pool_retire(struct ml_pool *p);
/* ml_cluster_pick once the endpoint is chosen. */
int ml_pool_pick(struct ml_pool *p, struct ml_balance_waiter *w, struct ml_h2_conn **conn,
                 char *why, size_t cap);
/* Hands free slots to p's waiters at the end of the event (a share shrank or grew). */
void ml_pool_dispatch_later(struct ml_pool *p);

/* outlier.c */
/* Passive outlier detection hears the attempt on h ended as o says (failed: ml_attempt_failed):
 * outlier_errors failures in a row eject h, within outlier_max_percent of its cluster. */
void ml_outlier_attempt_end(struct ml_host *h, const struct ml_attempt_outcome *o, bool failed);
/* h is being freed: its ejection timer goes. */
void ml_outlier_host_free(struct ml_host *h);
/* balance.c, for dns.c */
/* A dns lookup of cl answered addrs[0..n) (n >= 1): hosts for the new addresses, the gone ones
 * drain (their calls finish; freed once idle), the policy is rebuilt over the new set. Returns
 * how many hosts are in use now (draining ones included). */
uint32_t ml_cluster_dns_answer(struct ml_cluster *cl, const struct ml_sock_addr *addrs, uint32_t n);

/* dns.c */
/* cl's resolver (cl->dns), not running yet. 0; -ENOMEM. */
int ml_dns_new(struct ml_cluster *cl);
/* Resolves now, then every dns_refresh. A no-op once running. */
void ml_dns_start(struct ml_dns *d);
/* Stops and frees it; waits for a lookup in progress (its answer is dropped): a hot apply
 * that keeps the cluster's name and dns hands the resolver over instead (ml_dns_move), so only
 * a removed or renamed dns cluster, or the end, waits. NULL: no-op. */
void ml_dns_free(struct ml_dns *d);
/* A hot apply: to (next's cluster with from's name and dns, not started) takes from's running
 * resolver, with a lookup in progress if there is one, and its counters. */
void ml_dns_move(struct ml_cluster *from, struct ml_cluster *to);

/* share.c */
/* w counts in the share of w->tenant on cl from now on (found, or made). 0; -ENOMEM. A no-op
 * without a tenant or when w has a share already. */
int ml_share_join(struct ml_cluster *cl, struct ml_balance_waiter *w);
/* w neither holds nor waits any more: it leaves its share, which goes when empty. */
void ml_share_settle(struct ml_balance_waiter *w);
/* w got a stream slot. */
void ml_share_hold(struct ml_balance_waiter *w);
/* The most stream slots one downstream connection may hold on cl, and the most of its calls
 * that may wait there. */
uint32_t ml_share_hold_max(const struct ml_cluster *cl);
uint32_t ml_share_wait_max(const struct ml_cluster *cl);
/* w may take a stream slot now: it has no share, or its share is below ml_share_hold_max. */
bool ml_share_may_hold(const struct ml_balance_waiter *w);
/* Why w may neither hold nor wait (for its UNAVAILABLE). */
void ml_share_why(const struct ml_balance_waiter *w, char *why, size_t cap);

#endif
