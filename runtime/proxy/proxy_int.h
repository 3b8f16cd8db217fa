/* proxy/-private: the proxy and listener objects, shared by proxy.c and call.c. */
#ifndef ML_PROXY_PROXY_INT_H
#define ML_PROXY_PROXY_INT_H

#include "balance/balance-t.h"
#include "config/snapshot-t.h"
#include "core/list-t.h"
#include "core/loop-t.h"
#include "core/sock-t.h"
#include "h2/h2-t.h"

#include <stdbool.h>
#include <stdint.h>

struct ml_timer;

struct ml_proxy;
struct ml_stats;
struct ml_access_log;

/* A downstream connection a listener accepted. */
struct ml_downstream {
    struct ml_listener *listener;
    struct ml_h2_conn *conn;
    struct ml_list node;    /* in listener->conns */
    struct ml_timer *timer; /* idle_timeout / max_connection_age checks; NULL when neither */
    uint64_t born_ms;       /* ml_time_now_ms() at accept */
    bool going_away;        /* GOAWAY sent: it closes once its streams are done */
};

struct ml_listener {
    struct ml_proxy *proxy;
    int index; /* into snap->listeners */
    const struct ml_cfg_listener *cfg;
    struct ml_sock_listener *sock;
    struct ml_h2_settings settings; /* what its connections advertise */
    struct ml_list conns;           /* struct ml_downstream */
    uint32_t n_conns;
};

struct ml_proxy {
    struct ml_loop *loop;
    struct ml_snapshot *snap; /* the configuration in force (a reference) */
    struct ml_balance *balance;
    struct ml_listener *listeners; /* as snap->listeners */
    uint32_t n_listeners;
    uint32_t conn_ids; /* the last connection id given (logs: "c%u") */
    uint64_t call_ids; /* the last call id given */
    uint64_t n_live_calls;
    uint64_t rng;                     /* xorshift64* state: weighted splits */
    struct ml_stats *stats;           /* proxy/obs.c: counters (the admin endpoint reads them) */
    struct ml_access_log *access_log; /* proxy/obs.c: [node] access_log */
    bool draining;                    /* ml_proxy_drain ran: the loop stops once no call is left */
    struct ml_timer *drain;           /* the drain's deadline */
};

/* A call was freed (proxy/call.c): n_live_calls went down. */
void ml_proxy_call_gone(struct ml_proxy *p);

/* A uniformly random 32-bit number (not for secrets). */
uint32_t ml_proxy_random(struct ml_proxy *p);

#endif
