/* GET /fleet: every node the table remembers, as JSON (runtime/fleet/README.md, "meshlet
 * controller"):
 *
 *   {"nodes":[{"id":..,"board":..,"version":..,"features":[..],"connected":true,
 *              "config_version":..,"last_nack":{"version":..,"transient":..,"error":..}|null,
 *              "last_status":{"config_version":..,"uptime_s":..,"calls_total":..,
 *                             "calls_failed":..,"endpoints_healthy":..,
 *                             "endpoints_total":..}|null,
 *              "labels":[..],"state":"SYNCED|STALE|NACKED|OFFLINE","running_version":..,
 *              "desired_version":..|null,"file":..|null,"rollout_stage":N|null,
 *              "last_seen_s":..,"connected_since_s":..}],
 *    "rollouts":[{"file":..,"state":..,"stage":N,"stages":N,"stable":..,"target":..,
 *                 "previous":..,"nodes":N,"nodes_done":N,"halt":..}]}
 *
 * ?label=KEY=VALUE and ?state=synced|stale|nacked|offline keep only the nodes that match.
 *
 * Strings come from nodes and are escaped as RFC 8259 says (quote, backslash, control
 * characters); valid UTF-8 passes as it is, any other byte >= 0x80 becomes U+FFFD, so the
 * answer is always valid JSON whatever a node sent.
 *
 * Bounded: every string but a Nack's error is bounded by the wire (ML_CTL_TEXT_MAX and the
 * feature bounds) and at most 6 bytes escaped per byte; the error is cut at
 * ML_CTL_JSON_ERROR_MAX_BYTES of escaped text with ML_CTL_JSON_CUT_MARKER. So a record never
 * passes ML_CTL_JSON_NODE_MAX_BYTES and a full table never passes ML_CTL_MAX_JSON_BYTES: nodes
 * cannot turn GET /fleet into a 500 by what they send. */
#include "controller/controller_int.h"

#include "core/alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FIRST_BYTES 4096
/* The most one byte of a node's string takes escaped ("\\u001f"). */
#define ESCAPED_MAX 6
/* A string of n bytes at most, escaped and quoted. */
#define STRING_MAX(n) ((n)*ESCAPED_MAX + 2)
/* Keys, punctuation, booleans, null and the numbers of one record (five of 20 digits at most),
 * with room to spare. */
#define RECORD_FRAME_BYTES 512

/* The worst case of one record, from the bounds of what it holds. */
#define NODE_WORST_BYTES                                                                           \
    (STRING_MAX(ML_CTL_NODE_ID_MAX) + 3 * STRING_MAX(ML_CTL_TEXT_MAX) +                            \
     ML_CTL_FEATURES_MAX * (STRING_MAX(ML_CTL_FEATURE_MAX) + 1) + STRING_MAX(ML_CTL_TEXT_MAX) +    \
     ML_CTL_JSON_ERROR_MAX_BYTES + sizeof(ML_CTL_JSON_CUT_MARKER) + 2 +                            \
     STRING_MAX(ML_CTL_TEXT_MAX) + RECORD_FRAME_BYTES +                                            \
     ML_CTL_LABELS_MAX * (STRING_MAX(ML_CTL_LABEL_MAX) + 1) + 3 * STRING_MAX(ML_CTL_TEXT_MAX))
_Static_assert(NODE_WORST_BYTES <= ML_CTL_JSON_NODE_MAX_BYTES,
               "a node's record fits ML_CTL_JSON_NODE_MAX_BYTES");
_Static_assert((uint64_t)ML_CTL_MAX_NODES *(ML_CTL_JSON_NODE_MAX_BYTES + 1) + 64 <=
                   ML_CTL_MAX_JSON_BYTES,
               "a full node table fits ML_CTL_MAX_JSON_BYTES");

/* A growing buffer, capped at ML_CTL_MAX_JSON_BYTES; the first failure sticks. */
struct out {
    char *p;
    size_t n, cap;
    int error; /* 0, -ENOMEM or -ENOBUFS */
};

static bool reserve(struct out *o, size_t more)
{
    size_t cap = o->cap != 0 ? o->cap : FIRST_BYTES;
    char *p;

    if (o->error != 0) {
        return false;
    }
    if (o->n + more + 1 <= o->cap) {
        return true;
    }
    while (cap < o->n + more + 1) {
        cap *= 2;
    }
    if (cap > ML_CTL_MAX_JSON_BYTES) {
        if (o->n + more + 1 > ML_CTL_MAX_JSON_BYTES) {
            o->error = -ENOBUFS;
            return false;
        }
        cap = ML_CTL_MAX_JSON_BYTES;
    }
    if ((p = ml_realloc(o->p, cap)) == NULL) {
        o->error = -ENOMEM;
        return false;
    }
    o->p = p;
    o->cap = cap;
    return true;
}

static void put(struct out *o, const char *s)
{
    size_t n = strlen(s);

    if (reserve(o, n)) {
        memcpy(o->p + o->n, s, n + 1);
        o->n += n;
    }
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char buf[256]; /* numbers only */
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    put(o, buf);
}

/* Length of the valid UTF-8 sequence at c (lead byte >= 0x80), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *c)
{
    size_t n;
    uint32_t cp;

    if (c[0] >= 0xc2 && c[0] <= 0xdf) {
        n = 2;
        cp = c[0] & 0x1f;
    } else if (c[0] >= 0xe0 && c[0] <= 0xef) {
        n = 3;
        cp = c[0] & 0x0f;
    } else if (c[0] >= 0xf0 && c[0] <= 0xf4) {
        n = 4;
        cp = c[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((c[i] & 0xc0) != 0x80) {
            return 0; /* also stops at the NUL */
        }
        cp = cp << 6 | (c[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0; /* overlong, out of range, or a surrogate */
    }
    return n;
}

/* The escaped text of the character at c into esc (NUL-terminated); how many bytes of c it
 * stands for. */
static size_t escape_one(const unsigned char *c, char esc[8])
{
    size_t n;

    if (*c >= 0x80) {
        if ((n = utf8_len(c)) == 0) {
            snprintf(esc, 8, "\\ufffd");
            return 1;
        }
        memcpy(esc, c, n);
        esc[n] = '\0';
        return n;
    }
    switch (*c) {
    case '"':
        snprintf(esc, 8, "\\\"");
        break;
    case '\\':
        snprintf(esc, 8, "\\\\");
        break;
    case '\n':
        snprintf(esc, 8, "\\n");
        break;
    case '\r':
        snprintf(esc, 8, "\\r");
        break;
    case '\t':
        snprintf(esc, 8, "\\t");
        break;
    default:
        if (*c < 0x20 || *c == 0x7f) {
            snprintf(esc, 8, "\\u%04x", *c);
        } else {
            esc[0] = (char)*c;
            esc[1] = '\0';
        }
    }
    return 1;
}

/* s as a JSON string. With max_bytes (0: no cap), the escaped text between the quotes stops at
 * the last whole character within max_bytes and ends with ML_CTL_JSON_CUT_MARKER. */
static void put_string_max(struct out *o, const char *s, size_t max_bytes)
{
    const unsigned char *c = (const unsigned char *)s;
    size_t used = 0;
    char esc[8];

    put(o, "\"");
    while (*c != '\0') {
        size_t n = escape_one(c, esc);
        size_t len = strlen(esc);

        if (max_bytes != 0 && used + len > max_bytes) {
            put(o, ML_CTL_JSON_CUT_MARKER);
            break;
        }
        put(o, esc);
        used += len;
        c += n;
    }
    put(o, "\"");
}

static void put_string(struct out *o, const char *s)
{
    put_string_max(o, s, 0);
}

static void put_key(struct out *o, const char *key)
{
    put_string(o, key);
    put(o, ":");
}

/* What the rollout and the clock say about n (after last_status). */
static void put_extra(struct out *o, const struct ml_ctl *ctl, const struct ml_ctl_node *n)
{
    const struct ml_ctl_rev *d = ml_ctl_rollout_desired(ctl, n);
    const struct ml_ctl_file *f = n->serving;

    put_key(o, "labels");
    put(o, "[");
    for (size_t i = 0; i < n->n_labels; i++) {
        put(o, i > 0 ? "," : "");
        put_string(o, n->labels[i]);
    }
    put(o, "],");
    put_key(o, "state");
    put_string(o, ml_ctl_node_state(ctl, n));
    put(o, ",");
    put_key(o, "running_version");
    put_string(o, n->config_version);
    put(o, ",");
    put_key(o, "desired_version");
    if (d != NULL) {
        put_string(o, d->version);
    } else {
        put(o, "null");
    }
    put(o, ",");
    put_key(o, "file");
    if (f != NULL) {
        put_string(o, f->name);
    } else {
        put(o, "null");
    }
    put(o, ",");
    put_key(o, "rollout_stage");
    if (f != NULL && (f->ro.state == ML_CTL_RO_ROLLING || f->ro.state == ML_CTL_RO_HALTED) &&
        strcmp(n->member_of, f->ro.target.version) == 0) {
        putf(o, "%u", f->ro.stage + 1);
    } else {
        put(o, "null");
    }
    putf(o, ",\"last_seen_s\":%" PRIu64 ",\"connected_since_s\":%" PRIu64, n->last_seen_s,
         n->connected_since_s);
}

static void put_node(struct out *o, const struct ml_ctl *ctl, const struct ml_ctl_node *n)
{
    put(o, "{");
    put_key(o, "id");
    put_string(o, n->id);
    put(o, ",");
    put_key(o, "board");
    put_string(o, n->board);
    put(o, ",");
    put_key(o, "version");
    put_string(o, n->version);
    put(o, ",");
    put_key(o, "features");
    put(o, "[");
    for (size_t i = 0; i < n->n_features; i++) {
        put(o, i > 0 ? "," : "");
        put_string(o, n->features[i]);
    }
    put(o, "],");
    put_key(o, "connected");
    put(o, n->conn != NULL ? "true," : "false,");
    put_key(o, "config_version");
    put_string(o, n->config_version);
    put(o, ",");
    put_key(o, "last_nack");
    if (n->has_nack) {
        put(o, "{");
        put_key(o, "version");
        put_string(o, n->nack_version);
        put(o, ",");
        put(o, n->nack_transient ? "\"transient\":true," : "\"transient\":false,");
        put_key(o, "error");
        put_string_max(o, n->nack_error, ML_CTL_JSON_ERROR_MAX_BYTES);
        put(o, "}");
    } else {
        put(o, "null");
    }
    put(o, ",");
    put_key(o, "last_status");
    if (n->has_status) {
        const struct ml_ctl_status *s = &n->status;

        put(o, "{");
        put_key(o, "config_version");
        put_string(o, s->config_version);
        putf(o,
             ",\"uptime_s\":%" PRIu64 ",\"calls_total\":%" PRIu64 ",\"calls_failed\":%" PRIu64
             ",\"endpoints_healthy\":%" PRIu32 ",\"endpoints_total\":%" PRIu32 "}",
             s->uptime_s, s->calls_total, s->calls_failed, s->endpoints_healthy,
             s->endpoints_total);
    } else {
        put(o, "null");
    }
    put(o, ",");
    put_extra(o, ctl, n);
    put(o, "}");
}

static void put_rollout(struct out *o, const struct ml_ctl *ctl, const struct ml_ctl_file *f)
{
    const struct ml_ctl_rollout *ro = &f->ro;

    put(o, "{");
    put_key(o, "file");
    put_string(o, f->name);
    put(o, ",");
    put_key(o, "state");
    put_string(o, ml_ctl_ro_state_name(ro->state));
    putf(o, ",\"stage\":%u,\"stages\":%zu,", ro->stage + 1, ctl->n_stages);
    put_key(o, "stable");
    put_string(o, ro->stable.version);
    put(o, ",");
    put_key(o, "target");
    put_string(o, ro->target.version);
    put(o, ",");
    put_key(o, "previous");
    put_string(o, ro->previous.version);
    putf(o, ",\"nodes\":%zu,\"nodes_done\":%zu,", ro->members, ro->done);
    put_key(o, "halt");
    /* it quotes a node's Nack: cut like one, so the rollouts stay small beside the nodes */
    put_string_max(o, ro->halt, ML_CTL_JSON_ERROR_MAX_BYTES);
    put(o, "}");
}

int ml_ctl_json_fleet(const struct ml_ctl *ctl, const char *label, const char *state, char **out,
                      size_t *n_out)
{
    struct out o = {0};
    bool first = true;

    put(&o, "{\"nodes\":[");
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        if (!ml_ctl_node_matches(ctl, ctl->nodes[i], label, state)) {
            continue;
        }
        put(&o, first ? "" : ",");
        first = false;
        put_node(&o, ctl, ctl->nodes[i]);
    }
    put(&o, "],\"rollouts\":[");
    first = true;
    for (size_t i = 0; i <= ctl->n_label_files + ctl->n_nodes; i++) {
        const struct ml_ctl_file *f = i == 0 ? &ctl->fallback
                                      : i - 1 < ctl->n_label_files
                                          ? ctl->label_files[i - 1]
                                          : &ctl->nodes[i - 1 - ctl->n_label_files]->own;

        if (f->ro.stable.version[0] == '\0' && f->ro.state == ML_CTL_RO_NONE) {
            continue;
        }
        put(&o, first ? "" : ",");
        first = false;
        put_rollout(&o, ctl, f);
    }
    put(&o, "]}\n");
    if (o.error != 0) {
        ml_free(o.p);
        return o.error;
    }
    *out = o.p;
    *n_out = o.n;
    return 0;
}

int ml_ctl_json_stats(const struct ml_ctl *ctl, char **out, size_t *n_out)
{
    const struct ml_ctl_counters *c = &ctl->counters;
    struct out o = {0};

    putf(&o, "controller.nodes %zu\n", ctl->n_nodes);
    putf(&o, "controller.conns_active %" PRIu64 "\n", c->conns_active);
    putf(&o, "controller.conns_refused_over_cap %" PRIu64 "\n", c->conns_refused_over_cap);
    putf(&o, "controller.hello_refused_bad_id %" PRIu64 "\n", c->hello_refused_bad_id);
    putf(&o, "controller.hello_refused_identity %" PRIu64 "\n", c->hello_refused_identity);
    putf(&o, "controller.hello_refused_in_use %" PRIu64 "\n", c->hello_refused_in_use);
    putf(&o, "controller.hello_refused_table_full %" PRIu64 "\n", c->hello_refused_table_full);
    putf(&o, "controller.answers_ignored %" PRIu64 "\n", c->answers_ignored);
    putf(&o, "controller.nodes_forgotten %" PRIu64 "\n", c->nodes_forgotten);
    putf(&o, "controller.http_unauthorized %" PRIu64 "\n", c->http_unauthorized);
    if (ctl->mqtt != NULL) {
        putf(&o, "controller.mqtt_connected %" PRIu64 "\n", c->mqtt_connected);
        putf(&o, "controller.mqtt_connects %" PRIu64 "\n", c->mqtt_connects);
        putf(&o, "controller.mqtt_pubacks %" PRIu64 "\n", c->mqtt_pubacks);
        putf(&o, "controller.mqtt_dropped %" PRIu64 "\n", c->mqtt_dropped);
    }
    if (o.error != 0) {
        ml_free(o.p);
        return o.error;
    }
    *out = o.p;
    *n_out = o.n;
    return 0;
}
