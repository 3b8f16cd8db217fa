/* The readers of the value types any section may use (validate_int.h): numbers, durations, sizes,
 * ranges, choices, addresses, paths, globs, URIs; and the text helpers the other readers share. */
#include "config/validate_int.h"

#include "config/errors.h"
#include "config/schema.h"
#include "config/snapshot-t.h"
#include "config/value.h"
#include "core/arena.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

char *ml_config_strdup(struct ml_config_vctx *c, const char *s, size_t n)
{
    char *p = ml_arena_strndup(&c->snap->arena, s, n);

    if (p == NULL) {
        c->oom = 1;
    }
    return p;
}

const char *ml_config_trim(const char *s, size_t *n)
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

bool ml_config_has_space_or_ctl(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

void ml_config_duration_bounds(const struct ml_key_def *k, char *buf, size_t cap)
{
    char lo[32], hi[32];

    ml_value_format_duration(k->min, lo, sizeof(lo));
    ml_value_format_duration(k->max, hi, sizeof(hi));
    snprintf(buf, cap, "%s..%s", lo, hi);
}

int ml_config_read_duration(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                            int line, uint32_t *out)
{
    char bounds[80];
    uint64_t ms;

    ml_config_duration_bounds(k, bounds, sizeof(bounds));
    if (ml_value_duration(v, &ms) < 0 ||
        (ms == 0 && strcmp(v, "0") == 0 && !(k->flags & ML_KF_ZERO_OFF))) {
        if (k->flags & ML_KF_ZERO_OFF) {
            return ml_config_bad_value(c, line, k, v, "0 (off) or a duration (ms, s, m, h) in %s",
                                       bounds);
        }
        return ml_config_bad_value(c, line, k, v, "a duration (ms, s, m, h) in %s", bounds);
    }
    if (ms == 0 && (k->flags & ML_KF_ZERO_OFF)) {
        *out = 0;
        return 0;
    }
    if (ms < k->min || ms > k->max) {
        if (k->flags & ML_KF_ZERO_OFF) {
            return ml_config_bad_value(c, line, k, v, "0 (off) or a duration in %s", bounds);
        }
        return ml_config_bad_value(c, line, k, v, "a duration in %s", bounds);
    }
    *out = (uint32_t)ms;
    return 0;
}

int ml_config_read_uint(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, uint32_t *out)
{
    uint64_t n;

    if (ml_value_uint(v, &n) < 0 || n < k->min || n > k->max) {
        return ml_config_bad_value(c, line, k, v, "%llu..%llu", (unsigned long long)k->min,
                                   (unsigned long long)k->max);
    }
    *out = (uint32_t)n;
    return 0;
}

int ml_config_read_size(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, uint32_t *out)
{
    char lo[32], hi[32];
    uint64_t n;

    if (ml_value_size(v, &n) < 0 || n < k->min || n > k->max) {
        ml_value_format_size(k->min, lo, sizeof(lo));
        ml_value_format_size(k->max, hi, sizeof(hi));
        return ml_config_bad_value(c, line, k, v, "a size in bytes, KiB, MiB or GiB, %s..%s", lo,
                                   hi);
    }
    *out = (uint32_t)n;
    return 0;
}

int ml_config_read_range(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                         int line, struct ml_cfg_range_ms *out)
{
    char bounds[80];
    uint64_t from, to;

    ml_config_duration_bounds(k, bounds, sizeof(bounds));
    if (ml_value_duration_range(v, &from, &to) < 0 || from < k->min || to > k->max) {
        return ml_config_bad_value(c, line, k, v,
                                   "a range of durations FROM..TO (FROM <= TO) within %s", bounds);
    }
    out->from_ms = (uint32_t)from;
    out->to_ms = (uint32_t)to;
    return 0;
}

int ml_config_read_enum(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, int *out)
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
        return ml_config_bad_value(c, line, k, v, "%s", list);
    }
    *out = i;
    return 0;
}

int ml_config_read_addr(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, struct ml_cfg_addr *a, bool off_allowed)
{
    if (off_allowed && strcmp(v, "off") == 0) {
        memset(a, 0, sizeof(*a));
        return 0;
    }
    if (ml_value_addr(v, a) < 0) {
        return ml_config_bad_value(c, line, k, v,
                                   "IP:PORT with an IP literal ([::1]:PORT for IPv6) and a port "
                                   "1..65535%s",
                                   off_allowed ? ", or off" : "");
    }
    a->text = ml_config_strdup(c, v, strlen(v));
    return 0;
}

int ml_config_read_path(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, const char **out)
{
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return ml_config_bad_value(c, line, k, v, "a file path");
        }
    }
    if (*v == '\0') {
        return ml_config_bad_value(c, line, k, v, "a file path");
    }
    *out = ml_config_strdup(c, v, strlen(v));
    return 0;
}

bool ml_config_is_glob(const char *s)
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

int ml_config_read_uri(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                       int line, const char **out)
{
    const char *p = v;

    if (!isalpha((unsigned char)*p)) {
        return ml_config_bad_value(c, line, k, v, "a URI like spiffe://TRUST-DOMAIN/PATH");
    }
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.') {
        p++;
    }
    if (*p != ':' || p[1] == '\0' || ml_config_has_space_or_ctl(v)) {
        return ml_config_bad_value(c, line, k, v, "a URI like spiffe://TRUST-DOMAIN/PATH");
    }
    *out = ml_config_strdup(c, v, strlen(v));
    return 0;
}
