/* Raw document → snapshot: every value read by its key's type (schema.def), then the checks that
 * span keys and sections (references, binds, what this build can serve). Every problem is
 * reported with its line; validation goes on after an error so that one run lists them all. */
#include "config/config_int.h"

#include "config/errors.h"
#include "config/features.h"
#include "config/schema.h"
#include "config/snapshot-t.h"
#include "config/unimplemented.h"
#include "config/value.h"
#include "core/arena.h"
#include "core/fd_budget.h"
#include "core/file.h"
#include "grpc/health.h"
#include "grpc/status.h"
#include "tls/cert_check.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fleet/token.h" /* [node] id follows the fleet's rule for node ids */

struct vctx {
    struct ml_snapshot *snap;
    const struct ml_raw_doc *doc;
    struct ml_config_errors *errs;
    const struct ml_raw_section *sec; /* the section being read; NULL while applying defaults */
    int oom;
};

#define LABEL_MAX 96

static void label_of(const struct ml_raw_section *sec, char *buf, size_t cap)
{
    if (sec->name != NULL) {
        snprintf(buf, cap, "[%s %s]", ml_schema_kind_name(sec->kind), sec->name);
    } else {
        snprintf(buf, cap, "[%s]", ml_schema_kind_name(sec->kind));
    }
}

/* Reports "[SECTION] KEY: <fmt>" at line. */
static void key_error(struct vctx *c, const struct ml_raw_section *sec, int line, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void key_error(struct vctx *c, const struct ml_raw_section *sec, int line, const char *key,
                      const char *fmt, ...)
{
    char label[LABEL_MAX], msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (sec == NULL) { /* a default that does not parse: a bug in schema.def */
        ml_config_errors_add(c->errs, 0, "built-in default of %s: %s", key, msg);
        return;
    }
    label_of(sec, label, sizeof(label));
    if (key != NULL) {
        ml_config_errors_add(c->errs, line, "%s %s: %s", label, key, msg);
    } else {
        ml_config_errors_add(c->errs, line, "%s: %s", label, msg);
    }
}

/* The "got" part of a message: the value, one line, bounded. */
static const char *shown(const char *v, char *buf, size_t cap)
{
    size_t j = 0;

    for (size_t i = 0; v[i] && j + 4 < cap; i++) {
        unsigned char ch = (unsigned char)v[i];
        buf[j++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
        if (v[i + 1] && j + 4 >= cap) {
            /* Cut, but never inside a UTF-8 sequence: error lines stay UTF-8 like the text. */
            if (((unsigned char)v[i + 1] & 0xc0) == 0x80) {
                while (j > 0 && ((unsigned char)buf[j - 1] & 0xc0) == 0x80) {
                    j--;
                }
                j -= j > 0;
            }
            memcpy(buf + j, "...", 3);
            j += 3;
        }
    }
    buf[j] = '\0';
    return buf;
}

#define GOT_MAX 128

/* "[SECTION] KEY: expected <what>, got "VALUE"" */
static int bad_value(struct vctx *c, int line, const struct ml_key_def *k, const char *v,
                     const char *what_fmt, ...) __attribute__((format(printf, 5, 6)));
static int bad_value(struct vctx *c, int line, const struct ml_key_def *k, const char *v,
                     const char *what_fmt, ...)
{
    char what[512], got[GOT_MAX];
    va_list ap;

    va_start(ap, what_fmt);
    vsnprintf(what, sizeof(what), what_fmt, ap);
    va_end(ap);
    key_error(c, c->sec, line, k->name, "expected %s, got \"%s\"", what, shown(v, got, sizeof(got)));
    return -1;
}

static char *cfg_strdup(struct vctx *c, const char *s, size_t n)
{
    char *p = ml_arena_strndup(&c->snap->arena, s, n);

    if (p == NULL) {
        c->oom = 1;
    }
    return p;
}

static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)*s)) {
        s++;
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)s[*n - 1])) {
        (*n)--;
    }
    return s;
}

static bool has_space_or_ctl(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

/* ---- one reader per value type -------------------------------------------------------------- */

static void describe_duration_bounds(const struct ml_key_def *k, char *buf, size_t cap)
{
    char lo[32], hi[32];

    ml_value_format_duration(k->min, lo, sizeof(lo));
    ml_value_format_duration(k->max, hi, sizeof(hi));
    snprintf(buf, cap, "%s..%s", lo, hi);
}

static int read_duration(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                         uint32_t *out)
{
    char bounds[80];
    uint64_t ms;

    describe_duration_bounds(k, bounds, sizeof(bounds));
    if (ml_value_duration(v, &ms) < 0 || (ms == 0 && strcmp(v, "0") == 0 && !(k->flags & ML_KF_ZERO_OFF))) {
        if (k->flags & ML_KF_ZERO_OFF) {
            return bad_value(c, line, k, v, "0 (off) or a duration (ms, s, m, h) in %s", bounds);
        }
        return bad_value(c, line, k, v, "a duration (ms, s, m, h) in %s", bounds);
    }
    if (ms == 0 && (k->flags & ML_KF_ZERO_OFF)) {
        *out = 0;
        return 0;
    }
    if (ms < k->min || ms > k->max) {
        if (k->flags & ML_KF_ZERO_OFF) {
            return bad_value(c, line, k, v, "0 (off) or a duration in %s", bounds);
        }
        return bad_value(c, line, k, v, "a duration in %s", bounds);
    }
    *out = (uint32_t)ms;
    return 0;
}

static int read_uint(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                     uint32_t *out)
{
    uint64_t n;

    if (ml_value_uint(v, &n) < 0 || n < k->min || n > k->max) {
        return bad_value(c, line, k, v, "%llu..%llu", (unsigned long long)k->min,
                         (unsigned long long)k->max);
    }
    *out = (uint32_t)n;
    return 0;
}

static int read_size(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                     uint32_t *out)
{
    char lo[32], hi[32];
    uint64_t n;

    if (ml_value_size(v, &n) < 0 || n < k->min || n > k->max) {
        ml_value_format_size(k->min, lo, sizeof(lo));
        ml_value_format_size(k->max, hi, sizeof(hi));
        return bad_value(c, line, k, v, "a size in bytes, KiB, MiB or GiB, %s..%s", lo, hi);
    }
    *out = (uint32_t)n;
    return 0;
}

static int read_range(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                      struct ml_cfg_range_ms *out)
{
    char bounds[80];
    uint64_t from, to;

    describe_duration_bounds(k, bounds, sizeof(bounds));
    if (ml_value_duration_range(v, &from, &to) < 0 || from < k->min || to > k->max) {
        return bad_value(c, line, k, v, "a range of durations FROM..TO (FROM <= TO) within %s",
                         bounds);
    }
    out->from_ms = (uint32_t)from;
    out->to_ms = (uint32_t)to;
    return 0;
}

static int read_enum(struct vctx *c, const struct ml_key_def *k, const char *v, int line, int *out)
{
    const char *choices = ml_schema_key_choices(k);
    int i = ml_schema_choice_index(k, v);

    if (i < 0) {
        char list[160];
        size_t j = 0;
        const char *last_bar = strrchr(choices, '|');
        for (const char *p = choices; *p && j + 6 < sizeof(list); p++) {
            if (*p == '|') {
                const char *sep = p == last_bar ? " or " : ", ";
                memcpy(list + j, sep, strlen(sep));
                j += strlen(sep);
            } else {
                list[j++] = *p;
            }
        }
        list[j] = '\0';
        return bad_value(c, line, k, v, "%s", list);
    }
    *out = i;
    return 0;
}

static int read_addr(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                     struct ml_cfg_addr *a, bool off_allowed)
{
    if (off_allowed && strcmp(v, "off") == 0) {
        memset(a, 0, sizeof(*a));
        return 0;
    }
    if (ml_value_addr(v, a) < 0) {
        return bad_value(c, line, k, v,
                         "IP:PORT with an IP literal ([::1]:PORT for IPv6) and a port "
                         "1..65535%s",
                         off_allowed ? ", or off" : "");
    }
    a->text = cfg_strdup(c, v, strlen(v));
    return 0;
}

static int read_path(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                     const char **out)
{
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return bad_value(c, line, k, v, "a file path");
        }
    }
    if (*v == '\0') {
        return bad_value(c, line, k, v, "a file path");
    }
    *out = cfg_strdup(c, v, strlen(v));
    return 0;
}

/* HOST, HOST:PORT, [V6] or [V6]:PORT → host (without brackets) and port. */
static int split_host_port(const char *hp, size_t n, const char **host, size_t *host_len,
                           uint16_t *port)
{
    char buf[300], probe[320];
    struct ml_cfg_addr a;
    const char *colon;
    uint64_t p;

    if (n == 0 || n >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, hp, n);
    buf[n] = '\0';
    if (buf[0] == '[') {
        const char *close = strchr(buf, ']');
        if (close == NULL) {
            return -EINVAL;
        }
        snprintf(probe, sizeof(probe), "%.*s:1", (int)(close - buf + 1), buf);
        if (ml_value_addr(probe, &a) < 0) {
            return -EINVAL;
        }
        *host = hp + 1;
        *host_len = (size_t)(close - buf - 1);
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] != '\0' && colon == NULL) {
            return -EINVAL;
        }
    } else {
        colon = strchr(buf, ':');
        *host = hp;
        *host_len = colon ? (size_t)(colon - buf) : n;
        snprintf(probe, sizeof(probe), "%.*s:1", (int)*host_len, buf);
        if (!ml_value_is_hostname(buf, *host_len) && ml_value_addr(probe, &a) < 0) {
            return -EINVAL;
        }
    }
    if (colon != NULL) {
        if (ml_value_uint(colon + 1, &p) < 0 || p < 1 || p > 65535) {
            return -EINVAL;
        }
        *port = (uint16_t)p;
    }
    return 0;
}

static int read_url(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                    struct ml_cfg_fleet *f)
{
    static const char what[] = "wss://HOST[:PORT][/PATH] (ws:// only with insecure = on)";
    const char *rest, *slash, *host;
    size_t host_len;
    uint16_t port;

    if (strncmp(v, "wss://", 6) == 0) {
        f->url_tls = true;
        rest = v + 6;
        port = 443;
    } else if (strncmp(v, "ws://", 5) == 0) {
        f->url_tls = false;
        rest = v + 5;
        port = 80;
    } else {
        return bad_value(c, line, k, v, "%s", what);
    }
    slash = strchr(rest, '/');
    if (has_space_or_ctl(rest) ||
        split_host_port(rest, slash ? (size_t)(slash - rest) : strlen(rest), &host, &host_len,
                        &port) < 0) {
        return bad_value(c, line, k, v, "%s", what);
    }
    f->url = cfg_strdup(c, v, strlen(v));
    f->url_host = cfg_strdup(c, host, host_len);
    f->url_port = port;
    f->url_path = cfg_strdup(c, slash ? slash : "/", strlen(slash ? slash : "/"));
    return 0;
}

static bool is_glob(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s; s++) {
        if (!(isalnum((unsigned char)*s) || strchr("*.-_:[]", *s))) {
            return false;
        }
    }
    return true;
}

static int read_header(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                       struct ml_cfg_route *r)
{
    const char *colon = strchr(v, ':');
    size_t name_len = colon ? (size_t)(colon - v) : strlen(v);
    const char *name = trim(v, &name_len);
    struct ml_cfg_header_match *h;
    char *lower;

    if (!ml_value_is_header_name(name, name_len)) {
        return bad_value(c, line, k, v, "NAME: VALUE or NAME alone (an HTTP header name)");
    }
    if (r->n_headers >= CONFIG_ML_MAX_ROUTE_HEADERS) {
        return bad_value(c, line, k, v, "at most %d header keys per route (CONFIG_ML_MAX_ROUTE_HEADERS)",
                         CONFIG_ML_MAX_ROUTE_HEADERS);
    }
    h = &r->headers[r->n_headers];
    if ((lower = cfg_strdup(c, name, name_len)) == NULL) {
        return 0;
    }
    for (char *p = lower; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    h->name = lower;
    h->value = NULL;
    if (colon != NULL) {
        size_t vn = strlen(colon + 1);
        const char *val = trim(colon + 1, &vn);
        h->value = cfg_strdup(c, val, vn);
    }
    r->n_headers++;
    return 0;
}

static int read_split(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                      struct ml_cfg_route *r)
{
    static const char what[] =
        "CLUSTER, or CLUSTER WEIGHT, CLUSTER WEIGHT, ... with weights 0..1000000 (not all 0)";
    struct ml_cfg_split items[CONFIG_ML_MAX_SPLIT];
    uint32_t n = 0;
    uint64_t sum = 0;
    const char *p = v;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = trim(p, &len);
        const char *sp = memchr(item, ' ', len);
        size_t name_len = sp ? (size_t)(sp - item) : len;
        uint64_t weight = 1;

        if (n >= CONFIG_ML_MAX_SPLIT) {
            return bad_value(c, line, k, v, "at most %d clusters in a split (CONFIG_ML_MAX_SPLIT)",
                             CONFIG_ML_MAX_SPLIT);
        }
        if (!ml_value_is_name(item, name_len)) {
            return bad_value(c, line, k, v, "%s", what);
        }
        if (sp != NULL) {
            char num[24];
            size_t wn = len - name_len;
            const char *w = trim(sp, &wn);
            if (wn == 0 || wn >= sizeof(num)) {
                return bad_value(c, line, k, v, "%s", what);
            }
            memcpy(num, w, wn);
            num[wn] = '\0';
            if (ml_value_uint(num, &weight) < 0 || weight > k->max) {
                return bad_value(c, line, k, v, "%s", what);
            }
        } else if (comma != NULL || n > 0) {
            return bad_value(c, line, k, v, "%s", what); /* a split names every weight */
        }
        for (uint32_t i = 0; i < n; i++) {
            if (strlen(items[i].cluster_name) == name_len &&
                memcmp(items[i].cluster_name, item, name_len) == 0) {
                return bad_value(c, line, k, v, "each cluster once in a split");
            }
        }
        items[n].cluster_name = cfg_strdup(c, item, name_len);
        if (items[n].cluster_name == NULL) {
            return 0;
        }
        items[n].cluster = -1;
        items[n].weight = (uint32_t)weight;
        sum += weight;
        n++;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    if (sum == 0) {
        return bad_value(c, line, k, v, "%s", what);
    }
    r->split = ml_arena_alloc(&c->snap->arena, n * sizeof(*r->split));
    if (r->split == NULL) {
        c->oom = 1;
        return 0;
    }
    memcpy(r->split, items, n * sizeof(*items));
    r->n_split = n;
    return 0;
}

static int read_retry_on(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                         uint32_t *out)
{
    static const struct {
        const char *name;
        uint32_t bit;
    } conds[] = {
        {"unavailable", ML_CFG_RETRY_UNAVAILABLE},
        {"reset", ML_CFG_RETRY_RESET},
        {"connect-failure", ML_CFG_RETRY_CONNECT_FAILURE},
        {"resource-exhausted", ML_CFG_RETRY_RESOURCE_EXHAUSTED},
        {"cancelled", ML_CFG_RETRY_CANCELLED},
        {"deadline-exceeded", ML_CFG_RETRY_DEADLINE_EXCEEDED},
    };
    uint32_t bits = 0;
    const char *p = v;

    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = trim(p, &len);
        size_t i;
        for (i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
            if (strlen(conds[i].name) == len && memcmp(conds[i].name, item, len) == 0) {
                break;
            }
        }
        if (i == sizeof(conds) / sizeof(conds[0])) {
            return bad_value(c, line, k, v,
                             "a comma-separated list of unavailable, reset, connect-failure, "
                             "resource-exhausted, cancelled, deadline-exceeded");
        }
        bits |= conds[i].bit;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    *out = bits;
    return 0;
}

/* Splits "A B" at the first run of spaces: a points at A (NUL-terminated in buf), *b at B. */
static int split2(const char *v, char *buf, size_t cap, char **b)
{
    char *sp;

    if (strlen(v) >= cap) {
        return -EINVAL;
    }
    strcpy(buf, v);
    sp = strchr(buf, ' ');
    if (sp == NULL) {
        return -EINVAL;
    }
    *sp = '\0';
    for (sp++; *sp == ' '; sp++) {
    }
    *b = sp;
    return 0;
}

static bool is_off(const char *v)
{
    return strcmp(v, "0") == 0 || strcmp(v, "off") == 0;
}

static int read_fault_delay(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                            struct ml_cfg_route *r)
{
    char buf[64], bounds[80], *d;
    uint64_t ms;

    if (is_off(v)) {
        r->fault_delay_ppm = 0;
        r->fault_delay_ms = 0;
        return 0;
    }
    describe_duration_bounds(k, bounds, sizeof(bounds));
    if (split2(v, buf, sizeof(buf), &d) < 0 || ml_value_percent(buf, false, &r->fault_delay_ppm) < 0 ||
        ml_value_duration(d, &ms) < 0 || ms < k->min || ms > k->max) {
        return bad_value(c, line, k, v, "PERCENT DURATION like 5%% 100ms (duration %s), or 0",
                         bounds);
    }
    r->fault_delay_ms = (uint32_t)ms;
    return 0;
}

static int read_fault_abort(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                            struct ml_cfg_route *r)
{
    char buf[64], *s;
    int status;

    if (is_off(v)) {
        r->fault_abort_ppm = 0;
        r->fault_abort_status = 0;
        return 0;
    }
    if (split2(v, buf, sizeof(buf), &s) < 0 || ml_value_percent(buf, false, &r->fault_abort_ppm) < 0 ||
        (status = ml_grpc_status_parse(s)) <= 0) {
        return bad_value(c, line, k, v,
                         "PERCENT STATUS like 1%% unavailable (a gRPC status other than ok), or 0");
    }
    r->fault_abort_status = status;
    return 0;
}

static int read_rate(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                     struct ml_cfg_route *r)
{
    char buf[96], *slash, *rest;
    uint64_t n, burst;
    static const char what[] = "N/s or N/m (N 1..1000000), optionally followed by burst N, or 0";

    if (is_off(v)) {
        r->rate_per_min = 0;
        r->rate_burst = 0;
        return 0;
    }
    if (strlen(v) >= sizeof(buf)) {
        return bad_value(c, line, k, v, "%s", what);
    }
    strcpy(buf, v);
    rest = strchr(buf, ' ');
    if (rest != NULL) {
        *rest++ = '\0';
    }
    slash = strchr(buf, '/');
    if (slash == NULL) {
        return bad_value(c, line, k, v, "%s", what);
    }
    *slash = '\0';
    if (ml_value_uint(buf, &n) < 0 || n < k->min || n > k->max ||
        (strcmp(slash + 1, "s") != 0 && strcmp(slash + 1, "m") != 0)) {
        return bad_value(c, line, k, v, "%s", what);
    }
    r->rate_per_min = (uint32_t)(slash[1] == 's' ? n * 60 : n);
    /* Default bucket: one second's worth of tokens, at least one. */
    burst = r->rate_per_min / 60 ? r->rate_per_min / 60 : 1;
    if (rest != NULL) {
        while (*rest == ' ') {
            rest++;
        }
        if (strncmp(rest, "burst ", 6) != 0) {
            return bad_value(c, line, k, v, "%s", what);
        }
        rest += 6;
        while (*rest == ' ') {
            rest++;
        }
        if (ml_value_uint(rest, &burst) < 0 || burst < 1 || burst > 1000000) {
            return bad_value(c, line, k, v, "%s", what);
        }
    }
    r->rate_burst = (uint32_t)burst;
    return 0;
}

static int read_endpoint(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                         struct ml_cfg_cluster *cl)
{
    static const char what[] = "IP:PORT or IP:PORT weight=N (N 1..128)";
    char buf[96], *rest;
    struct ml_cfg_endpoint *ep;
    uint64_t weight = 1;

    if (strlen(v) >= sizeof(buf)) {
        return bad_value(c, line, k, v, "%s", what);
    }
    strcpy(buf, v);
    rest = strchr(buf, ' ');
    if (rest != NULL) {
        *rest++ = '\0';
        while (*rest == ' ') {
            rest++;
        }
        if (strncmp(rest, "weight=", 7) != 0 || ml_value_uint(rest + 7, &weight) < 0 ||
            weight < k->min || weight > k->max) {
            return bad_value(c, line, k, v, "%s", what);
        }
    }
    if (cl->n_endpoints >= CONFIG_ML_MAX_ENDPOINTS) {
        return bad_value(c, line, k, v, "at most %d endpoints per cluster (CONFIG_ML_MAX_ENDPOINTS)",
                         CONFIG_ML_MAX_ENDPOINTS);
    }
    ep = &cl->endpoints[cl->n_endpoints];
    if (ml_value_addr(buf, &ep->addr) < 0) {
        return bad_value(c, line, k, v, "%s", what);
    }
    for (uint32_t i = 0; i < cl->n_endpoints; i++) {
        const struct ml_cfg_addr *o = &cl->endpoints[i].addr;
        if (o->family == ep->addr.family && o->port == ep->addr.port &&
            memcmp(o->ip, ep->addr.ip, 16) == 0) {
            return bad_value(c, line, k, v, "each endpoint once in a cluster");
        }
    }
    ep->addr.text = cfg_strdup(c, buf, strlen(buf));
    ep->weight = (uint32_t)weight;
    cl->n_endpoints++;
    return 0;
}

static int read_dns(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                    struct ml_cfg_cluster *cl)
{
    size_t host_len;

    if (ml_value_host_port(v, &host_len, &cl->dns_port) < 0) {
        return bad_value(c, line, k, v, "HOST:PORT (a host name and a port 1..65535)");
    }
    cl->dns_host = cfg_strdup(c, v, host_len);
    return 0;
}

static int read_hash(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                     struct ml_cfg_cluster *cl)
{
    if (strcmp(v, "authority") == 0) {
        cl->hash = ML_CFG_HASH_AUTHORITY;
    } else if (strcmp(v, "path") == 0) {
        cl->hash = ML_CFG_HASH_PATH;
    } else if (strncmp(v, "header:", 7) == 0 && ml_value_is_header_name(v + 7, strlen(v + 7))) {
        char *name = cfg_strdup(c, v + 7, strlen(v + 7));
        if (name == NULL) {
            return 0;
        }
        for (char *p = name; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        cl->hash = ML_CFG_HASH_HEADER;
        cl->hash_header = name;
    } else {
        return bad_value(c, line, k, v, "header:NAME, authority or path");
    }
    return 0;
}

static int read_uri(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                    const char **out)
{
    const char *p = v;

    if (!isalpha((unsigned char)*p)) {
        return bad_value(c, line, k, v, "a URI like spiffe://TRUST-DOMAIN/PATH");
    }
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.') {
        p++;
    }
    if (*p != ':' || p[1] == '\0' || has_space_or_ctl(v)) {
        return bad_value(c, line, k, v, "a URI like spiffe://TRUST-DOMAIN/PATH");
    }
    *out = cfg_strdup(c, v, strlen(v));
    return 0;
}

static int read_rule(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                     struct ml_cfg_authz *az)
{
    static const char what[] =
        "PRINCIPAL -> PATH-GLOB, e.g. spiffe://mesh.local/frontend -> /helloworld.Greeter/*";
    const char *arrow = strstr(v, "->");
    size_t pn, gn;
    const char *principal, *glob;
    struct ml_cfg_authz_rule *rule;
    char *pc, *gc;

    if (arrow == NULL) {
        return bad_value(c, line, k, v, "%s", what);
    }
    pn = (size_t)(arrow - v);
    principal = trim(v, &pn);
    gn = strlen(arrow + 2);
    glob = trim(arrow + 2, &gn);
    if (pn == 0 || gn == 0 || (glob[0] != '/' && !(gn == 1 && glob[0] == '*'))) {
        return bad_value(c, line, k, v, "%s", what);
    }
    if ((pc = cfg_strdup(c, principal, pn)) == NULL || (gc = cfg_strdup(c, glob, gn)) == NULL) {
        return 0;
    }
    if (has_space_or_ctl(pc) || has_space_or_ctl(gc)) {
        return bad_value(c, line, k, v, "%s", what);
    }
    if (az->n_rules >= CONFIG_ML_MAX_AUTHZ_RULES) {
        return bad_value(c, line, k, v, "at most %d rules per [authz] (CONFIG_ML_MAX_AUTHZ_RULES)",
                         CONFIG_ML_MAX_AUTHZ_RULES);
    }
    rule = &az->rules[az->n_rules++];
    rule->allow = strcmp(k->name, "allow") == 0;
    rule->principal = pc;
    rule->path = gc;
    return 0;
}

static int read_access_log(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                           struct ml_cfg_node *n)
{
    if (strcmp(v, "off") == 0) {
        n->access_log = ML_CFG_ACCESS_LOG_OFF;
    } else if (strcmp(v, "stderr") == 0) {
        n->access_log = ML_CFG_ACCESS_LOG_STDERR;
    } else if (strcmp(v, "stdout") == 0) {
        n->access_log = ML_CFG_ACCESS_LOG_STDOUT;
    } else if (strcmp(v, "syslog") == 0) {
        n->access_log = ML_CFG_ACCESS_LOG_SYSLOG;
    } else if (v[0] == '/' && !has_space_or_ctl(v)) {
        n->access_log = ML_CFG_ACCESS_LOG_FILE;
        n->access_log_path = cfg_strdup(c, v, strlen(v));
    } else {
        return bad_value(c, line, k, v, "off, stderr, stdout, syslog or an absolute file path");
    }
    return 0;
}

/* ---- applying one key to its section -------------------------------------------------------- */

static bool is_label_part(const char *s, size_t n)
{
    if (n == 0 || n > ML_CFG_LABEL_PART_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

/* [node] labels = KEY=VALUE, ...: each pair checked, kept alone and in one canonical text. */
static int read_labels(struct vctx *c, const struct ml_key_def *k, const char *v, int line,
                       struct ml_cfg_node *node)
{
    static const char rule[] = "KEY=VALUE, ... (at most 16 pairs, key and value 1..31 of "
                               "A-Z a-z 0-9 . _ -, each key once)";
    char canon[ML_CFG_LABELS_MAX * (2 * ML_CFG_LABEL_PART_MAX + 2) + 1];
    size_t used = 0;
    const char *p = v;

    node->n_labels = 0;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p), kn;
        const char *item = trim(p, &n), *eq;

        eq = memchr(item, '=', n);
        kn = eq != NULL ? (size_t)(eq - item) : 0;
        if (eq == NULL || !is_label_part(item, kn) || !is_label_part(eq + 1, n - kn - 1) ||
            node->n_labels == ML_CFG_LABELS_MAX) {
            return bad_value(c, line, k, v, "%s", rule);
        }
        for (uint32_t i = 0; i < node->n_labels; i++) {
            if (strncmp(node->label[i], item, kn + 1) == 0) {
                return bad_value(c, line, k, v, "%s", rule);
            }
        }
        if ((node->label[node->n_labels] = cfg_strdup(c, item, n)) == NULL) {
            return -1;
        }
        node->n_labels++;
        used += (size_t)snprintf(canon + used, sizeof(canon) - used, "%s%.*s", used ? "," : "",
                                 (int)n, item);
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    if (node->n_labels == 0) {
        return bad_value(c, line, k, v, "%s", rule);
    }
    node->labels = cfg_strdup(c, canon, used);
    return node->labels != NULL ? 0 : -1;
}

static void *section_struct(struct ml_snapshot *s, enum ml_config_kind kind, uint32_t index)
{
    switch (kind) {
    case ML_KIND_NODE:
        return &s->node;
    case ML_KIND_FLEET:
        return &s->fleet;
    case ML_KIND_LISTENER:
        return &s->listeners[index];
    case ML_KIND_ROUTE:
        return &s->routes[index];
    case ML_KIND_CLUSTER:
        return &s->clusters[index];
    case ML_KIND_AUTHZ:
        return &s->authz[index];
    default:
        return NULL;
    }
}

static int apply(struct vctx *c, void *obj, int key, const char *v, int line)
{
    const struct ml_key_def *k = &ml_schema_keys[key];
    void *field = (char *)obj + k->offset;

    switch (k->type) {
    case ML_KT_UINT:
        return read_uint(c, k, v, line, field);
    case ML_KT_DURATION:
        return read_duration(c, k, v, line, field);
    case ML_KT_SIZE:
        return read_size(c, k, v, line, field);
    case ML_KT_PERCENT:
        if (ml_value_percent(v, true, field) < 0) {
            return bad_value(c, line, k, v, "0..100, with or without %%");
        }
        return 0;
    case ML_KT_BOOL:
        if (ml_value_bool(v, field) < 0) {
            return bad_value(c, line, k, v, "on or off");
        }
        return 0;
    case ML_KT_ENUM:
        return read_enum(c, k, v, line, field);
    case ML_KT_RANGE:
        return read_range(c, k, v, line, field);
    case ML_KT_NAME:
        if (!ml_value_is_name(v, strlen(v))) {
            return bad_value(c, line, k, v, "a name of 1..63 characters from A-Z a-z 0-9 _ . -");
        }
        *(const char **)field = cfg_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_NODE_ID:
        /* The id goes to the controller, its logs and file names: the fleet's token rule. */
        if (!ml_fleet_node_id_valid(v, strlen(v))) {
            return bad_value(c, line, k, v, "a node id of %s", ML_FLEET_NODE_ID_RULE);
        }
        *(const char **)field = cfg_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_PATH:
        return read_path(c, k, v, line, field);
    case ML_KT_STRING:
        if (has_space_or_ctl(v)) {
            return bad_value(c, line, k, v, "text without spaces or control characters");
        }
        *(const char **)field = cfg_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_ADDR:
        return read_addr(c, k, v, line, field, false);
    case ML_KT_ADMIN:
        return read_addr(c, k, v, line, field, true);
    case ML_KT_ACCESS_LOG:
        return read_access_log(c, k, v, line, obj);
    case ML_KT_URL:
        return read_url(c, k, v, line, obj);
    case ML_KT_LISTENER_REF:
        if (!ml_value_is_name(v, strlen(v))) {
            return bad_value(c, line, k, v, "the name of a [listener] section");
        }
        ((struct ml_cfg_route *)obj)->listener_name = cfg_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_GLOB:
        if (!is_glob(v)) {
            return bad_value(c, line, k, v, "a host name or a glob like * or *.example.com");
        }
        *(const char **)field = cfg_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_HTTP_PATH:
        if (v[0] != '/' || has_space_or_ctl(v)) {
            return bad_value(c, line, k, v, "a path starting with /");
        }
        *(const char **)field = cfg_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_HEADER:
        return read_header(c, k, v, line, obj);
    case ML_KT_SPLIT:
        return read_split(c, k, v, line, obj);
    case ML_KT_RETRY_ON:
        return read_retry_on(c, k, v, line, field);
    case ML_KT_FAULT_DELAY:
        return read_fault_delay(c, k, v, line, obj);
    case ML_KT_FAULT_ABORT:
        return read_fault_abort(c, k, v, line, obj);
    case ML_KT_RATE:
        return read_rate(c, k, v, line, obj);
    case ML_KT_ENDPOINT:
        return read_endpoint(c, k, v, line, obj);
    case ML_KT_DNS:
        return read_dns(c, k, v, line, obj);
    case ML_KT_HASH:
        return read_hash(c, k, v, line, obj);
    case ML_KT_HOSTNAME:
        if (!ml_value_is_hostname(v, strlen(v))) {
            return bad_value(c, line, k, v, "a host name");
        }
        *(const char **)field = cfg_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_URI:
        return read_uri(c, k, v, line, field);
    case ML_KT_RULE:
        return read_rule(c, k, v, line, obj);
    case ML_KT_LABELS:
        return read_labels(c, k, v, line, obj);
    }
    return -1;
}

static void apply_defaults(struct vctx *c, enum ml_config_kind kind, void *obj)
{
    const struct ml_raw_section *saved = c->sec;

    c->sec = NULL; /* a default that fails to parse reports as a bug in schema.def */
    for (int key = 0; key < ML_K_COUNT; key++) {
        const struct ml_key_def *k = &ml_schema_keys[key];
        if (k->kind == kind && k->dflt != NULL) {
            apply(c, obj, key, k->dflt, 0);
        }
    }
    c->sec = saved;
}

/* Arrays of repeatable keys, sized by how often the section gives them (bounded by the limits
 * the readers check). */
static int alloc_arrays(struct vctx *c, const struct ml_raw_section *sec, void *obj)
{
    struct ml_arena *a = &c->snap->arena;
    uint32_t n;

    switch (sec->kind) {
    case ML_KIND_ROUTE:
        n = sec->key_count[ML_K_route_header];
        n = n < CONFIG_ML_MAX_ROUTE_HEADERS ? n : CONFIG_ML_MAX_ROUTE_HEADERS;
        if (n && !(((struct ml_cfg_route *)obj)->headers = ml_arena_alloc(a, n * sizeof(struct ml_cfg_header_match)))) {
            return -ENOMEM;
        }
        break;
    case ML_KIND_CLUSTER:
        n = sec->key_count[ML_K_cluster_endpoint];
        n = n < CONFIG_ML_MAX_ENDPOINTS ? n : CONFIG_ML_MAX_ENDPOINTS;
        if (n && !(((struct ml_cfg_cluster *)obj)->endpoints = ml_arena_alloc(a, n * sizeof(struct ml_cfg_endpoint)))) {
            return -ENOMEM;
        }
        break;
    case ML_KIND_AUTHZ:
        n = sec->key_count[ML_K_authz_allow] + sec->key_count[ML_K_authz_deny];
        n = n < CONFIG_ML_MAX_AUTHZ_RULES ? n : CONFIG_ML_MAX_AUTHZ_RULES;
        if (n && !(((struct ml_cfg_authz *)obj)->rules = ml_arena_alloc(a, n * sizeof(struct ml_cfg_authz_rule)))) {
            return -ENOMEM;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* ---- checks across keys and sections -------------------------------------------------------- */

static const char *value_at(const struct vctx *c, const struct ml_raw_section *sec, int key)
{
    /* The first value given for key in sec (for messages about a key found wrong later). */
    for (uint32_t i = 0; i < c->doc->n_entries; i++) {
        const struct ml_raw_entry *e = &c->doc->entries[i];
        if (c->doc->sections[e->section] == sec && e->key == key) {
            return e->value;
        }
    }
    return "";
}

static int find_listener(const struct ml_snapshot *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        if (strcmp(s->listeners[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int find_cluster(const struct ml_snapshot *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        if (strcmp(s->clusters[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void required_keys(struct vctx *c, const struct ml_raw_section *sec)
{
    for (int key = 0; key < ML_K_COUNT; key++) {
        const struct ml_key_def *k = &ml_schema_keys[key];
        if (k->kind == sec->kind && (k->flags & ML_KF_REQUIRED) && sec->key_line[key] == 0) {
            key_error(c, sec, sec->line, k->name, "expected this key (required), got nothing");
        }
    }
}

/* built: TLS exists in this build (listeners and clusters with ML_TLS). */
static void tls_refused(struct vctx *c, const struct ml_raw_section *sec, int key, int tls,
                        bool built)
{
    char got[GOT_MAX];

    if (tls != ML_CFG_TLS_OFF && !built) {
        key_error(c, sec, sec->key_line[key], "tls",
                  "expected off: this build of meshlet has no data-plane TLS (CONFIG_ML_TLS is "
                  "off; never served in plaintext), got \"%s\"",
                  shown(value_at(c, sec, key), got, sizeof(got)));
    } else if (tls != ML_CFG_TLS_OFF && c->snap->node.workers > 1) {
        /* The pinned mbedTLS is built without MBEDTLS_THREADING_C: its PSA key store and RNG
         * are process globals with no lock, so two loops doing handshakes at once would race. */
        key_error(c, sec, sec->key_line[key], "tls",
                  "expected off with [node] workers = %u (this build's mbedTLS has no thread "
                  "support, MBEDTLS_THREADING_C: TLS runs with workers = 1 only), got \"%s\"",
                  (unsigned)c->snap->node.workers, shown(value_at(c, sec, key), got, sizeof(got)));
    }
}

/* Listeners' max_connections together stay within the downstream fd budget (core/fd_budget.h):
 * beyond it their connections would take the descriptors of upstream, admin and the fleet
 * client. Said once, at the listener whose max_connections crosses it. */
_Static_assert(CONFIG_ML_MAX_CONNECTIONS <= ML_FD_BUDGET_DOWNSTREAM,
               "one listener's max_connections must fit in the downstream fd budget");

static void downstream_budget(struct vctx *c, const struct ml_raw_section *sec)
{
    const struct ml_snapshot *s = c->snap;
    uint64_t before = 0, mine = s->listeners[sec->index].max_connections;
    int line = sec->key_line[ML_K_listener_max_connections];

    for (uint32_t i = 0; i < sec->index; i++) {
        before += s->listeners[i].max_connections;
    }
    if (before <= ML_FD_BUDGET_DOWNSTREAM && before + mine > ML_FD_BUDGET_DOWNSTREAM) {
        key_error(c, sec, line != 0 ? line : sec->line, "max_connections",
                  "expected at most %llu (all listeners together within the downstream file "
                  "descriptor budget, %d: ML_FD_BUDGET_DOWNSTREAM; %llu taken by the listeners "
                  "before), got %llu%s",
                  (unsigned long long)(ML_FD_BUDGET_DOWNSTREAM - before), ML_FD_BUDGET_DOWNSTREAM,
                  (unsigned long long)before, (unsigned long long)mine,
                  line != 0 ? "" : " (the default)");
    }
}

/* A key whose code does not exist yet (config/unimplemented.c), given a value that asks for
 * something: refused where it stands, as tls = on is. */
static void unimplemented_refused(struct vctx *c, const void *obj, const struct ml_raw_entry *e)
{
    const char *off = NULL;
    char want[64], got[GOT_MAX];

    if (!ml_config_unimplemented(e->key, &off) || ml_config_unimplemented_is_off(e->key, obj)) {
        return;
    }
    if (off == NULL) {
        snprintf(want, sizeof(want), "this key left out");
    } else if (off[0] == '\0') {
        snprintf(want, sizeof(want), "an empty value");
    } else if (strcmp(off, "0") == 0) {
        snprintf(want, sizeof(want), "0 (off)");
    } else {
        snprintf(want, sizeof(want), "%s", off);
    }
    key_error(c, c->sec, e->line, ml_schema_keys[e->key].name,
              "expected %s: not implemented in this version, got \"%s\"", want,
              shown(e->value, got, sizeof(got)));
}

static void check_listener(struct vctx *c, const struct ml_raw_section *sec)
{
    struct ml_snapshot *s = c->snap;
    struct ml_cfg_listener *l = &s->listeners[sec->index];
    char got[GOT_MAX];

    tls_refused(c, sec, ML_K_listener_tls, l->tls, ML_HAVE_DATA_TLS);
    if (l->tls != ML_CFG_TLS_OFF && ML_HAVE_DATA_TLS) {
        /* Readability and the PEM itself are checked when the listener starts (and by the
         * certificate checks of `meshlet check`); here only that they are given. */
        if (l->cert == NULL || l->key == NULL) {
            key_error(c, sec, sec->key_line[ML_K_listener_tls], "tls",
                      "expected cert = PATH and key = PATH with tls = on|mtls|permissive, got %s",
                      l->cert == NULL ? "no cert" : "no key");
        }
        if (l->tls == ML_CFG_TLS_MTLS && l->ca == NULL) {
            key_error(c, sec, sec->key_line[ML_K_listener_tls], "tls",
                      "expected ca = PATH with tls = mtls (client certificates chain to it), got "
                      "no ca");
        }
    }
    downstream_budget(c, sec);
    if (!l->bind.set) {
        return;
    }
    for (uint32_t i = 0; i < sec->index; i++) {
        const struct ml_cfg_listener *o = &s->listeners[i];
        if (ml_value_addr_overlaps(&o->bind, &l->bind)) {
            key_error(c, sec, sec->key_line[ML_K_listener_bind], "bind",
                      "expected an address no other listener binds ([listener %s] on line %d), "
                      "got \"%s\"",
                      o->name, o->line, shown(l->bind.text, got, sizeof(got)));
        }
    }
    if (ml_value_addr_overlaps(&s->node.admin, &l->bind)) {
        key_error(c, sec, sec->key_line[ML_K_listener_bind], "bind",
                  "expected an address other than the admin endpoint's ([node] admin), got \"%s\"",
                  shown(l->bind.text, got, sizeof(got)));
    }
}

static void check_route(struct vctx *c, const struct ml_raw_section *sec)
{
    struct ml_snapshot *s = c->snap;
    struct ml_cfg_route *r = &s->routes[sec->index];
    char got[GOT_MAX];

    if (r->listener_name != NULL && (r->listener = find_listener(s, r->listener_name)) < 0) {
        key_error(c, sec, sec->key_line[ML_K_route_listener], "listener",
                  "expected the name of a [listener] section, got \"%s\"",
                  shown(r->listener_name, got, sizeof(got)));
    }
    for (uint32_t i = 0; i < r->n_split; i++) {
        r->split[i].cluster = find_cluster(s, r->split[i].cluster_name);
        if (r->split[i].cluster < 0) {
            key_error(c, sec, sec->key_line[ML_K_route_to], "to",
                      "expected the name of a [cluster] section, got \"%s\"",
                      shown(r->split[i].cluster_name, got, sizeof(got)));
        }
    }
    if (sec->key_line[ML_K_route_prefix] && sec->key_line[ML_K_route_path]) {
        int later = sec->key_line[ML_K_route_prefix] > sec->key_line[ML_K_route_path]
                        ? ML_K_route_prefix
                        : ML_K_route_path;
        key_error(c, sec, sec->key_line[later], ml_schema_keys[later].name,
                  "expected either prefix or path, not both, got \"%s\"",
                  shown(value_at(c, sec, later), got, sizeof(got)));
    }
}

/* Cluster TLS keys that would ask for nothing are refused, never ignored: an identity without
 * tls, or a cert without mtls, would look checked or shown and not be. Readability and the PEM
 * are checked with the other certificate files (check_tls_files). */
static void check_cluster_tls(struct vctx *c, const struct ml_raw_section *sec,
                              const struct ml_cfg_cluster *cl)
{
    /* Only values that parsed: a bad one has its own error already. */
    const struct {
        int key;
        const char *value;
    } keys[] = {
        {ML_K_cluster_ca, cl->ca},
        {ML_K_cluster_sni, cl->sni},
        {ML_K_cluster_identity, cl->identity},
        {ML_K_cluster_cert, cl->cert},
        {ML_K_cluster_key, cl->key},
    };
    char got[GOT_MAX];

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int k = keys[i].key, line = sec->key_line[k];

        if (line == 0 || keys[i].value == NULL) {
            continue;
        }
        if (cl->tls == ML_CFG_TLS_OFF) {
            key_error(c, sec, line, ml_schema_keys[k].name,
                      "expected tls = on|mtls in this section (%s is used only with TLS), got "
                      "\"%s\" with tls = off",
                      ml_schema_keys[k].name, shown(value_at(c, sec, k), got, sizeof(got)));
        } else if ((k == ML_K_cluster_cert || k == ML_K_cluster_key) &&
                   cl->tls != ML_CFG_TLS_MTLS) {
            key_error(c, sec, line, ml_schema_keys[k].name,
                      "expected tls = mtls in this section (%s is shown only with mtls), got "
                      "\"%s\" with tls = on",
                      ml_schema_keys[k].name, shown(value_at(c, sec, k), got, sizeof(got)));
        }
    }
    if (cl->tls == ML_CFG_TLS_OFF || !ML_HAVE_DATA_TLS) {
        return;
    }
    if (cl->ca == NULL) {
        key_error(c, sec, sec->key_line[ML_K_cluster_tls], "tls",
                  "expected ca = PATH with tls = on|mtls (the endpoints' certificates chain to "
                  "it), got no ca");
    }
    if (cl->tls == ML_CFG_TLS_MTLS && (cl->cert == NULL || cl->key == NULL)) {
        key_error(c, sec, sec->key_line[ML_K_cluster_tls], "tls",
                  "expected cert = PATH and key = PATH with tls = mtls, got %s",
                  cl->cert == NULL ? "no cert" : "no key");
    }
}

static void check_cluster(struct vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_cluster *cl = &c->snap->clusters[sec->index];
    char got[GOT_MAX];

    tls_refused(c, sec, ML_K_cluster_tls, cl->tls, ML_HAVE_DATA_TLS);
    check_cluster_tls(c, sec, cl);
    if (sec->key_count[ML_K_cluster_endpoint] == 0 && sec->key_line[ML_K_cluster_dns] == 0) {
        key_error(c, sec, sec->line, NULL,
                  "expected endpoint = IP:PORT (repeatable) or dns = HOST:PORT, got no endpoints");
    }
    if (sec->key_count[ML_K_cluster_endpoint] > 0 && sec->key_line[ML_K_cluster_dns] != 0) {
        key_error(c, sec, sec->key_line[ML_K_cluster_dns], "dns",
                  "expected either endpoint or dns, not both, got \"%s\"",
                  shown(value_at(c, sec, ML_K_cluster_dns), got, sizeof(got)));
    }
    /* lb other than round_robin and health_check other than off: refused where they are read
     * (config/unimplemented.c), whatever this build's Kconfig says. */
    if (cl->health_service != NULL && strlen(cl->health_service) > ML_GRPC_HEALTH_SERVICE_MAX) {
        /* the Check request's bound (grpc/health.options): never a cut name */
        key_error(c, sec, sec->key_line[ML_K_cluster_health_service], "health_service",
                  "expected a service name of at most %d bytes, got %zu bytes",
                  ML_GRPC_HEALTH_SERVICE_MAX, strlen(cl->health_service));
    }
}

/* Findings about one section's certificate files (tls/cert_check.h): errors here, so every
 * apply (SIGHUP, push, POST /config) reads the files again and refuses bad ones; the warnings
 * are `meshlet check`'s (config/lint_certs.c). */
struct tls_files_ctx {
    struct vctx *c;
    const struct ml_raw_section *sec;
    const int *line; /* cert, key, ca */
};

static void tls_file_error(void *ctx, enum ml_tls_file file, bool warning, const char *text)
{
    static const char *const key[] = {"cert", "key", "ca"};
    struct tls_files_ctx *t = ctx;

    if (!warning) {
        key_error(t->c, t->sec, t->line[file], key[file], "%s", text);
    }
}

static void check_tls_files(struct vctx *c, const struct ml_raw_section *sec, const char *cert,
                            const char *key, const char *ca, const int line[3])
{
    struct tls_files_ctx t = {c, sec, line};

    if (ml_tls_check_files(cert, key, ca, time(NULL), tls_file_error, &t) < 0) {
        c->oom = 1;
    }
}

static void check_authz(struct vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_authz *az = &c->snap->authz[sec->index];

    if (ml_config_kind_unimplemented(ML_KIND_AUTHZ)) {
        /* Accepted, its rules would not be enforced: every call would pass (fail open). */
        key_error(c, sec, sec->line, NULL,
                  "expected no [authz] section: not implemented in this version (its rules "
                  "would not be enforced)");
    }

    if ((az->listener = find_listener(c->snap, az->name)) < 0) {
        key_error(c, sec, sec->line, NULL,
                  "expected the name of a [listener] section after authz, got \"%s\"", az->name);
    }
}

/* Reads [node] admin_token's file into the snapshot: every check of the config reads it again,
 * so an apply takes the file as it is then. The content is never shown in an error. */
static void read_admin_token(struct vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_node *n = &c->snap->node;
    int line = sec->key_line[ML_K_node_admin_token];
    char got[GOT_MAX], *buf = NULL;
    size_t len = 0;
    int rv;

    /* room for a trailing "\r\n" after the longest token */
    rv = ml_file_read_all(n->admin_token, ML_CFG_ADMIN_TOKEN_MAX_BYTES + 2, &buf, &len);
    if (rv == -ENOMEM) {
        c->oom = 1;
        return;
    }
    if (rv < 0) {
        if (rv == -EFBIG) {
            key_error(c, sec, line, "admin_token",
                      "expected a file holding one token of %d..%d visible ASCII characters, "
                      "got a larger file \"%s\"",
                      ML_CFG_ADMIN_TOKEN_MIN_BYTES, ML_CFG_ADMIN_TOKEN_MAX_BYTES,
                      shown(n->admin_token, got, sizeof(got)));
        } else {
            key_error(c, sec, line, "admin_token",
                      "expected a readable file holding the admin token, got \"%s\" (%s)",
                      shown(n->admin_token, got, sizeof(got)), strerror(-rv));
        }
        return;
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    rv = 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f) {
            rv = -EINVAL; /* it goes in a header: one line of visible ASCII */
        }
    }
    if (len < ML_CFG_ADMIN_TOKEN_MIN_BYTES || len > ML_CFG_ADMIN_TOKEN_MAX_BYTES || rv < 0) {
        key_error(c, sec, line, "admin_token",
                  "expected a file holding one token of %d..%d visible ASCII characters (no "
                  "spaces), got %zu bytes%s in \"%s\"",
                  ML_CFG_ADMIN_TOKEN_MIN_BYTES, ML_CFG_ADMIN_TOKEN_MAX_BYTES, len,
                  rv < 0 ? " with a space or control character" : "",
                  shown(n->admin_token, got, sizeof(got)));
    } else {
        n->admin_token_value = cfg_strdup(c, buf, len);
        n->admin_token_bytes = len;
    }
    explicit_bzero(buf, len);
    free(buf);
}

static void check_node(struct vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_node *n = &c->snap->node;
    char got[GOT_MAX];

    n->workers_line = sec->key_line[ML_K_node_workers]; /* for `meshlet check`'s warning */
    if (n->admin_token != NULL && !c->snap->remote) {
        /* a remote text's [node] is refused unless it repeats ours, whose file is read when
         * the merged text is loaded: reading the remote's path would answer whether it exists */
        read_admin_token(c, sec);
    }
    if (n->admin.set && n->admin_remote && n->admin_token == NULL) {
        key_error(c, sec, sec->key_line[ML_K_node_admin_remote], "admin_remote",
                  "expected admin_token with admin_remote = on (anyone who reaches %s could "
                  "apply a config), got \"on\" without it",
                  shown(n->admin.text, got, sizeof(got)));
    }
    if (n->admin.set && !n->admin_remote && !ml_value_addr_is_loopback(&n->admin)) {
        key_error(c, sec, sec->key_line[ML_K_node_admin], "admin",
                  "expected a loopback address (127.0.0.0/8 or [::1]) unless admin_remote = on, "
                  "got \"%s\"",
                  shown(n->admin.text, got, sizeof(got)));
    }
}

static void check_fleet(struct vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_fleet *f = &c->snap->fleet;
    char got[GOT_MAX];

    if (!ML_HAVE_FLEET) {
        key_error(c, sec, sec->line, NULL,
                  "expected no [fleet] section: this build of meshlet has no fleet client "
                  "(CONFIG_ML_FLEET is off)");
        return;
    }
    if (f->url != NULL && !f->url_tls && !f->insecure) {
        key_error(c, sec, sec->key_line[ML_K_fleet_url], "url",
                  "expected wss:// (ws:// only with insecure = on), got \"%s\"",
                  shown(f->url, got, sizeof(got)));
    }
    if (f->url != NULL && f->url_tls && f->ca == NULL) {
        key_error(c, sec, sec->line, "ca",
                  "expected this key with a wss:// url (the controller's certificate is checked "
                  "against it), got nothing");
    }
    /* cert and key come together: the one missing is a missing key (header line, config/README.md).
     * A key given but unreadable was reported where it stands. */
    if (sec->key_line[ML_K_fleet_cert] != 0 && sec->key_line[ML_K_fleet_key] == 0) {
        key_error(c, sec, sec->line, "key",
                  "expected this key with cert (the private key of the node's client "
                  "certificate), got nothing");
    } else if (sec->key_line[ML_K_fleet_key] != 0 && sec->key_line[ML_K_fleet_cert] == 0) {
        key_error(c, sec, sec->line, "cert",
                  "expected this key with key (the node's client certificate), got nothing");
    }
}

static void default_node_id(struct vctx *c)
{
    char host[256] = "", got[GOT_MAX];
    size_t n;

    if (c->snap->node.id != NULL) {
        return;
    }
    if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0') {
        strcpy(host, "meshlet");
    }
    n = strlen(host);
    if (c->snap->fleet.present && !ml_fleet_node_id_valid(host, n)) {
        /* The controller would know this node by a name nobody gave it: say so, do not guess. */
        ml_config_errors_add(c->errs, c->snap->node.line,
                             "[node] id: the default is the host name, and it is not a node id "
                             "(expected %s, got \"%s\"): set [node] id",
                             ML_FLEET_NODE_ID_RULE, shown(host, got, sizeof(got)));
        return;
    }
    /* Without [fleet] the id only labels log lines: map what a node id may not hold. */
    for (n = 0; host[n] && n < ML_FLEET_ID_CHARS_MAX; n++) {
        if (!ml_fleet_token_char(host[n])) {
            host[n] = '-';
        }
    }
    host[n] = '\0';
    c->snap->node.id = cfg_strdup(c, host, n);
}

int ml_config_validate(struct ml_snapshot *snap, const struct ml_raw_doc *doc,
                       struct ml_config_errors *errs)
{
    struct vctx c = {.snap = snap, .doc = doc, .errs = errs};
    struct ml_arena *a = &snap->arena;

    /* The arrays, sized by the sections found (each bounded by its Kconfig limit in parse.c). */
    snap->n_listeners = doc->n_kind[ML_KIND_LISTENER];
    snap->n_routes = doc->n_kind[ML_KIND_ROUTE];
    snap->n_clusters = doc->n_kind[ML_KIND_CLUSTER];
    snap->n_authz = doc->n_kind[ML_KIND_AUTHZ];
    if ((snap->n_listeners && !(snap->listeners = ml_arena_alloc(a, snap->n_listeners * sizeof(*snap->listeners)))) ||
        (snap->n_routes && !(snap->routes = ml_arena_alloc(a, snap->n_routes * sizeof(*snap->routes)))) ||
        (snap->n_clusters && !(snap->clusters = ml_arena_alloc(a, snap->n_clusters * sizeof(*snap->clusters)))) ||
        (snap->n_authz && !(snap->authz = ml_arena_alloc(a, snap->n_authz * sizeof(*snap->authz))))) {
        return -ENOMEM;
    }

    /* Defaults first, so every section is complete whatever the file gives. */
    apply_defaults(&c, ML_KIND_NODE, &snap->node);
    apply_defaults(&c, ML_KIND_FLEET, &snap->fleet);
    for (uint32_t i = 0; i < doc->n_sections; i++) {
        const struct ml_raw_section *sec = doc->sections[i];
        void *obj = section_struct(snap, sec->kind, sec->index);
        if (sec->kind == ML_KIND_NODE || sec->kind == ML_KIND_FLEET) {
            for (int key = 0; key < ML_K_COUNT; key++) {
                if (ml_schema_keys[key].kind == sec->kind) {
                    snap->bootstrap_line[key] = sec->key_line[key];
                }
            }
            /* node/merge.c cuts these sections out of a push by line: where one ends is where
             * the parser saw the next header, whatever the bytes before its '[' */
            int end_line = i + 1 < doc->n_sections ? doc->sections[i + 1]->line : 0;

            if (sec->kind == ML_KIND_NODE) {
                snap->node.line = sec->line;
                snap->node.end_line = end_line;
                snap->node.id_line = sec->key_line[ML_K_node_id];
                snap->node.admin_line = sec->key_line[ML_K_node_admin];
            }
            if (sec->kind == ML_KIND_FLEET) {
                snap->fleet.present = true;
                snap->fleet.line = sec->line;
                snap->fleet.end_line = end_line;
            }
            continue;
        }
        apply_defaults(&c, sec->kind, obj);
        if (alloc_arrays(&c, sec, obj) < 0) {
            return -ENOMEM;
        }
        /* name and line are the first two fields' worth of every named section */
        switch (sec->kind) {
        case ML_KIND_LISTENER:
            snap->listeners[sec->index].name = cfg_strdup(&c, sec->name, strlen(sec->name));
            snap->listeners[sec->index].line = sec->line;
            break;
        case ML_KIND_ROUTE:
            snap->routes[sec->index].name = cfg_strdup(&c, sec->name, strlen(sec->name));
            snap->routes[sec->index].line = sec->line;
            snap->routes[sec->index].listener = -1;
            break;
        case ML_KIND_CLUSTER:
            snap->clusters[sec->index].name = cfg_strdup(&c, sec->name, strlen(sec->name));
            snap->clusters[sec->index].line = sec->line;
            break;
        case ML_KIND_AUTHZ:
            snap->authz[sec->index].name = cfg_strdup(&c, sec->name, strlen(sec->name));
            snap->authz[sec->index].line = sec->line;
            snap->authz[sec->index].listener = -1;
            break;
        default:
            break;
        }
    }

    /* Every value, in file order. */
    for (uint32_t i = 0; i < doc->n_entries; i++) {
        const struct ml_raw_entry *e = &doc->entries[i];
        void *obj;
        c.sec = doc->sections[e->section];
        obj = section_struct(snap, c.sec->kind, c.sec->index);
        if (apply(&c, obj, e->key, e->value, e->line) == 0) {
            unimplemented_refused(&c, obj, e);
        }
    }
    default_node_id(&c);
    if (c.oom) {
        /* A string or array the checks below read may be missing (NULL): stop here. */
        return -ENOMEM;
    }

    /* Then what spans keys and sections. Listeners before routes and authz: they refer to them. */
    for (uint32_t i = 0; i < doc->n_sections; i++) {
        const struct ml_raw_section *sec = doc->sections[i];
        required_keys(&c, sec);
        switch (sec->kind) {
        case ML_KIND_NODE:
            check_node(&c, sec);
            break;
        case ML_KIND_FLEET:
            check_fleet(&c, sec);
            check_tls_files(&c, sec, snap->fleet.cert, snap->fleet.key, snap->fleet.ca,
                            (const int[3]){sec->key_line[ML_K_fleet_cert],
                                           sec->key_line[ML_K_fleet_key],
                                           sec->key_line[ML_K_fleet_ca]});
            break;
        case ML_KIND_LISTENER: {
            struct ml_cfg_listener *l = &snap->listeners[sec->index];

            check_listener(&c, sec);
            l->file_line[0] = sec->key_line[ML_K_listener_cert];
            l->file_line[1] = sec->key_line[ML_K_listener_key];
            l->file_line[2] = sec->key_line[ML_K_listener_ca];
            check_tls_files(&c, sec, l->cert, l->key, l->ca, l->file_line);
            break;
        }
        case ML_KIND_ROUTE:
            check_route(&c, sec);
            break;
        case ML_KIND_CLUSTER: {
            struct ml_cfg_cluster *cl = &snap->clusters[sec->index];

            check_cluster(&c, sec);
            cl->file_line[0] = sec->key_line[ML_K_cluster_cert];
            cl->file_line[1] = sec->key_line[ML_K_cluster_key];
            cl->file_line[2] = sec->key_line[ML_K_cluster_ca];
            check_tls_files(&c, sec, cl->cert, cl->key, cl->ca, cl->file_line);
            break;
        }
        case ML_KIND_AUTHZ:
            check_authz(&c, sec);
            break;
        default:
            break;
        }
    }
    return c.oom ? -ENOMEM : 0;
}
