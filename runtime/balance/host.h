/* A host: one (cluster name, address). It outlives config snapshots: a hot apply shares it
 * between the old and the new balance, with what must survive the apply: its connection pool,
 * its health and outlier state, its counters. Refcounted: each balance whose cluster has it
 * (once committed) and each attempt on it hold a reference; a host the config removed drains
 * (ML_HOST_DRAINING: no new picks) and is freed with its last reference. */
#ifndef ML_BALANCE_HOST_H
#define ML_BALANCE_HOST_H

#include "balance/lb-t.h"

#include <stdbool.h>
#include <stdint.h>

struct ml_pool;
struct ml_loop;
struct ml_timer;

/* Why a host is not usable; any bit set and policies do not pick it. */
enum ml_host_state_bit {
    ML_HOST_UNHEALTHY = 1u << 0, /* active health check: failed unhealthy_threshold times */
    ML_HOST_EJECTED = 1u << 1,   /* outlier detection: ejected until outlier.ejected_until_ms */
    ML_HOST_DRAINING = 1u << 2,  /* no balance in force has it: its calls finish, no new ones */
};

/* Active health checking (balance/health.h). Unhealthy or not: state & ML_HOST_UNHEALTHY. */
struct ml_host_health {
    uint32_t successes;      /* consecutive, towards healthy_threshold */
    uint32_t failures;       /* consecutive, towards unhealthy_threshold */
    uint64_t checks;         /* checks done (passed or failed), for stats and /clusters */
    uint64_t check_failures; /* of those, failed */
    void *checker;           /* the health checker's own state; NULL: not checked */
};

/* Passive outlier detection (balance/outlier.c). */
struct ml_host_outlier {
    uint32_t consecutive_failures; /* since the last success, towards outlier_errors */
    uint32_t n_ejections;          /* the ejection time is outlier_ejection × this */
    uint64_t ejected_until_ms;     /* ml_time_now_ms() at which an ejection ends */
    uint64_t ejections_total;      /* times ejected since the host exists (/clusters) */
    struct ml_timer *timer;        /* ends the ejection; NULL until the first one */
};

struct ml_host_counters {
    uint32_t active;   /* attempts between pick and end (least_request reads this) */
    uint64_t calls;    /* attempts picked */
    uint64_t failures; /* attempts whose outcome ml_attempt_failed() */
};

struct ml_host {
    uint32_t refs;
    struct ml_loop *loop;
    struct ml_pool *pool; /* its connections; freed with the host */
    unsigned state;       /* enum ml_host_state_bit; 0: usable */
    struct ml_host_health health;
    struct ml_host_outlier outlier;
    struct ml_host_counters counters;
};

/* A new host (one reference) owning pool. NULL: no memory. */
struct ml_host *ml_host_new(struct ml_loop *loop, struct ml_pool *pool);
struct ml_host *ml_host_ref(struct ml_host *h);
/* Drops a reference; the last one frees the pool (closing its connections) and the host. */
void ml_host_unref(struct ml_host *h);
const char *ml_host_addr_text(const struct ml_host *h);

static inline bool ml_host_usable(const struct ml_host *h)
{
    return h->state == 0;
}
/* Sets or clears bits of h->state; when usability changed, the policy of every cluster that has
 * h hears on_host_state. */
void ml_host_state_set(struct ml_host *h, unsigned bits, bool on);

/* Whether an outcome counts as the host failing (outlier detection, the failures counter): it
 * could not be reached, reset the stream, or answered UNAVAILABLE / INTERNAL / UNKNOWN /
 * DATA_LOSS or an HTTP 5xx. Refusals (GOAWAY), cancellations and calls that never left do not. */
bool ml_attempt_failed(const struct ml_attempt_outcome *o);

#endif
