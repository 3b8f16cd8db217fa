/* The request-policy steps of a call: an ordered table (steps.c) that call.c runs when the
 * request headers came, each step one file (step_NAME.c). A step looks at the call and either
 * lets the next one run, ends the call with its own answer, or suspends it (a timer, a pending
 * pick) and later resumes the table with ml_call_steps_run or answers. How to add one:
 * runtime/balance/README.md. */
#ifndef ML_PROXY_STEP_H
#define ML_PROXY_STEP_H

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
extern const struct ml_step ml_step_route;    /* step_route.c */
extern const struct ml_step ml_step_deadline; /* step_deadline.c */
extern const struct ml_step ml_step_pick;     /* step_pick.c */

#endif
