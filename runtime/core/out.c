/* core/out.h: bounded text output. */
#include "core/out.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

void ml_out_printf(struct ml_out *o, const char *fmt, ...)
{
    va_list ap;
    int rv;

    if (o->full || o->cap == 0) {
        o->full = true;
        return;
    }
    va_start(ap, fmt);
    rv = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
    va_end(ap);
    if (rv < 0 || (size_t)rv >= o->cap - o->n) {
        o->p[o->n] = '\0'; /* vsnprintf wrote a cut piece: the output stays what fitted */
        o->full = true;
        return;
    }
    o->n += (size_t)rv;
}

void ml_out_json_str(struct ml_out *o, const char *v)
{
    ml_out_printf(o, "\"");
    for (; v != NULL && *v != '\0' && !o->full; v++) {
        unsigned char ch = (unsigned char)*v;

        if (ch == '"' || ch == '\\') {
            ml_out_printf(o, "\\%c", ch);
        } else if (ch == '\n') {
            ml_out_printf(o, "\\n");
        } else if (ch < 0x20) {
            ml_out_printf(o, "\\u%04x", ch);
        } else {
            ml_out_printf(o, "%c", ch);
        }
    }
    ml_out_printf(o, "\"");
}

void ml_out_prom_label(struct ml_out *o, const char *v)
{
    for (; v != NULL && *v != '\0' && !o->full; v++) {
        if (*v == '\\' || *v == '"') {
            ml_out_printf(o, "\\%c", *v);
        } else if (*v == '\n') {
            ml_out_printf(o, "\\n");
        } else {
            ml_out_printf(o, "%c", *v);
        }
    }
}

long ml_out_finish(const struct ml_out *o)
{
    return o->full ? -ENOBUFS : (long)o->n;
}
