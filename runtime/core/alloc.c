#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>

/* Test hook state. Process-wide on purpose: it stands in for the allocator, which is too. */
static long fail_budget = -1; /* allocations left before failing; < 0 = never fail */
static long n_allocs;         /* allocations since the last ml_alloc_fail_after */
/* Every allocation since the start, for the meshlet_heap_allocations_total stat: the proof that
 * a warm call path allocates nothing. Atomic because every worker's loop allocates through here;
 * relaxed, because it orders nothing. */
static atomic_ulong n_total;

static int should_fail(void)
{
    atomic_fetch_add_explicit(&n_total, 1, memory_order_relaxed);
    /* [node] workers > 1: every loop allocates; a relaxed add keeps the count whole */
    __atomic_fetch_add(&n_allocs, 1, __ATOMIC_RELAXED);
    if (fail_budget < 0) {
        return 0;
    }
    if (fail_budget == 0) {
        return 1;
    }
    fail_budget--;
    return 0;
}

void *ml_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n);
}

void *ml_calloc(size_t count, size_t n)
{
    return should_fail() ? NULL : calloc(count, n);
}

void *ml_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n);
}

void ml_free(void *p)
{
    free(p);
}

long ml_alloc_fail_after(long n)
{
    long made = __atomic_exchange_n(&n_allocs, 0, __ATOMIC_RELAXED);

    fail_budget = n;
    return made;
}

unsigned long ml_alloc_count(void)
{
    return atomic_load_explicit(&n_total, memory_order_relaxed);
}
