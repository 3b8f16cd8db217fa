/* What the proxy tells the outside about itself: counters (core/stats), the access log line of
 * every call, and the accessors the admin endpoint reads. The call (proxy/call.c) reports to its
 * ml_call_obs with one hook per fact, where the fact is decided. */
#ifndef ML_PROXY_OBS_H
#define ML_PROXY_OBS_H

#include "core/sock-t.h"
#include "core/stats-t.h"
#include "h2/hdrs-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ml_proxy;
struct ml_cluster;
struct ml_snapshot;
struct ml_h2_stream;

/* Longest request id kept (x-request-id is cut there; a trace id is 32). */
#define ML_CALL_OBS_ID_MAX 64

/* Longest peer principal kept (a SPIFFE ID is at most 2048 bytes, real ones are far shorter).
 * One that does not fit is never cut (a cut one could match a glob the whole one does not): the
 * peer then has no principal, which no allow rule but `-` lets through (proxy/authz.h). */
#define ML_CALL_OBS_PRINCIPAL_MAX 255

/* One call as counted and logged, embedded in the call. */
struct ml_call_obs {
    struct ml_stats *stats;         /* the counters of the snapshot it started on (a reference):
                                       a hot apply does not move it */
    const struct ml_snapshot *snap; /* that snapshot (borrowed from the call): access log names */
    struct ml_stats_call sc;        /* where it is counted: indices into snap */
    uint64_t start_us;              /* monotonic µs at the request headers */
    uint64_t upstream_us;           /* monotonic µs at the upstream stream's open; 0: none */
    struct timespec start_wall;     /* for the access log's ts= */
    uint64_t bytes_in;              /* request DATA payload from downstream */
    uint64_t bytes_out;             /* response DATA payload handed to downstream */
    int grpc_status;                /* the final grpc-status sent downstream; -1: none (yet) */
    int http_status;                /* :status sent downstream; 0: none (yet) */
    bool ended;                     /* ml_call_obs_end ran */
    char method[16];                /* :method, cut */
    char authority[128];            /* :authority (or Host), cut */
    uint64_t upstream_start_us;     /* monotonic µs at the first endpoint pick (a retry's time
                                       counts too: the access log's upstream_us); 0: none */
    /* The access log's (filled only while it is on): */
    char client[ML_SOCK_ADDR_TEXT_MAX];      /* downstream peer "IP:PORT" */
    char request_id[ML_CALL_OBS_ID_MAX + 1]; /* x-request-id, else traceparent's trace id */
    char reason[160];                        /* why meshlet failed the call; "" = it did not */
    /* The peer's verified principal ("" = none: plaintext or no client certificate), filled
     * whether the access log is on or not: [authz] matches it (proxy/step_authz.c). */
    char principal[ML_CALL_OBS_PRINCIPAL_MAX + 1];
};

/* Called by ml_proxy_new / ml_proxy_free: the stats, the access log ([node] access_log; SIGUSR1
 * reopens its file). 0, or a negative errno with why (the access log file cannot be opened:
 * the node cannot start, exit 3). deinit is safe after a failed or no init. */
int ml_proxy_obs_init(struct ml_proxy *p, char *why, size_t cap);
void ml_proxy_obs_deinit(struct ml_proxy *p);

/* For the admin endpoint. */
const struct ml_stats *ml_proxy_stats(const struct ml_proxy *p);
const struct ml_snapshot *ml_proxy_snapshot(const struct ml_proxy *p);
/* The clusters in force (admin /clusters); NULL before any. */
struct ml_balance *ml_proxy_balance(const struct ml_proxy *p);
/* The endpoints in force, and of those the healthy ones (balance/balance.h), for the fleet. */
void ml_proxy_endpoints(const struct ml_proxy *p, uint32_t *healthy, uint32_t *total);
/* true once the configuration is applied and every listener is bound (and while it stays so). */
bool ml_proxy_ready(const struct ml_proxy *p);

/* The hooks of a call, in the order they happen. snap: the call's snapshot (p's in force; the
 * call holds a reference on it until after ml_call_obs_end). */
/* method and authority: the request's :method and :authority (else Host), as the call found
 * them; req: its headers (for the access log's request id). */
void ml_call_obs_begin(struct ml_call_obs *o, struct ml_proxy *p, const struct ml_snapshot *snap,
                       int listener, struct ml_slice method, struct ml_slice authority,
                       const struct ml_h2_hdrs *req);
void ml_call_obs_route(struct ml_call_obs *o, struct ml_proxy *p, int route,
                       const struct ml_cluster *cl);
void ml_call_obs_endpoint(struct ml_call_obs *o, struct ml_proxy *p, int endpoint);
/* The upstream stream was opened (again, after a replay: the last one counts). */
void ml_call_obs_upstream_open(struct ml_call_obs *o);
/* A header block relayed downstream (response headers or trailers): the values of its :status
 * and grpc-status (empty when it has none), which the call has looked up already. */
void ml_call_obs_status(struct ml_call_obs *o, struct ml_slice http_status,
                        struct ml_slice grpc_status);
/* The downstream peer (for the access log's client= and principal=, and [authz]). */
void ml_call_obs_client(struct ml_call_obs *o, struct ml_proxy *p, const struct ml_h2_stream *down);
/* Why meshlet failed the call (answered it with an error, or reset it): the first reason stays. */
void ml_call_obs_fail(struct ml_call_obs *o, const char *reason);
/* meshlet answered the call itself. */
void ml_call_obs_answer(struct ml_call_obs *o, bool grpc, int grpc_status, int http_status);
static inline void ml_call_obs_bytes_in(struct ml_call_obs *o, size_t n)
{
    o->bytes_in += n;
}
static inline void ml_call_obs_bytes_out(struct ml_call_obs *o, size_t n)
{
    o->bytes_out += n;
}
/* The call is over: counted, and its access log line written (names from the call's own
 * snapshot); its reference on the counters goes. path: the call's :path (cut). Runs once; later
 * calls do nothing. */
void ml_call_obs_end(struct ml_call_obs *o, struct ml_proxy *p, const char *path);

#endif
