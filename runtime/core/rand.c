/* core/rand.h: xorshift64*, plenty for spreading calls. */
#include "core/rand.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Any odd constant would do: xorshift must not start at 0 (it would stay there). */
#define RAND_ZERO_SEED 0x9E3779B97F4A7C15ULL

void ml_rand_seed(struct ml_rand *r, uint64_t seed)
{
    r->s = seed != 0 ? seed : RAND_ZERO_SEED;
}

void ml_rand_seed_os(struct ml_rand *r)
{
    struct timespec ts;
    uint64_t seed = 0;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
    }
    ml_rand_seed(r, seed);
}

uint32_t ml_rand_u32(struct ml_rand *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 0x2545F4914F6CDD1DULL) >> 32);
}

uint32_t ml_rand_below(struct ml_rand *r, uint32_t n)
{
    /* Lemire's multiply-shift: the bias is at most n / 2^32, far below what a balancer sees. */
    return (uint32_t)(((uint64_t)ml_rand_u32(r) * n) >> 32);
}

/* Per thread: workers are made one after another, each with its stream (ml_rand_set_stream). */
static _Thread_local unsigned int rand_stream;

void ml_rand_set_stream(unsigned int stream)
{
    rand_stream = stream;
}

void ml_rand_seed_env_or_os(struct ml_rand *r)
{
    const char *v = getenv(ML_RAND_SEED_ENV);
    char *end;
    unsigned long long seed;

    if (v != NULL && *v != '\0') {
        errno = 0;
        seed = strtoull(v, &end, 10);
        if (errno == 0 && *end == '\0') {
            ml_rand_seed(r, seed + (uint64_t)rand_stream * RAND_ZERO_SEED);
            return;
        }
    }
    ml_rand_seed_os(r);
}
