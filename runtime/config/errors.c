#include "config/errors.h"

#include "core/alloc.h"
#include "meshlet_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ml_config_errors_init(struct ml_config_errors *e)
{
    memset(e, 0, sizeof(*e));
}

void ml_config_errors_clear(struct ml_config_errors *e)
{
    for (size_t i = 0; i < e->n; i++) {
        ml_free(e->v[i].text);
    }
    e->n = 0;
    e->n_dropped = 0;
}

void ml_config_errors_deinit(struct ml_config_errors *e)
{
    ml_config_errors_clear(e);
    ml_free(e->v);
    memset(e, 0, sizeof(*e));
}

int ml_config_errors_add(struct ml_config_errors *e, int line, const char *fmt, ...)
{
    char *text;
    va_list ap;
    int n;

    if (e->n >= CONFIG_ML_CONFIG_MAX_ERRORS) {
        e->n_dropped++;
        return 0;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        struct ml_config_error *v;
        if (cap > CONFIG_ML_CONFIG_MAX_ERRORS) {
            cap = CONFIG_ML_CONFIG_MAX_ERRORS;
        }
        v = ml_realloc(e->v, cap * sizeof(*v));
        if (v == NULL) {
            e->n_dropped++;
            return -ENOMEM;
        }
        e->v = v;
        e->cap = cap;
    }
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (text = ml_malloc((size_t)n + 1)) == NULL) {
        e->n_dropped++;
        return -ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    e->v[e->n].line = line;
    e->v[e->n].text = text;
    e->n++;
    return 0;
}

size_t ml_config_errors_count(const struct ml_config_errors *e)
{
    return e->n + e->n_dropped;
}

void ml_config_errors_sort(struct ml_config_errors *e)
{
    /* Insertion sort: stable, and errors arrive nearly in line order already. */
    for (size_t i = 1; i < e->n; i++) {
        struct ml_config_error x = e->v[i];
        size_t j = i;
        while (j > 0 && e->v[j - 1].line > x.line) {
            e->v[j] = e->v[j - 1];
            j--;
        }
        e->v[j] = x;
    }
}

static int format_line(char *buf, size_t cap, const char *file, const struct ml_config_error *err)
{
    if (err->line > 0) {
        return snprintf(buf, cap, "%s:%d: %s", file, err->line, err->text);
    }
    return snprintf(buf, cap, "%s: %s", file, err->text);
}

void ml_config_errors_print(const struct ml_config_errors *e, const char *file, FILE *out)
{
    for (size_t i = 0; i < e->n; i++) {
        const struct ml_config_error *err = &e->v[i];
        if (err->line > 0) {
            fprintf(out, "%s:%d: %s\n", file, err->line, err->text);
        } else {
            fprintf(out, "%s: %s\n", file, err->text);
        }
    }
    if (e->n_dropped > 0) {
        fprintf(out, "%s: ... and %zu more errors\n", file, e->n_dropped);
    }
}

/* n, or less so that s[0..n) does not end inside a UTF-8 sequence (for a line cut short). */
static size_t utf8_complete(const char *s, size_t n)
{
    size_t start = n, len;

    while (start > 0 && ((unsigned char)s[start - 1] & 0xc0) == 0x80) {
        start--;
    }
    if (start == 0 || (unsigned char)s[start - 1] < 0xc0) {
        return n; /* ends in ASCII (or in stray continuation bytes: not ours to judge) */
    }
    start--;
    len = (unsigned char)s[start] >= 0xf0 ? 4 : (unsigned char)s[start] >= 0xe0 ? 3 : 2;
    return n - start >= len ? n : start;
}

size_t ml_config_errors_join(const struct ml_config_errors *e, const char *file, char *buf,
                             size_t cap)
{
    char more[64];
    size_t len = 0;
    size_t total = ml_config_errors_count(e);

    if (cap == 0) {
        return 0;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < e->n; i++) {
        char line[1024];
        int n = format_line(line, sizeof(line), file, &e->v[i]);
        size_t need, more_n;
        if (n < 0) {
            continue;
        }
        if ((size_t)n >= sizeof(line)) {
            n = (int)utf8_complete(line, sizeof(line) - 1);
        }
        /* Keep room for the "... and N more" line whenever lines remain after this one. */
        more_n = (size_t)snprintf(more, sizeof(more), "... and %zu more", total - i - 1);
        need = (len ? 1 : 0) + (size_t)n + (i + 1 < total ? 1 + more_n : 0);
        if (len + need >= cap) {
            more_n = (size_t)snprintf(more, sizeof(more), "... and %zu more", total - i);
            if (len + (len ? 1 : 0) + more_n < cap) {
                len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "\n" : "", more);
            }
            return len;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s%.*s", len ? "\n" : "", n, line);
    }
    if (e->n_dropped > 0) {
        int n = snprintf(more, sizeof(more), "... and %zu more", e->n_dropped);
        if (n > 0 && len + 1 + (size_t)n < cap) {
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "\n" : "", more);
        }
    }
    return len;
}
