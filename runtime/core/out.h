/* core/out.h: text rendered into a caller's buffer that never overflows: once a write does not
 * fit, the output is marked full and every later write is dropped, so a renderer writes freely
 * and checks once at the end (admin bodies, /stats, Prometheus, /clusters). */
#ifndef ML_CORE_OUT_H
#define ML_CORE_OUT_H

#include <stdbool.h>
#include <stddef.h>

struct ml_out {
    char *p;    /* borrowed: the caller's buffer */
    size_t n;   /* bytes written, always < cap, p[n] == '\0' */
    size_t cap; /* p's size */
    bool full;  /* a write did not fit: the output is cut, the caller gets -ENOBUFS */
};

/* An output over buf[0..cap). */
static inline struct ml_out ml_out_over(char *buf, size_t cap)
{
    return (struct ml_out){.p = buf, .cap = cap};
}

__attribute__((format(printf, 2, 3))) void ml_out_printf(struct ml_out *o, const char *fmt, ...);

/* v (NULL: "") as a JSON string: quote, backslash and control bytes escaped. */
void ml_out_json_str(struct ml_out *o, const char *v);

/* v as a Prometheus label value (without the quotes): backslash, quote and newline escaped. */
void ml_out_prom_label(struct ml_out *o, const char *v);

/* The bytes written, or -ENOBUFS when something did not fit. */
long ml_out_finish(const struct ml_out *o);

#endif
