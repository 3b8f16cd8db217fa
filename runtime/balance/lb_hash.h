/* What the hash policies (lb_ring_hash.c, lb_maglev.c) share: one 64-bit hash for call keys and
 * host addresses, and the pick for a call without a key. */
#ifndef ML_BALANCE_LB_HASH_H
#define ML_BALANCE_LB_HASH_H

#include "balance/lb-t.h"

#include <stddef.h>
#include <stdint.h>

/* A 64-bit hash of n bytes under seed (FNV-1a, then a splitmix64 finish so that keys differing
 * in one byte land far apart). Stable across runs and builds: a key maps to the same host in
 * every meshlet with the same endpoints. Not for secrets. */
uint64_t ml_lb_hash(const void *p, size_t n, uint64_t seed);

/* The hash of host's address (ip:port), the host's identity on a ring or in a Maglev table: it
 * does not change when other endpoints come or go, so only their keys move. */
uint64_t ml_lb_hash_host(const struct ml_lb *lb, uint32_t host, uint64_t seed);

#endif
