/* Counters and call-duration histograms of one proxy (core/stats.c). */
#ifndef ML_CORE_STATS_T_H
#define ML_CORE_STATS_T_H

#include <stdint.h>

struct ml_stats; /* every counter of one proxy context, sized from its snapshot */

/* Upper bounds (µs, inclusive) of the duration buckets; one more bucket, +Inf, follows. A proxy
 * adds tens of µs to a call: the first buckets must be finer than a millisecond, the last ones
 * reach a long call's 10 s. */
#define ML_STATS_BUCKETS_US                                                                        \
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,     \
        2500000, 5000000, 10000000
#define ML_STATS_N_BOUNDS 17
#define ML_STATS_N_BUCKETS (ML_STATS_N_BOUNDS + 1)

/* grpc-status 0..16, then one slot for calls that ended without one (a reset, plain HTTP). */
#define ML_STATS_N_STATUS 18
#define ML_STATS_STATUS_NONE 17

struct ml_stats_hist {
    uint64_t buckets[ML_STATS_N_BUCKETS]; /* not cumulative: bucket i counts bound[i-1] < d <=
                                             bound[i] */
    uint64_t sum_us;
    uint64_t count;
};

/* What is kept per listener, route, cluster, endpoint, and for the whole proxy. */
struct ml_stats_calls {
    uint64_t total;  /* calls ended */
    uint64_t active; /* calls started, not ended */
    uint64_t by_status[ML_STATS_N_STATUS];
    uint64_t bytes_in;  /* request DATA payload from downstream */
    uint64_t bytes_out; /* response DATA payload to downstream */
    struct ml_stats_hist duration; /* request headers to the end of the call */
    /* the upstream stream's open to the end of the call: what the upstream took, apart from
     * the wait for an endpoint and connection (calls that never opened one are not in it) */
    struct ml_stats_hist upstream;
};

/* Downstream connection events (per listener). */
enum ml_stats_down_event {
    ML_STATS_DOWN_ACCEPTED = 0, /* accepted and served: active until CLOSED */
    ML_STATS_DOWN_REFUSED, /* accepted by the kernel, closed at once (max_connections, memory) */
    ML_STATS_DOWN_CLOSED,
    /* closed (also counted CLOSED) because the client had not sent the HTTP/2 preface and its
     * SETTINGS within CONFIG_ML_H2_HANDSHAKE_TIMEOUT_MS */
    ML_STATS_DOWN_HANDSHAKE_TIMEOUT,
    /* closed (also counted CLOSED): the idle connection that made room for a new one at
     * max_connections */
    ML_STATS_DOWN_RECLAIMED,
    ML_STATS_DOWN_RQ_STALLED, /* a call reset by stream_stall_timeout (no bytes moved) */
    /* TLS listeners (tls/tls.h): a handshake done, refused at accept (too many in progress), or
     * failed, by reason (the order of enum ml_tls_fail) */
    ML_STATS_DOWN_TLS_HANDSHAKE,
    ML_STATS_DOWN_TLS_BUSY,
    ML_STATS_DOWN_TLS_FAIL_BAD_CERT,
    ML_STATS_DOWN_TLS_FAIL_UNKNOWN_CA,
    ML_STATS_DOWN_TLS_FAIL_NO_ALPN,
    ML_STATS_DOWN_TLS_FAIL_VERSION,
    ML_STATS_DOWN_TLS_FAIL_TIMEOUT,
    ML_STATS_DOWN_TLS_FAIL_PLAINTEXT,
    ML_STATS_DOWN_TLS_FAIL_OTHER,
};
/* How many TLS failure reasons there are (ML_STATS_DOWN_TLS_FAIL_*). */
#define ML_STATS_TLS_FAIL_KINDS 7

/* Request-policy events (per route): proxy/step_retry.c, step_fault.c, step_rate_limit.c. */
enum ml_stats_route_event {
    ML_STATS_ROUTE_RETRY = 0,      /* a failed attempt sent again (after its backoff) */
    ML_STATS_ROUTE_RETRY_OVERFLOW, /* not retried: its cluster's max_retries were in flight */
    ML_STATS_ROUTE_FAULT_DELAYED,  /* held by fault_delay / x-meshlet-fault-delay */
    ML_STATS_ROUTE_FAULT_ABORTED,  /* ended by fault_abort / x-meshlet-fault-abort */
    ML_STATS_ROUTE_RATE_LIMITED,   /* refused by rate_limit (RESOURCE_EXHAUSTED / 429) */
    ML_STATS_ROUTE_N_EVENTS,
};

/* Upstream connection events (per endpoint). */
enum ml_stats_up_event {
    ML_STATS_UP_OPENED = 0, /* a connect started */
    ML_STATS_UP_CONNECTED,  /* it came up: active until CLOSED */
    ML_STATS_UP_FAILED,     /* it never came up (refused, timed out, could not start) */
    ML_STATS_UP_CLOSED,     /* an active one closed */
    ML_STATS_UP_EJECTED,    /* outlier detection ejected the endpoint: ejected until RETURNED */
    ML_STATS_UP_RETURNED,   /* its ejection ended */
    ML_STATS_UP_BACKOFF,    /* a connect not started: the endpoint's connect backoff */
    ML_STATS_UP_UNHEALTHY,  /* active health checks took it out: unhealthy until HEALTHY */
    ML_STATS_UP_HEALTHY,    /* they brought it back */
};

/* Cluster circuit breakers (per cluster). */
enum ml_stats_cluster_event {
    ML_STATS_CL_PENDING_OVERFLOW = 0, /* a call refused: max_pending calls waiting already */
    ML_STATS_CL_OVER_MAX_REQUESTS,    /* a call refused: max_requests calls active */
    ML_STATS_CL_OVER_MAX_RETRIES,     /* a retry not made: max_retries retries in flight */
    /* TLS to the cluster's endpoints (tls/tls_client.h): a handshake done, or failed by reason
     * (ML_STATS_UP_TLS_FAIL_KINDS of them, in this order) */
    ML_STATS_CL_TLS_HANDSHAKE,
    ML_STATS_CL_TLS_FAIL_BAD_CERT,   /* the server's certificate expired or unusable */
    ML_STATS_CL_TLS_FAIL_UNKNOWN_CA, /* it does not chain to the cluster's ca */
    ML_STATS_CL_TLS_FAIL_NO_ALPN,    /* the server did not select ALPN h2 */
    ML_STATS_CL_TLS_FAIL_VERSION,    /* no TLS 1.2 or 1.3 in common */
    ML_STATS_CL_TLS_FAIL_TIMEOUT,    /* not done within connect_timeout */
    ML_STATS_CL_TLS_FAIL_IDENTITY,   /* its name does not match the cluster's identity */
    ML_STATS_CL_TLS_FAIL_OTHER,      /* anything else (the server closed, malformed, memory) */
};
/* How many upstream TLS failure reasons there are (ML_STATS_CL_TLS_FAIL_*). */
#define ML_STATS_UP_TLS_FAIL_KINDS 7

/* Where one call is counted, embedded in the call: indexes into the snapshot's arrays (the
 * endpoint into its cluster's endpoints); -1 while not known. */
struct ml_stats_call {
    int listener;
    int route;
    int cluster;
    int endpoint;
};

/* A rendering in pieces (ml_stats_render_part): zeroed, it starts at the beginning. */
struct ml_stats_cursor {
    unsigned int part;
    unsigned int item;
    int done; /* 1 once the whole rendering was returned */
};

enum ml_stats_format {
    ML_STATS_TEXT = 0,   /* "name value" lines */
    ML_STATS_PROMETHEUS, /* text exposition format 0.0.4 */
    ML_STATS_JSON,       /* one object, for the admin page */
};

#endif
