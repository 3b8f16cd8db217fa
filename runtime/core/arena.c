#include "core/arena.h"

#include <stdint.h>
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Chunks grow to this size; a larger single allocation gets a chunk of its own. */
#define ML_ARENA_CHUNK_BYTES 4096

struct ml_arena_chunk {
    struct ml_arena_chunk *next;
    size_t size; /* bytes of data[] */
    size_t off;  /* bytes of data[] handed out */
    max_align_t data[];
};

void ml_arena_init(struct ml_arena *a, size_t max_bytes)
{
    a->head = NULL;
    a->used_bytes = 0;
    a->max_bytes = max_bytes;
}

void ml_arena_deinit(struct ml_arena *a)
{
    struct ml_arena_chunk *c = a->head;

    while (c != NULL) {
        struct ml_arena_chunk *next = c->next;
        ml_free(c);
        c = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}

void *ml_arena_alloc(struct ml_arena *a, size_t n)
{
    const size_t align = _Alignof(max_align_t);
    struct ml_arena_chunk *c = a->head;
    size_t need = (n + align - 1) / align * align;
    void *p;

    if (need < n) {
        return NULL;
    }
    if (need == 0) {
        need = align;
    }
    if (c == NULL || c->size - c->off < need) {
        size_t size = need > ML_ARENA_CHUNK_BYTES ? need : ML_ARENA_CHUNK_BYTES;
        if (size > a->max_bytes - a->used_bytes || a->used_bytes > a->max_bytes) {
            return NULL;
        }
        c = ml_malloc(sizeof(*c) + size);
        if (c == NULL) {
            return NULL;
        }
        c->next = a->head;
        c->size = size;
        c->off = 0;
        a->head = c;
        a->used_bytes += size;
    }
    p = (char *)c->data + c->off;
    c->off += need;
    memset(p, 0, n);
    return p;
}

char *ml_arena_strndup(struct ml_arena *a, const char *s, size_t n)
{
    char *p = ml_arena_alloc(a, n + 1);

    if (p != NULL) {
        if (n > 0) { /* s may be NULL when n is 0 (an empty pushed INI) */
            memcpy(p, s, n);
        }
        p[n] = '\0';
    }
    return p;
}

char *ml_arena_strdup(struct ml_arena *a, const char *s)
{
    return ml_arena_strndup(a, s, strlen(s));
}
