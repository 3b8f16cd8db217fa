/* The types of the load-balancing policy interface (balance/lb.h): what a policy is given, what
 * it answers, and how an attempt on a host ended. */
#ifndef ML_BALANCE_LB_T_H
#define ML_BALANCE_LB_T_H

#include "core/rand.h"
#include "core/slice-t.h"

#include <stdbool.h>
#include <stdint.h>

struct ml_cluster;
struct ml_lb_ops;

/* The most hosts one cluster balances over: the config's bound on endpoints per cluster
 * (schema.def: endpoint, 1..128); dns discovery keeps to it too. Sizes the tried set. */
#define ML_LB_HOSTS_MAX 128

/* The hosts (indices into the cluster's hosts) a call has tried already: a retry or a replay
 * goes elsewhere while another host is usable. */
struct ml_lb_tried {
    uint32_t bits[ML_LB_HOSTS_MAX / 32];
};

/* What one pick knows about the call. */
struct ml_lb_pick_ctx {
    /* The call's hash key for ring_hash/maglev (cluster hash = header:NAME | authority | path),
     * borrowed from the request headers; empty when the cluster has no hash. */
    struct ml_slice hash_key;
    /* Hosts to avoid; NULL: none. ml_cluster_pick clears it and asks again when every usable
     * host was tried, so a policy only skips (ml_lb_eligible). */
    const struct ml_lb_tried *tried;
    struct ml_rand *rand; /* the caller's (the proxy's) random source; tests seed theirs */
};

/* One policy instance: per cluster of a balance (a hot apply builds new ones). */
struct ml_lb {
    const struct ml_lb_ops *ops;
    struct ml_cluster *cluster; /* whose hosts: ml_lb_n_hosts / ml_lb_host / ml_lb_weight */
    void *priv;                 /* the policy's own state (init allocates, free frees) */
};

/* How an attempt (one upstream stream of a call on one host) ended. */
enum ml_attempt_end {
    ML_ATTEMPT_NOT_SENT,       /* never reached the host: no stream slot, or cancelled waiting */
    ML_ATTEMPT_CONNECT_FAILED, /* no connection to the host could be made */
    ML_ATTEMPT_REFUSED,        /* REFUSED_STREAM or GOAWAY: the host did not process it */
    ML_ATTEMPT_RESET,          /* the host reset the stream or the connection was lost */
    ML_ATTEMPT_CANCELLED,      /* meshlet cancelled it: client gone, deadline, stall */
    ML_ATTEMPT_RESPONDED,      /* the host ended the stream: grpc_status / http_status */
};

struct ml_attempt_outcome {
    enum ml_attempt_end end;
    int grpc_status;     /* ML_ATTEMPT_RESPONDED with a grpc-status; else -1 */
    int http_status;     /* the :status the host sent; 0: none */
    uint32_t h2_error;   /* ML_ATTEMPT_RESET / REFUSED: the RST_STREAM code */
    uint64_t latency_ms; /* from the pick to the end; set by ml_cluster_attempt_end */
};

/* A policy: one file balance/lb_NAME.c, one entry in balance/lb.c's table. */
struct ml_lb_ops {
    const char *name; /* as in the config: lb = NAME */
    /* lb->cluster is set; allocate lb->priv if needed. 0; -ENOMEM. NULL: nothing to do. */
    int (*init)(struct ml_lb *lb);
    /* The host for this call: an index < ml_lb_n_hosts(lb) that ml_lb_eligible accepts, or
     * -ENOENT when none is. */
    int (*pick)(struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx);
    /* An attempt began on host / ended there (outcome says how). NULL: not interested. */
    void (*on_take)(struct ml_lb *lb, uint32_t host);
    void (*on_drop)(struct ml_lb *lb, uint32_t host, const struct ml_attempt_outcome *o);
    /* ml_lb_usable(lb, host) changed (health check, outlier ejection, drain): rebuild tables.
     * NULL: the policy reads usability at each pick. */
    void (*on_host_state)(struct ml_lb *lb, uint32_t host);
    /* Frees lb->priv. NULL: nothing to free. */
    void (*free)(struct ml_lb *lb);
};

#endif
