/* Header lists: bounded, ordered, byte-exact (h2/hdrs-t.h). */
#ifndef ML_H2_HDRS_H
#define ML_H2_HDRS_H

#include "core/slice-t.h"
#include "h2/hdrs-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Caller embeds the list; nothing is allocated until the first add. */
void ml_h2_hdrs_init(struct ml_h2_hdrs *h, size_t max_list_bytes);
void ml_h2_hdrs_deinit(struct ml_h2_hdrs *h);
/* Empties the list, keeping its memory for reuse. */
void ml_h2_hdrs_clear(struct ml_h2_hdrs *h);
/* Moves src's fields (and memory) into dst, whose fields are dropped; src is left empty, with
 * dst's memory for reuse. */
void ml_h2_hdrs_move(struct ml_h2_hdrs *dst, struct ml_h2_hdrs *src);
/* Empties the list, and frees its memory when it holds more than keep_bytes (a list kept for
 * reuse does not keep what one large header block grew it to). */
void ml_h2_hdrs_trim(struct ml_h2_hdrs *h, size_t keep_bytes);

/* Appends a field (copied). 0; -ENOBUFS past max_list_bytes (nothing added); -ENOMEM. The name
 * must be lower case: lists are sent as they are (h2/stream.c), and what nghttp2 receives is
 * (it refuses upper case in HTTP/2). */
int ml_h2_hdrs_add(struct ml_h2_hdrs *h, const uint8_t *name, size_t name_len, const uint8_t *value,
                   size_t value_len, bool never_index);
/* The same from C strings; the name is made lower case. */
int ml_h2_hdrs_add_str(struct ml_h2_hdrs *h, const char *name, const char *value);

/* Field i's name and value, owned by h and valid until it changes. */
struct ml_slice ml_h2_hdrs_name(const struct ml_h2_hdrs *h, uint32_t i);
struct ml_slice ml_h2_hdrs_value(const struct ml_h2_hdrs *h, uint32_t i);

/* Index of the first field named name (compared case-insensitively) at or after from, or
 * -ENOENT. */
int ml_h2_hdrs_find(const struct ml_h2_hdrs *h, const char *name, uint32_t from);

/* true for the fields HTTP/2 forbids (RFC 9113 8.2.2): connection-specific ones, and te with a
 * value other than "trailers". */
bool ml_h2_field_is_connection_specific(struct ml_slice name, struct ml_slice value);

#endif
