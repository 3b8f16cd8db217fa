/* meshlet's random source for spreading load (weighted splits, LB policies, later jitter and
 * fault injection): xorshift64* (Vigna). Not for secrets. One state per owner (the proxy has
 * one); tests seed it with a fixed value to get the same sequence every run. */
#ifndef ML_CORE_RAND_H
#define ML_CORE_RAND_H

#include <stdint.h>

struct ml_rand {
    uint64_t s; /* never 0 */
};

/* A fixed seed (tests); 0 is replaced by a fixed non-zero constant. */
void ml_rand_seed(struct ml_rand *r, uint64_t seed);
/* A seed from getrandom(), or the clock and pid when that fails. */
void ml_rand_seed_os(struct ml_rand *r);
/* The seed ML_RAND_SEED_ENV names (a decimal number), so statistical tests of the whole binary
 * get the same sequence every run; else ml_rand_seed_os. */
#define ML_RAND_SEED_ENV "MESHLET_RANDOM_SEED"
void ml_rand_seed_env_or_os(struct ml_rand *r);
/* The stream ml_rand_seed_env_or_os seeds on the calling thread from now on: with
 * ML_RAND_SEED_ENV, stream k > 0 starts from seed + k * 2^64/phi, so each of [node] workers
 * draws its own sequence and every run draws the same ones (stream 0 is the seed itself, as
 * with one worker). The node sets it around making worker k's proxy. */
void ml_rand_set_stream(unsigned int stream);
/* A uniformly random 32-bit number. */
uint32_t ml_rand_u32(struct ml_rand *r);
/* A uniformly random number in [0, n); 0 when n is 0. */
uint32_t ml_rand_below(struct ml_rand *r, uint32_t n);

#endif
