/* All of meshlet's heap allocations go through here, so that tests can make the Nth one fail
 * (runtime/STYLE.md: unit tests pass when each allocation fails in turn). */
#ifndef ML_CORE_ALLOC_H
#define ML_CORE_ALLOC_H

#include <stddef.h>

void *ml_malloc(size_t n);
void *ml_calloc(size_t count, size_t n);
void *ml_realloc(void *p, size_t n);
void ml_free(void *p);

/* Heap allocations made so far (ml_malloc, ml_calloc, ml_realloc; frees not counted), by every
 * thread: the meshlet_heap_allocations_total stat. */
unsigned long ml_alloc_count(void);

/* Test hook: after `n` more successful allocations every further one fails (returns NULL);
 * n < 0 turns failures off. Returns how many allocations were made since the last call. Not for
 * production code. */
long ml_alloc_fail_after(long n);

#endif
