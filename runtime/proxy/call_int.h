/* proxy/-private: the call object, shared by the bridge (call.c) and the request-policy steps
 * (step.h, step_*.c). */
#ifndef ML_PROXY_CALL_INT_H
#define ML_PROXY_CALL_INT_H

#include "balance/balance-t.h"
#include "balance/lb-t.h"
#include "config/snapshot-t.h"
#include "core/buf-t.h"
#include "core/list-t.h"
#include "core/loop-t.h"
#include "core/slice-t.h"
#include "grpc/framing-t.h"
#include "h2/h2-t.h"
#include "h2/hdrs-t.h"
#include "meshlet_config.h"
#include "proxy/obs.h"

#include <stdbool.h>
#include <stdint.h>

struct ml_timer;

/* Times a call refused by an upstream's GOAWAY (never processed) is sent again elsewhere. */
#define CALL_MAX_REPLAYS 2

/* Request bytes kept for sending a call again (a retry, a GOAWAY replay): Kconfig's
 * ML_RETRY_BUFFER_BYTES, never more than one call buffer (a rewind puts them back in front of
 * what the window lets come, CALL_BUFFER_BYTES at most, in twice a buffer). */
#define CALL_RETRY_BUFFER_BYTES                                                                    \
    (CONFIG_ML_RETRY_BUFFER_BYTES < CALL_BUFFER_BYTES ? CONFIG_ML_RETRY_BUFFER_BYTES               \
                                                      : CALL_BUFFER_BYTES)

/* :path kept for logs and status messages; longer ones are cut. */
#define CALL_PATH_MAX 200

/* Bytes buffered per direction. Windows we advertise are never larger than
 * CONFIG_ML_CALL_BUFFER_BYTES, but until a peer has our SETTINGS it may send HTTP/2's default
 * 65,535 bytes on a stream, so a smaller Kconfig value is raised to that. */
#define CALL_BUFFER_BYTES                                                                          \
    (CONFIG_ML_CALL_BUFFER_BYTES > 65535 ? CONFIG_ML_CALL_BUFFER_BYTES : 65535)

/* Finished calls a proxy keeps for reuse (with their header lists' memory and their deadline
 * and stall timers), and body buffer chunks kept beside them: small first chunks (512 B) for
 * the three buffers of each of one connection's 100 streams at once, and 32 whole ones (8 KiB)
 * for larger bodies; beyond that they go back to the heap. A kept header list keeps at most
 * CALL_HDRS_KEEP_BYTES. */
#define CALL_SPARES 100
#define CALL_SPARE_CHUNKS 32
#define CALL_SPARE_SMALL_CHUNKS 300
#define CALL_HDRS_KEEP_BYTES 2048

/* The request fields the call and its steps read, found in one walk over the request headers
 * when the call starts (not a lookup each where it is read): the first field of each name, an
 * empty slice when there is none (grpc_timeout: p is NULL then, an empty value is malformed).
 * They point into req_hdrs, which does not change while the call lives. */
struct ml_call_fields {
    struct ml_slice path, authority, host, method, content_type, grpc_timeout;
};

struct ml_call {
    struct ml_list spare; /* in proxy->spare_calls while kept for reuse */
    struct ml_proxy *proxy;
    uint64_t id;
    struct ml_snapshot *snap;   /* the config the call started on (a reference): routes, names */
    struct ml_cluster *cluster; /* NULL until picked; then counted in its max_requests (which
                                   keeps its balance alive across a hot apply) */
    struct ml_h2_stream *down;  /* NULL once gone */
    struct ml_h2_stream *up;    /* NULL before it is opened and once gone */
    struct ml_balance_waiter waiter; /* waiter.pool != NULL while waiting for a slot */
    struct ml_h2_hdrs req_hdrs;      /* request headers as they came (kept for a replay) */
    struct ml_call_fields fields;    /* some of them, found once */
    struct ml_h2_hdrs req_trailers;  /* from downstream, for upstream after the body */
    struct ml_h2_hdrs resp_trailers; /* from upstream, for downstream after the body */
    struct ml_buf req;               /* request body on its way upstream */
    struct ml_buf resp;              /* response body on its way downstream */
    /* Where whole gRPC messages end in the response body, so that a deadline can end the
     * response after one with trailers (grpc-status 4) rather than a reset. Byte counts. */
    struct ml_grpc_framer resp_framer; /* bytes upstream gave, and where messages end */
    uint64_t resp_out;                 /* of those, bytes that went downstream */
    uint64_t resp_limit;     /* the body ends here, trailers follow (deadline); else UINT64_MAX */
    bool grpc;               /* content-type application/grpc*: answer in gRPC */
    bool req_ended;          /* downstream sent END_STREAM */
    bool up_done;            /* the upstream side is over (closed, failed, or never needed): request
                                bytes from now on are dropped */
    bool resp_started;       /* response headers went downstream */
    bool resp_ended;         /* the whole response is known (upstream END_STREAM, or our answer) */
    bool no_replay;          /* req_copy does not hold all upstream took (too much, or a response
                                came): a refused stream cannot go again */
    struct ml_buf req_copy;  /* request bytes upstream took, kept for a replay (!no_replay) */
    size_t req_reread;       /* bytes at the front of req that are there again for a replay: the
                                downstream window counted them already */
    bool has_deadline;       /* deadline_ms applies (client grpc-timeout and/or route timeout) */
    uint8_t n_replays;       /* times the call was sent again after a GOAWAY refused it */
    uint64_t budget_ms;      /* min(client grpc-timeout, route timeout), for messages */
    uint64_t deadline_ms;    /* ml_time_now_ms() at which the call expires (has_deadline) */
    struct ml_timer *expiry; /* fires at deadline_ms; NULL without a deadline */
    uint32_t stall_ms;       /* [listener] stream_stall_timeout; 0 = off */
    uint64_t moved_ms;       /* ml_time_now_ms() when body bytes last moved in or out */
    struct ml_timer *stall;  /* looks for a stall every stall_ms; NULL when off */
    struct ml_defer free_defer;
    struct ml_call_obs obs; /* stats and the access log line (proxy/obs.h) */
    /* The request-policy steps (proxy/step.h). */
    int listener;             /* index into snap->listeners: where it came in */
    int route;                /* index into snap->routes once step_route matched; else -1 */
    uint8_t next_step;        /* steps.c: the step that runs next */
    struct ml_lb_tried tried; /* hosts of call->cluster it was sent to (replays go elsewhere) */
    int up_grpc_status;       /* the attempt's grpc-status from upstream; -1: none (yet) */
    int up_http_status;       /* the attempt's :status from upstream; 0: none (yet) */
    /* Retries (step_retry.c), fault injection (step_fault.c). */
    uint8_t n_attempts;    /* upstream streams opened (grpc-previous-rpc-attempts) */
    uint8_t n_retries;     /* retries after a failed attempt (route retries) */
    bool retrying;         /* holds one of its cluster's max_retries until the attempt ends */
    bool resp_held;        /* a trailers-only answer that may be retried waits in resp_trailers
                              instead of going downstream */
    int held_grpc_status;  /* its grpc-status */
    int fault_abort;       /* step_fault: the gRPC status to end the call with after the delay;
                              0: none */
    struct ml_timer *hold; /* a retry's backoff or a fault delay (never both at once) */
    char path[CALL_PATH_MAX + 1];
};

/* call.c, for the steps. */
/* meshlet answers the call itself (gRPC: trailers-only grpc_status; else HTTP http_status with
 * msg as the body); once the response started, a reset. */
void ml_call_answer(struct ml_call *call, int grpc_status, int http_status, const char *msg);
void ml_call_unavailable(struct ml_call *call, const char *msg);
/* Opens the upstream stream on conn (the balance's pick). 0 (open, or sent to the pick again: the
 * connection could not take it); else the call was answered. */
int ml_call_open_upstream(struct ml_call *call, struct ml_h2_conn *conn);
/* The call's deadline from route and grpc-timeout. 0; else the call was answered. */
int ml_call_arm_deadline(struct ml_call *call, const struct ml_cfg_route *route);
/* The value of the request header name (lower case), or an empty slice; borrowed from the
 * call's request headers. */
struct ml_slice ml_call_header(const struct ml_call *call, const char *name);
/* *f from the request headers h, in one walk: the first field of each name counts (as
 * ml_h2_hdrs_find finds it; names compared exactly: they arrive lower case). */
void ml_call_fields_find(const struct ml_h2_hdrs *h, struct ml_call_fields *f);
/* The listener's stream_stall_timeout check. 0; else the call was answered. */
int ml_call_arm_stall(struct ml_call *call, const struct ml_cfg_listener *lcfg);
/* The call is freed at the end of the event once nothing holds it (after a step that waited
 * answered it, or a retry could not go). */
void ml_call_maybe_done(struct ml_call *call);
/* Puts what upstream took of the request body back in front of the rest, for sending the call
 * again. 0; -ENOMEM (the call cannot go again). */
int ml_call_rewind_request(struct ml_call *call);
/* The HTTP status for meshlet's own answer with grpc_status, to a plain HTTP client. */
int ml_call_http_status(int grpc_status);

#endif
