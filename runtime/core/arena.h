#ifndef ML_CORE_ARENA_H
#define ML_CORE_ARENA_H

#include "core/arena-t.h"

#include <stddef.h>

/* Caller embeds the arena; nothing is allocated until the first ml_arena_alloc. */
void ml_arena_init(struct ml_arena *a, size_t max_bytes);
/* Frees every allocation of the arena at once. */
void ml_arena_deinit(struct ml_arena *a);

/* n zeroed bytes aligned for any type, owned by the arena; NULL when out of memory or past the
 * arena's cap. */
void *ml_arena_alloc(struct ml_arena *a, size_t n);
/* A NUL-terminated copy of s[0..n), owned by the arena; NULL as ml_arena_alloc. */
char *ml_arena_strndup(struct ml_arena *a, const char *s, size_t n);
char *ml_arena_strdup(struct ml_arena *a, const char *s);

#endif
