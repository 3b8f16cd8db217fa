#ifndef ML_CORE_ARENA_T_H
#define ML_CORE_ARENA_T_H

#include <stddef.h>

struct ml_arena_chunk;

/* A bump allocator with a hard cap: everything a config snapshot owns lives in one arena and is
 * freed at once. Going past max_bytes fails like an out-of-memory, never grows further. */
struct ml_arena {
    struct ml_arena_chunk *head; /* newest chunk; allocations come from it */
    size_t used_bytes;           /* sum of chunk sizes allocated so far */
    size_t max_bytes;            /* cap on used_bytes */
};

#endif
