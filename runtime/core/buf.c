#include "core/buf.h"

#include "core/alloc.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Bytes per chunk: a whole HTTP/2 DATA frame of the default size fits in two. */
#define ML_BUF_CHUNK_BYTES 8192

struct ml_buf_chunk {
    struct ml_buf_chunk *next;
    size_t cap;   /* bytes of data[]: ML_BUF_CHUNK_BYTES, or ML_BUF_SMALL_CHUNK_BYTES */
    size_t start; /* first unread byte of data[] */
    size_t end;   /* one past the last written byte of data[] */
    uint8_t data[];
};

void ml_buf_init(struct ml_buf *b, size_t max_bytes)
{
    ml_buf_init_spare(b, max_bytes, NULL);
}

void ml_buf_init_spare(struct ml_buf *b, size_t max_bytes, struct ml_buf_spare *spare)
{
    b->head = b->tail = NULL;
    b->len = 0;
    b->max_bytes = max_bytes;
    b->spare = spare;
}

void ml_buf_spare_init(struct ml_buf_spare *s, size_t max_chunks, size_t max_small)
{
    memset(s, 0, sizeof(*s));
    s->max_chunks = max_chunks;
    s->max_small = max_small;
}

static void chunks_free(struct ml_buf_chunk *c)
{
    while (c != NULL) {
        struct ml_buf_chunk *next = c->next;

        ml_free(c);
        c = next;
    }
}

void ml_buf_spare_deinit(struct ml_buf_spare *s)
{
    chunks_free(s->chunks);
    chunks_free(s->small);
    s->chunks = s->small = NULL;
    s->n_chunks = s->n_small = 0;
}

/* A chunk for b: small for the first one of a buffer whose spare keeps small ones (most
 * bodies are one small message), else ML_BUF_CHUNK_BYTES; from the spare when it has one. */
static struct ml_buf_chunk *chunk_new(struct ml_buf *b, bool first)
{
    struct ml_buf_spare *s = b->spare;
    bool small = first && s != NULL && s->max_small > 0;
    struct ml_buf_chunk **list = s == NULL ? NULL : small ? &s->small : &s->chunks;
    size_t cap = small ? ML_BUF_SMALL_CHUNK_BYTES : ML_BUF_CHUNK_BYTES;
    struct ml_buf_chunk *c;

    if (list != NULL && *list != NULL) {
        c = *list;
        *list = c->next;
        *(small ? &s->n_small : &s->n_chunks) -= 1;
    } else if ((c = ml_malloc(sizeof(*c) + cap)) == NULL) {
        return NULL;
    }
    c->next = NULL;
    c->cap = cap;
    c->start = c->end = 0;
    return c;
}

static void chunk_free(struct ml_buf *b, struct ml_buf_chunk *c)
{
    struct ml_buf_spare *s = b->spare;
    bool small = c->cap == ML_BUF_SMALL_CHUNK_BYTES;

    if (s != NULL && (small ? s->n_small < s->max_small : s->n_chunks < s->max_chunks)) {
        c->next = small ? s->small : s->chunks;
        *(small ? &s->small : &s->chunks) = c;
        *(small ? &s->n_small : &s->n_chunks) += 1;
        return;
    }
    ml_free(c);
}

void ml_buf_deinit(struct ml_buf *b)
{
    struct ml_buf_chunk *c = b->head;

    while (c != NULL) {
        struct ml_buf_chunk *next = c->next;
        chunk_free(b, c);
        c = next;
    }
    b->head = b->tail = NULL;
    b->len = 0;
}

int ml_buf_append(struct ml_buf *b, const uint8_t *p, size_t n)
{
    struct ml_buf_chunk *fresh = NULL, **link = &fresh, *c;
    size_t room = b->tail != NULL ? b->tail->cap - b->tail->end : 0, take;

    if (n > b->max_bytes - b->len) {
        return -ENOBUFS;
    }
    /* Allocate every chunk needed first, so that a failure appends nothing. */
    for (size_t have = room; have < n; have += c->cap) {
        if ((c = chunk_new(b, b->tail == NULL && fresh == NULL)) == NULL) {
            while (fresh != NULL) {
                c = fresh->next;
                chunk_free(b, fresh);
                fresh = c;
            }
            return -ENOMEM;
        }
        *link = c;
        link = &c->next;
    }
    b->len += n;
    if (room > 0) {
        take = room < n ? room : n;
        memcpy(b->tail->data + b->tail->end, p, take);
        b->tail->end += take;
        p += take;
        n -= take;
    }
    for (c = fresh; c != NULL; c = c->next) {
        take = n < c->cap ? n : c->cap;
        memcpy(c->data, p, take);
        c->end = take;
        p += take;
        n -= take;
        if (b->tail != NULL) {
            b->tail->next = c;
        } else {
            b->head = c;
        }
        b->tail = c;
    }
    return 0;
}

size_t ml_buf_read(struct ml_buf *b, uint8_t *out, size_t cap)
{
    size_t done = 0;

    while (done < cap && b->head != NULL) {
        struct ml_buf_chunk *c = b->head;
        size_t take = c->end - c->start;

        if (take > cap - done) {
            take = cap - done;
        }
        memcpy(out + done, c->data + c->start, take);
        c->start += take;
        done += take;
        if (c->start == c->end) {
            b->head = c->next;
            if (b->head == NULL) {
                b->tail = NULL;
            }
            chunk_free(b, c);
        }
    }
    b->len -= done;
    return done;
}
