/* How validation says what is wrong: "[SECTION] KEY: expected ..., got "VALUE"", with the value
 * shown on one line, bounded (validate_int.h). */
#include "config/validate_int.h"

#include "config/errors.h"
#include "config/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* "[kind name]" of a section, with its NUL (names are at most 63 characters). */
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
void ml_config_key_error(struct ml_config_vctx *c, const struct ml_raw_section *sec, int line,
                         const char *key, const char *fmt, ...)
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
const char *ml_config_shown(const char *v, char *buf, size_t cap)
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

/* "[SECTION] KEY: expected <what>, got "VALUE"" */
int ml_config_bad_value(struct ml_config_vctx *c, int line, const struct ml_key_def *k,
                        const char *v, const char *what_fmt, ...)
{
    char what[512], got[GOT_MAX];
    va_list ap;

    va_start(ap, what_fmt);
    vsnprintf(what, sizeof(what), what_fmt, ap);
    va_end(ap);
    ml_config_key_error(c, c->sec, line, k->name, "expected %s, got \"%s\"", what,
                        ml_config_shown(v, got, sizeof(got)));
    return -1;
}
