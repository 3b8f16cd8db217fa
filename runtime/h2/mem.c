/* nghttp2's allocations for one connection (its nghttp2_mem): through ml_malloc, so they are
 * counted and fail in the torture tests like meshlet's own, and kept on size-class spare lists
 * when freed, so that a warm connection's streams, queued frames and header copies reuse the
 * blocks the previous ones left instead of going back to the heap on every call. The spares are
 * bounded by H2_MEM_SPARE_BYTES and go back to the heap with the connection. */
#include "h2/h2_int.h"

#include "core/alloc.h"

#include <stdint.h>
#include <string.h>

/* Each block starts with its usable size (a class size, or the exact size of a larger block),
 * aligned for any type like malloc's. */
struct h2_block {
    _Alignas(max_align_t) size_t size;
    struct h2_block *next; /* on a spare list */
};

static size_t class_bytes(unsigned int cls)
{
    return (size_t)H2_MEM_MIN_BYTES << cls;
}

/* The smallest class that holds n bytes; H2_MEM_N_CLASSES when none does. Runs on every
 * allocation and free nghttp2 makes: the class is the bit length of (n - 1) / 32, so no loop. */
static unsigned int class_of(size_t n)
{
    size_t units = n > H2_MEM_MIN_BYTES ? (n - 1) / H2_MEM_MIN_BYTES : 0;
    unsigned int cls =
        units == 0 ? 0
                   : (unsigned int)(sizeof(long long) * 8) - (unsigned int)__builtin_clzll(units);

    return cls < H2_MEM_N_CLASSES ? cls : H2_MEM_N_CLASSES;
}

void *ml_h2_mem_malloc(size_t size, void *user)
{
    struct ml_h2_mem *m = user;
    unsigned int cls = class_of(size);
    struct h2_block *b;

    if (cls < H2_MEM_N_CLASSES && (b = m->spare[cls]) != NULL) {
        m->spare[cls] = b->next;
        m->spare_bytes -= b->size;
        return b + 1;
    }
    size = cls < H2_MEM_N_CLASSES ? class_bytes(cls) : size;
    if (size > SIZE_MAX - sizeof(*b) || (b = ml_malloc(sizeof(*b) + size)) == NULL) {
        return NULL;
    }
    b->size = size;
    return b + 1;
}

void ml_h2_mem_free(void *ptr, void *user)
{
    struct ml_h2_mem *m = user;
    struct h2_block *b;
    unsigned int cls;

    if (ptr == NULL) {
        return;
    }
    b = (struct h2_block *)ptr - 1;
    cls = class_of(b->size);
    if (cls < H2_MEM_N_CLASSES && class_bytes(cls) == b->size &&
        m->spare_bytes + b->size <= H2_MEM_SPARE_BYTES) {
        b->next = m->spare[cls];
        m->spare[cls] = b;
        m->spare_bytes += b->size;
        return;
    }
    ml_free(b);
}

void *ml_h2_mem_calloc(size_t nmemb, size_t size, void *user)
{
    void *p;

    if (size != 0 && nmemb > SIZE_MAX / size) {
        return NULL;
    }
    if ((p = ml_h2_mem_malloc(nmemb * size, user)) != NULL) {
        memset(p, 0, nmemb * size);
    }
    return p;
}

void *ml_h2_mem_realloc(void *ptr, size_t size, void *user)
{
    struct h2_block *b, *q;
    void *p;

    if (ptr == NULL) {
        return ml_h2_mem_malloc(size, user);
    }
    b = (struct h2_block *)ptr - 1;
    if (size <= b->size) {
        return ptr; /* nghttp2 only grows its buffers; a shrink keeps the block */
    }
    if (class_of(b->size) == H2_MEM_N_CLASSES && class_of(size) == H2_MEM_N_CLASSES) {
        /* Both beyond the classes: let the heap move it (no spare list is involved). */
        if (size > SIZE_MAX - sizeof(*b) || (q = ml_realloc(b, sizeof(*b) + size)) == NULL) {
            return NULL;
        }
        q->size = size;
        return q + 1;
    }
    if ((p = ml_h2_mem_malloc(size, user)) == NULL) {
        return NULL;
    }
    memcpy(p, ptr, b->size);
    ml_h2_mem_free(ptr, user);
    return p;
}

void ml_h2_mem_init(struct ml_h2_mem *m)
{
    memset(m, 0, sizeof(*m));
}

void ml_h2_mem_deinit(struct ml_h2_mem *m)
{
    for (unsigned int cls = 0; cls < H2_MEM_N_CLASSES; cls++) {
        while (m->spare[cls] != NULL) {
            struct h2_block *b = m->spare[cls];

            m->spare[cls] = b->next;
            ml_free(b);
        }
    }
    m->spare_bytes = 0;
}
