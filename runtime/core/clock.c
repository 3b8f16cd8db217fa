#include "core/clock.h"

#include <stdbool.h>
#include <time.h>

#define US_PER_S 1000000u
#define NS_PER_US 1000u
#define US_PER_MS 1000u

/* This thread's hold: how deep, and the time the outermost one read. */
static _Thread_local unsigned int hold_depth;
static _Thread_local uint64_t held_us;

uint64_t ml_clock_read_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * US_PER_S + (uint64_t)ts.tv_nsec / NS_PER_US;
}

uint64_t ml_clock_now_us(void)
{
    return hold_depth > 0 ? held_us : ml_clock_read_us();
}

uint64_t ml_clock_now_ms(void)
{
    return ml_clock_now_us() / US_PER_MS;
}

void ml_clock_hold(void)
{
    if (hold_depth++ == 0) {
        held_us = ml_clock_read_us();
    }
}

void ml_clock_release(void)
{
    if (hold_depth > 0) {
        hold_depth--;
    }
}
