/* [route]: its readers (header matches, the weighted split, retry_on, faults, rate limits) and the
 * checks across its keys and sections (its listener and clusters exist; prefix or path). */
#include "config/validate_int.h"

#include "config/schema.h"
#include "config/snapshot-t.h"
#include "config/value.h"
#include "core/arena.h"
#include "core/kconfig.h"
#include "grpc/status.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int ml_config_read_header(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                          int line, struct ml_cfg_route *r)
{
    const char *colon = strchr(v, ':');
    size_t name_len = colon ? (size_t)(colon - v) : strlen(v);
    const char *name = ml_config_trim(v, &name_len);
    struct ml_cfg_header_match *h;
    char *lower;

    if (!ml_value_is_header_name(name, name_len)) {
        return ml_config_bad_value(c, line, k, v,
                                   "NAME: VALUE or NAME alone (an HTTP header name)");
    }
    if (r->n_headers >= CONFIG_ML_MAX_ROUTE_HEADERS) {
        return ml_config_bad_value(c, line, k, v,
                                   "at most %d header keys per route (CONFIG_ML_MAX_ROUTE_HEADERS)",
                                   CONFIG_ML_MAX_ROUTE_HEADERS);
    }
    h = &r->headers[r->n_headers];
    if ((lower = ml_config_strdup(c, name, name_len)) == NULL) {
        return 0;
    }
    for (char *p = lower; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    h->name = lower;
    h->value = NULL;
    if (colon != NULL) {
        size_t vn = strlen(colon + 1);
        const char *val = ml_config_trim(colon + 1, &vn);
        h->value = ml_config_strdup(c, val, vn);
    }
    r->n_headers++;
    return 0;
}

int ml_config_read_split(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                         int line, struct ml_cfg_route *r)
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
        const char *item = ml_config_trim(p, &len);
        const char *sp = memchr(item, ' ', len);
        size_t name_len = sp ? (size_t)(sp - item) : len;
        uint64_t weight = 1;

        if (n >= CONFIG_ML_MAX_SPLIT) {
            return ml_config_bad_value(c, line, k, v,
                                       "at most %d clusters in a split (CONFIG_ML_MAX_SPLIT)",
                                       CONFIG_ML_MAX_SPLIT);
        }
        if (!ml_value_is_name(item, name_len)) {
            return ml_config_bad_value(c, line, k, v, "%s", what);
        }
        if (sp != NULL) {
            char num[24];
            size_t wn = len - name_len;
            const char *w = ml_config_trim(sp, &wn);
            if (wn == 0 || wn >= sizeof(num)) {
                return ml_config_bad_value(c, line, k, v, "%s", what);
            }
            memcpy(num, w, wn);
            num[wn] = '\0';
            if (ml_value_uint(num, &weight) < 0 || weight > k->max) {
                return ml_config_bad_value(c, line, k, v, "%s", what);
            }
        } else if (comma != NULL || n > 0) {
            return ml_config_bad_value(c, line, k, v, "%s", what); /* a split names every weight */
        }
        for (uint32_t i = 0; i < n; i++) {
            if (strlen(items[i].cluster_name) == name_len &&
                memcmp(items[i].cluster_name, item, name_len) == 0) {
                return ml_config_bad_value(c, line, k, v, "each cluster once in a split");
            }
        }
        items[n].cluster_name = ml_config_strdup(c, item, name_len);
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
        return ml_config_bad_value(c, line, k, v, "%s", what);
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

int ml_config_read_retry_on(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                            int line, uint32_t *out)
{
    /* A gRPC status is named as everywhere in the config (grpc/status.c: its name or its code,
     * 0..16); reset and connect-failure are not statuses. */
    static const struct {
        const char *name; /* NULL: the status below, by name or code */
        int status;
        uint32_t bit;
    } conds[] = {
        {NULL, ML_GRPC_UNAVAILABLE, ML_CFG_RETRY_UNAVAILABLE},
        {"reset", -1, ML_CFG_RETRY_RESET},
        {"connect-failure", -1, ML_CFG_RETRY_CONNECT_FAILURE},
        {NULL, ML_GRPC_RESOURCE_EXHAUSTED, ML_CFG_RETRY_RESOURCE_EXHAUSTED},
        {NULL, ML_GRPC_CANCELLED, ML_CFG_RETRY_CANCELLED},
        {NULL, ML_GRPC_DEADLINE_EXCEEDED, ML_CFG_RETRY_DEADLINE_EXCEEDED},
    };
    uint32_t bits = 0;
    const char *p = v;

    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = ml_config_trim(p, &len);
        char word[32]; /* longer than any name: then it matches nothing */
        int status = -EINVAL;
        size_t i;

        if (len < sizeof(word)) {
            memcpy(word, item, len);
            word[len] = '\0';
            status = ml_grpc_status_parse(word);
        }
        for (i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
            if (conds[i].name != NULL
                    ? strlen(conds[i].name) == len && memcmp(conds[i].name, item, len) == 0
                    : status == conds[i].status) {
                break;
            }
        }
        if (i == sizeof(conds) / sizeof(conds[0])) {
            return ml_config_bad_value(
                c, line, k, v,
                "a comma-separated list of unavailable, reset, connect-failure, "
                "resource-exhausted, cancelled, deadline-exceeded (or the codes 14, 8, 1, 4)");
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

int ml_config_read_fault_delay(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                               int line, struct ml_cfg_route *r)
{
    char buf[64], bounds[80], *d;
    uint64_t ms;

    if (is_off(v)) {
        r->fault_delay_ppm = 0;
        r->fault_delay_ms = 0;
        return 0;
    }
    ml_config_duration_bounds(k, bounds, sizeof(bounds));
    if (split2(v, buf, sizeof(buf), &d) < 0 ||
        ml_value_percent(buf, false, &r->fault_delay_ppm) < 0 || ml_value_duration(d, &ms) < 0 ||
        ms < k->min || ms > k->max) {
        return ml_config_bad_value(c, line, k, v,
                                   "PERCENT DURATION like 5%% 100ms (duration %s), or 0", bounds);
    }
    r->fault_delay_ms = (uint32_t)ms;
    return 0;
}

int ml_config_read_fault_abort(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                               int line, struct ml_cfg_route *r)
{
    char buf[64], *s;
    int status;

    if (is_off(v)) {
        r->fault_abort_ppm = 0;
        r->fault_abort_status = 0;
        return 0;
    }
    if (split2(v, buf, sizeof(buf), &s) < 0 ||
        ml_value_percent(buf, false, &r->fault_abort_ppm) < 0 ||
        (status = ml_grpc_status_parse(s)) <= 0) {
        return ml_config_bad_value(
            c, line, k, v,
            "PERCENT STATUS like 1%% unavailable (a gRPC status other than ok), or 0");
    }
    r->fault_abort_status = status;
    return 0;
}

int ml_config_read_rate(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, struct ml_cfg_route *r)
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
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    strcpy(buf, v);
    rest = strchr(buf, ' ');
    if (rest != NULL) {
        *rest++ = '\0';
    }
    slash = strchr(buf, '/');
    if (slash == NULL) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    *slash = '\0';
    if (ml_value_uint(buf, &n) < 0 || n < k->min || n > k->max ||
        (strcmp(slash + 1, "s") != 0 && strcmp(slash + 1, "m") != 0)) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    r->rate_per_min = (uint32_t)(slash[1] == 's' ? n * 60 : n);
    /* Default bucket: one second's worth of tokens, at least one. */
    burst = r->rate_per_min / 60 ? r->rate_per_min / 60 : 1;
    if (rest != NULL) {
        while (*rest == ' ') {
            rest++;
        }
        if (strncmp(rest, "burst ", 6) != 0) {
            return ml_config_bad_value(c, line, k, v, "%s", what);
        }
        rest += 6;
        while (*rest == ' ') {
            rest++;
        }
        if (ml_value_uint(rest, &burst) < 0 || burst < 1 || burst > 1000000) {
            return ml_config_bad_value(c, line, k, v, "%s", what);
        }
    }
    r->rate_burst = (uint32_t)burst;
    return 0;
}

void ml_config_check_route(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    struct ml_snapshot *s = c->snap;
    struct ml_cfg_route *r = &s->routes[sec->index];
    char got[GOT_MAX];

    if (r->listener_name != NULL &&
        (r->listener = ml_config_find_listener(s, r->listener_name)) < 0) {
        ml_config_key_error(c, sec, sec->key_line[ML_K_route_listener], "listener",
                            "expected the name of a [listener] section, got \"%s\"",
                            ml_config_shown(r->listener_name, got, sizeof(got)));
    }
    for (uint32_t i = 0; i < r->n_split; i++) {
        r->split[i].cluster = ml_config_find_cluster(s, r->split[i].cluster_name);
        if (r->split[i].cluster < 0) {
            ml_config_key_error(c, sec, sec->key_line[ML_K_route_to], "to",
                                "expected the name of a [cluster] section, got \"%s\"",
                                ml_config_shown(r->split[i].cluster_name, got, sizeof(got)));
        }
    }
    if (sec->key_line[ML_K_route_prefix] && sec->key_line[ML_K_route_path]) {
        int later = sec->key_line[ML_K_route_prefix] > sec->key_line[ML_K_route_path]
                        ? ML_K_route_prefix
                        : ML_K_route_path;
        ml_config_key_error(c, sec, sec->key_line[later], ml_schema_keys[later].name,
                            "expected either prefix or path, not both, got \"%s\"",
                            ml_config_shown(ml_config_value_at(c, sec, later), got, sizeof(got)));
    }
}
