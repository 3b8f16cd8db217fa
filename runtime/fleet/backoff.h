/* The fleet client's reconnect delays (README.md "Rules"): exponential backoff with full jitter
 * between the [fleet] backoff bounds. Pure arithmetic over a seedable random source, so a unit
 * test can pin every draw; no I/O, no clock.
 *
 * The delay before attempt k+1 (k = failed or short-lived attempts since the last reset) is drawn
 * uniformly from [min, min(max, min * 2^(k+1))]. Its floor is the lower bound itself, never 0:
 * a controller that accepts and closes at once (or refuses TLS, or sends garbage) costs at least
 * `min` per attempt and, after a few attempts, about (min+max)/2 on average. The caller resets the
 * count only after a connection stayed up for `max`, so flapping never brings the delay back
 * down. */
#ifndef ML_FLEET_BACKOFF_H
#define ML_FLEET_BACKOFF_H

#include <stdint.h>

struct ml_fleet_backoff {
    uint32_t min_ms, max_ms; /* the [fleet] backoff bounds; 1 <= min_ms <= max_ms */
    uint32_t attempts;       /* delays drawn since the last reset */
    uint64_t rng;            /* xorshift64* state; never 0 */
};

/* The delay for the attempt after `attempts` earlier ones, from the random number r (uniform
 * over 64 bits). Never below min_ms (nor 1), never above max_ms. */
uint32_t ml_fleet_backoff_delay_ms(uint32_t min_ms, uint32_t max_ms, uint32_t attempts,
                                   uint64_t r);

/* Next number of the xorshift64* generator at *state (a 0 state is replaced by a constant). Not
 * for secrets: it only spreads reconnects of a fleet apart. */
uint64_t ml_fleet_backoff_random(uint64_t *state);

/* Bounds (clamped so that 1 <= min <= max) and a seed (0: a fixed one). */
void ml_fleet_backoff_init(struct ml_fleet_backoff *b, uint32_t min_ms, uint32_t max_ms,
                           uint64_t seed);
/* New bounds for the delays to come; the attempt count is kept. */
void ml_fleet_backoff_set_bounds(struct ml_fleet_backoff *b, uint32_t min_ms, uint32_t max_ms);
/* Draws the next delay and counts the attempt. */
uint32_t ml_fleet_backoff_next(struct ml_fleet_backoff *b);
/* A connection stayed up long enough: the next delay starts from the bottom again. */
void ml_fleet_backoff_reset(struct ml_fleet_backoff *b);

#endif
