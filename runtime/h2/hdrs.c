#include "h2/hdrs.h"

#include "core/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

/* RFC 9113 6.5.2: a field's size in the header list is name + value + 32. */
#define FIELD_OVERHEAD 32

void ml_h2_hdrs_init(struct ml_h2_hdrs *h, size_t max_list_bytes)
{
    memset(h, 0, sizeof(*h));
    h->max_list_bytes = max_list_bytes;
}

void ml_h2_hdrs_deinit(struct ml_h2_hdrs *h)
{
    ml_free(h->fields);
    ml_free(h->bytes);
    ml_h2_hdrs_init(h, h->max_list_bytes);
}

void ml_h2_hdrs_clear(struct ml_h2_hdrs *h)
{
    h->n_fields = 0;
    h->n_bytes = 0;
    h->list_bytes = 0;
}

void ml_h2_hdrs_move(struct ml_h2_hdrs *dst, struct ml_h2_hdrs *src)
{
    struct ml_h2_hdrs old = *dst;

    /* A swap: src keeps dst's memory (emptied) for its next list, so that lists handed from
     * a stream to a call and back allocate nothing once both have grown. */
    *dst = *src;
    *src = old;
    src->max_list_bytes = dst->max_list_bytes;
    ml_h2_hdrs_clear(src);
}

void ml_h2_hdrs_trim(struct ml_h2_hdrs *h, size_t keep_bytes)
{
    if (h->cap_bytes + h->cap_fields * sizeof(*h->fields) > keep_bytes) {
        ml_h2_hdrs_deinit(h);
    }
    ml_h2_hdrs_clear(h);
}

/* Grows *p (of *cap elements of size elem) to hold at least need, doubling; the bound on the
 * list size bounds the growth. */
static int grow(void **p, size_t elem, size_t need, size_t *cap, size_t initial)
{
    size_t n = *cap != 0 ? *cap : initial;
    void *q;

    while (n < need) {
        n *= 2;
    }
    if (n == *cap) {
        return 0;
    }
    if ((q = ml_realloc(*p, n * elem)) == NULL) {
        return -ENOMEM;
    }
    *p = q;
    *cap = n;
    return 0;
}

int ml_h2_hdrs_add(struct ml_h2_hdrs *h, const uint8_t *name, size_t name_len, const uint8_t *value,
                   size_t value_len, bool never_index)
{
    size_t field_bytes = name_len + value_len + FIELD_OVERHEAD, cap;
    struct ml_h2_field *f;
    int rv;

    /* Checked piece by piece so that no sum wraps (a wrapped field_bytes would pass). */
    if (name_len > h->max_list_bytes || value_len > h->max_list_bytes - name_len ||
        FIELD_OVERHEAD > h->max_list_bytes - name_len - value_len ||
        h->list_bytes > h->max_list_bytes || field_bytes > h->max_list_bytes - h->list_bytes) {
        return -ENOBUFS;
    }
    cap = h->cap_fields;
    if ((rv = grow((void **)&h->fields, sizeof(*h->fields), h->n_fields + 1u, &cap, 16)) < 0) {
        return rv;
    }
    h->cap_fields = (uint32_t)cap;
    if ((rv = grow((void **)&h->bytes, 1, h->n_bytes + name_len + value_len, &h->cap_bytes, 512)) <
        0) {
        return rv;
    }
    f = &h->fields[h->n_fields++];
    f->name_off = (uint32_t)h->n_bytes;
    f->name_len = (uint32_t)name_len;
    memcpy(h->bytes + h->n_bytes, name, name_len);
    h->n_bytes += name_len;
    f->value_off = (uint32_t)h->n_bytes;
    f->value_len = (uint32_t)value_len;
    memcpy(h->bytes + h->n_bytes, value, value_len);
    h->n_bytes += value_len;
    f->never_index = never_index;
    f->from_peer = 0;
    h->list_bytes += field_bytes;
    return 0;
}

int ml_h2_hdrs_add_str(struct ml_h2_hdrs *h, const char *name, const char *value)
{
    int rv = ml_h2_hdrs_add(h, (const uint8_t *)name, strlen(name), (const uint8_t *)value,
                            strlen(value), false);

    if (rv == 0) {
        const struct ml_h2_field *f = &h->fields[h->n_fields - 1];

        /* Lists are sent as they are (h2/stream.c: nghttp2 does not lower-case them): a name
         * meshlet makes is made lower case here, as HTTP/2 wants it. */
        for (uint32_t i = 0; i < f->name_len; i++) {
            h->bytes[f->name_off + i] = (uint8_t)tolower(h->bytes[f->name_off + i]);
        }
    }
    return rv;
}

struct ml_slice ml_h2_hdrs_name(const struct ml_h2_hdrs *h, uint32_t i)
{
    return (struct ml_slice){h->bytes + h->fields[i].name_off, h->fields[i].name_len};
}

struct ml_slice ml_h2_hdrs_value(const struct ml_h2_hdrs *h, uint32_t i)
{
    return (struct ml_slice){h->bytes + h->fields[i].value_off, h->fields[i].value_len};
}

int ml_h2_hdrs_find(const struct ml_h2_hdrs *h, const char *name, uint32_t from)
{
    size_t len = strlen(name);

    for (uint32_t i = from; i < h->n_fields; i++) {
        if (h->fields[i].name_len == len &&
            strncasecmp((const char *)h->bytes + h->fields[i].name_off, name, len) == 0) {
            return (int)i;
        }
    }
    return -ENOENT;
}

/* s is lit (of lit_len bytes), case-insensitively. */
static bool slice_is(struct ml_slice s, const char *lit, size_t lit_len)
{
    return s.n == lit_len && strncasecmp((const char *)s.p, lit, lit_len) == 0;
}

#define LIT(s) s, sizeof(s) - 1

bool ml_h2_field_is_connection_specific(struct ml_slice name, struct ml_slice value)
{
    /* By length first: this runs for every field of every header block sent, and few names
     * have the length of a forbidden one (pseudo-headers such as :method and :authority do). */
    if (name.n > 0 && name.p[0] == ':') {
        return false;
    }
    switch (name.n) {
    case 2:
        return slice_is(name, LIT("te")) && !slice_is(value, LIT("trailers"));
    case 7:
        return slice_is(name, LIT("upgrade"));
    case 10:
        return slice_is(name, LIT("connection")) || slice_is(name, LIT("keep-alive"));
    case 14:
        return slice_is(name, LIT("http2-settings"));
    case 16:
        return slice_is(name, LIT("proxy-connection"));
    case 17:
        return slice_is(name, LIT("transfer-encoding"));
    default:
        return false;
    }
}
