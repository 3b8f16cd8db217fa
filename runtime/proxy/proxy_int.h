/* proxy/-private: the proxy and listener objects, shared by proxy.c and call.c. */
#ifndef ML_PROXY_PROXY_INT_H
#define ML_PROXY_PROXY_INT_H

#include "balance/balance-t.h"
#include "config/snapshot-t.h"
#include "core/buf-t.h"
#include "core/list-t.h"
#include "core/log.h"
#include "core/loop-t.h"
#include "core/rand.h"
#include "core/sock-t.h"
#include "h2/h2-t.h"
#include "h2/hdrs-t.h"

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
    struct ml_timer *timer; /* handshake timeout, idle_timeout and max_connection_age checks */
    uint64_t born_ms;       /* ml_time_now_ms() at accept */
    /* The listener's limits when it was accepted: a hot apply changes them for new connections
     * only. 0 = off. */
    uint32_t idle_timeout_ms;
    uint32_t max_connection_age_ms;
    bool going_away; /* GOAWAY sent: it closes once its streams are done */
};

/* A listener is known by its bind address: a hot apply keeps the listener (socket, connections)
 * of a bind that remains and gives it the new snapshot's settings and index. */
struct ml_listener {
    struct ml_proxy *proxy;
    int index;                /* into snap->listeners */
    struct ml_snapshot *snap; /* the config it serves (a reference): cfg points into it */
    struct ml_stats *stats;   /* where its connections count (a reference), at index */
    const struct ml_cfg_listener *cfg;
    struct ml_sock_listener *sock;  /* NULL once it stopped listening */
    struct ml_h2_settings settings; /* what its new connections advertise */
    struct ml_list conns;           /* struct ml_downstream */
    uint32_t n_conns;
    bool full; /* at max_connections with no idle connection to reclaim: said once in the log */
    /* Prepared by a hot apply, not committed yet: connections the kernel hands over wait here
     * (struct ml_held_conn) and are served at commit. */
    bool held;
    struct ml_list held_conns;
    /* tls = on|mtls|permissive: its certificate, key, CA (NULL for plaintext); and connections
     * between accept and the end of their TLS handshake (struct ml_tls_wait, proxy.c). */
    struct ml_tls_server *tls;
    struct ml_list tls_waits;
    /* Failed handshakes are logged within a budget: a scan or a flood must not write a line
     * per connection (they are all counted in the stats). */
    struct ml_log_limit tls_log;
    /* Its bind is gone (a commit): no new calls; freed once its last connection closed. */
    bool retired;
    struct ml_list node; /* in proxy->retired_listeners while retired */
};

struct ml_proxy_change;
struct ml_rate_limits;

/* step_rate_limit.c: frees the token buckets (ml_proxy_free). NULL is a no-op. */
void ml_rate_limits_free(struct ml_rate_limits *rl);

struct ml_proxy {
    struct ml_loop *loop;
    /* Lines about one call (a failure, a reset): within a budget, so a dead backend under load
     * does not write one per call; the calls are counted in the stats all the same. */
    struct ml_log_limit call_log;
    struct ml_snapshot *snap; /* the configuration in force (a reference) */
    struct ml_balance *balance;
    struct ml_listener **listeners; /* as snap->listeners; each allocated on its own */
    uint32_t n_listeners;
    struct ml_list retired_listeners; /* struct ml_listener whose bind is gone */
    struct ml_list retired_balances;  /* proxy/apply.c: balances of earlier snapshots */
    struct ml_proxy_change *prepared; /* NULL, or the change between prepare and commit/abort */
    uint32_t conn_ids;                /* the last connection id given (logs: "c%u") */
    uint64_t call_ids;                /* the last call id given */
    uint64_t n_live_calls;
    struct ml_rand rng;               /* weighted splits, LB policies (core/rand.h) */
    struct ml_rate_limits *rate_limits; /* step_rate_limit.c: the routes' token buckets */
    struct ml_stats *stats;           /* proxy/obs.c: counters (the admin endpoint reads them) */
    struct ml_access_log *access_log; /* proxy/obs.c: [node] access_log */
    bool draining;                    /* ml_proxy_drain ran: the loop stops once no call is left */
    struct ml_timer *drain;           /* the drain's deadline */

    uint32_t n_downstream; /* downstream connections of every listener, retired ones too */
    bool budget_full;      /* n_downstream reached ML_FD_BUDGET_DOWNSTREAM: said once in the log */

    /* proxy/call.c: what finished calls leave for the next ones (a warm call path allocates
     * nothing); freed with the proxy (ml_call_spares_free). */
    struct ml_list spare_calls; /* struct ml_call, bounded by CALL_SPARES */
    uint32_t n_spare_calls;
    struct ml_buf_spare spare_chunks; /* the calls' body buffer chunks */
    struct ml_h2_field_ref *up_refs;  /* the upstream request's fields, rebuilt per call */
    size_t cap_up_refs;
};

/* proxy.c, for apply.c: a listener of snap->listeners[index] (counted in stats), bound now; held
 * (it serves nothing until ml_proxy_listener_serve). 0 and *out, or a negative errno with why. */
int ml_proxy_listener_new(struct ml_proxy *p, struct ml_snapshot *snap, struct ml_stats *stats,
                          uint32_t index, bool held, char *why, size_t cap,
                          struct ml_listener **out);
/* Ends a held listener's wait: it serves the connections that waited and those to come. */
void ml_proxy_listener_serve(struct ml_listener *l);
/* A listener that remains takes snap->listeners[index] (and stats) for its new connections. */
void ml_proxy_listener_update(struct ml_listener *l, struct ml_snapshot *snap,
                              struct ml_stats *stats, uint32_t index);
/* Its bind is gone: stops listening, GOAWAY to its connections; freed once they are closed. */
void ml_proxy_listener_retire(struct ml_listener *l);
/* Stops listening, closes its connections (their calls end) and frees l. */
void ml_proxy_listener_free(struct ml_listener *l);

/* apply.c: frees the retired balances (ml_proxy_free, after the calls are gone). */
void ml_proxy_apply_free(struct ml_proxy *p);

/* A call was freed (proxy/call.c): n_live_calls went down. */
void ml_proxy_call_gone(struct ml_proxy *p);

/* A uniformly random 32-bit number (not for secrets). */
uint32_t ml_proxy_random(struct ml_proxy *p);

#endif
