/* The request-policy steps of a call: an ordered table (steps.c) that call.c runs when the
 * request headers came, each step one file (step_NAME.c). A step looks at the call and either
 * lets the next one run, ends the call with its own answer, or suspends it (a timer, a pending
 * pick) and later resumes the table with ml_call_steps_run or answers. How to add one:
 * runtime/balance/README.md. */
#ifndef ML_PROXY_STEP_H
#define ML_PROXY_STEP_H

#include <stdbool.h>

struct ml_call;

enum ml_step_rv {
    ML_STEP_CONTINUE, /* the next step runs */
    ML_STEP_ANSWERED, /* the step ended the call (ml_call_answer: a gRPC status or HTTP error) */
    ML_STEP_WAIT,     /* the step holds the call; it resumes it (ml_call_steps_run) or answers */
};

struct ml_step {
    const char *name; /* for logs */
    /* Everything a step needs is on the call (its snapshot, listener, route, cluster). */
    enum ml_step_rv (*run)(struct ml_call *call);
};

/* Runs the steps from call->next_step on, until one answers or waits, or the last is done. */
void ml_call_steps_run(struct ml_call *call);

/* The steps (one file each). */
extern const struct ml_step ml_step_health;     /* step_health.c */
extern const struct ml_step ml_step_route;      /* step_route.c */
extern const struct ml_step ml_step_deadline;   /* step_deadline.c */
extern const struct ml_step ml_step_authz;      /* step_authz.c */
extern const struct ml_step ml_step_rate_limit; /* step_rate_limit.c */
extern const struct ml_step ml_step_fault;      /* step_fault.c */
extern const struct ml_step ml_step_pick;       /* step_pick.c */

/* step_retry.c: not a step before the upstream but the end of an attempt (call.c calls it). */
enum ml_retry_cause {
    ML_RETRY_REFUSED,        /* REFUSED_STREAM / GOAWAY: never processed, always sent again */
    ML_RETRY_RESET,          /* the stream was reset or its connection lost before a response */
    ML_RETRY_CONNECT_FAILED, /* the host's connection never came up */
    ML_RETRY_STATUS,         /* a trailers-only answer with a grpc-status */
};
/* Whether an attempt ending as cause (grpc_status for ML_RETRY_STATUS) would be sent again,
 * as things are now: call.c holds a trailers-only answer back when it would. */
bool ml_call_retry_wanted(const struct ml_call *call, enum ml_retry_cause cause, int grpc_status);
/* The attempt just ended as cause: true when the call goes again (a replay at once, a retry
 * after its backoff; the pick step answers it if it then cannot go); false: the caller ends
 * it (its failure stands). */
bool ml_call_retry(struct ml_call *call, enum ml_retry_cause cause, int grpc_status);

#endif
