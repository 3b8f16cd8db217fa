#include "fleet/backoff.h"

#define SEED_FALLBACK 0x9e3779b97f4a7c15ull

uint32_t ml_fleet_backoff_delay_ms(uint32_t min_ms, uint32_t max_ms, uint32_t attempts,
                                   uint64_t r)
{
    uint64_t cap, span;

    if (min_ms == 0) {
        min_ms = 1;
    }
    if (max_ms < min_ms) {
        max_ms = min_ms;
    }
    /* min * 2^(attempts+1), saturating at max: past 2^32 the shift alone would overflow. */
    cap = attempts >= 32 ? max_ms : (uint64_t)min_ms << (attempts + 1);
    if (cap > max_ms) {
        cap = max_ms;
    }
    span = cap - min_ms + 1; /* >= 1 */
    return min_ms + (uint32_t)(r % span);
}

uint64_t ml_fleet_backoff_random(uint64_t *state)
{
    uint64_t x = *state != 0 ? *state : SEED_FALLBACK;

    /* xorshift64* (Vigna), as proxy/ uses for weighted splits. */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

void ml_fleet_backoff_set_bounds(struct ml_fleet_backoff *b, uint32_t min_ms, uint32_t max_ms)
{
    b->min_ms = min_ms != 0 ? min_ms : 1;
    b->max_ms = max_ms >= b->min_ms ? max_ms : b->min_ms;
}

void ml_fleet_backoff_init(struct ml_fleet_backoff *b, uint32_t min_ms, uint32_t max_ms,
                           uint64_t seed)
{
    ml_fleet_backoff_set_bounds(b, min_ms, max_ms);
    b->attempts = 0;
    b->rng = seed != 0 ? seed : SEED_FALLBACK;
}

uint32_t ml_fleet_backoff_next(struct ml_fleet_backoff *b)
{
    uint32_t d = ml_fleet_backoff_delay_ms(b->min_ms, b->max_ms, b->attempts,
                                           ml_fleet_backoff_random(&b->rng));

    if (b->attempts < UINT32_MAX) {
        b->attempts++;
    }
    return d;
}

void ml_fleet_backoff_reset(struct ml_fleet_backoff *b)
{
    b->attempts = 0;
}
