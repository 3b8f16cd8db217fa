#ifndef ML_H2_HDRS_T_H
#define ML_H2_HDRS_T_H

#include "core/slice-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One header field: offsets into the list's bytes (stable across growth). */
struct ml_h2_field {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
    uint8_t never_index; /* the sender marked it sensitive (HPACK "never indexed"); kept on relay */
    /* nghttp2 received it (h2/conn.c): it refuses a header block with any field RFC 9113 8.2.2
     * forbids (te other than "trailers" included) but HTTP2-Settings, so sending it again needs
     * only that one checked (h2/stream.c). */
    uint8_t from_peer;
};

/* A header list (request or response headers, or trailers) as it arrived or will be sent:
 * fields in order, repeated names kept, names and values as opaque bytes. Bounded by
 * max_list_bytes counted as HTTP/2 does (SETTINGS_MAX_HEADER_LIST_SIZE: name + value + 32 per
 * field); memory grows with use up to that bound and no further. */
struct ml_h2_hdrs {
    struct ml_h2_field *fields;
    uint32_t n_fields;
    uint32_t cap_fields;
    uint8_t *bytes; /* names and values, back to back */
    size_t n_bytes;
    size_t cap_bytes;
    size_t list_bytes;     /* HTTP/2 header list size of what is held */
    size_t max_list_bytes; /* cap on list_bytes */
};

/* A field to send by reference: name and value point at bytes someone else owns (borrowed by
 * the call that takes it), so that a list made of another list's fields and a few new ones
 * (proxy/call.c's upstream request) is not copied first. */
struct ml_h2_field_ref {
    struct ml_slice name;
    struct ml_slice value;
    bool never_index;
    bool from_peer; /* as struct ml_h2_field's */
};

#endif
