/* libFuzzer target: access log lines from hostile values (a peer chooses the path, authority and
 * request id), in both formats.
 *
 * The input is split at 0xff bytes into values (a 0x00 byte ends a C string value early, as a
 * header copy would not: both are covered). Whatever the values, a line must be one line (no byte
 * below 0x20, no 0x7f) that fits ML_ACCESS_LOG_LINE_MAX; a JSON line must be one object of
 * "key":value members with strings closed and only ASCII inside (a shallow parser checks it); a
 * logfmt line must be key=value pairs with quoted values closed. Any break aborts, so libFuzzer
 * keeps the input. Run through tests/fuzz/run.sh. */
#include "config/snapshot-t.h"
#include "core/access_log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values per line at most: more than the access log writes, so lines get cut too. */
#define VALUES_MAX 24

static void fail(const char *what, const char *line)
{
    fprintf(stderr, "access_line_fuzz: invariant broken: %s\n--- line ---\n%s\n---\n", what, line);
    abort();
}

static void check_one_line(const struct ml_access_line *l)
{
    if (l->n >= ML_ACCESS_LOG_LINE_MAX || strlen(l->buf) != l->n) {
        fail("length", l->buf);
    }
    for (size_t i = 0; i < l->n; i++) {
        unsigned char c = (unsigned char)l->buf[i];

        if (c < 0x20 || c == 0x7f || (l->json && c >= 0x80)) {
            fail("a control byte (or non-ASCII in JSON) in the line", l->buf);
        }
    }
}

/* A JSON string at s[*i] (on its opening quote): moves past its closing quote. */
static bool json_string(const char *s, size_t n, size_t *i)
{
    for (size_t k = *i + 1; k < n; k++) {
        if (s[k] == '\\') {
            if (k + 1 >= n || strchr("\"\\nrtu", s[k + 1]) == NULL) {
                return false;
            }
            k += s[k + 1] == 'u' ? 5 : 1;
        } else if (s[k] == '"') {
            *i = k + 1;
            return true;
        }
    }
    return false;
}

static void check_json(const struct ml_access_line *l)
{
    const char *s = l->buf;
    size_t n = l->n, i = 1;

    if (n < 2 || s[0] != '{' || s[n - 1] != '}') {
        fail("not an object", s);
    }
    while (i < n - 1) {
        if (i > 1 && s[i++] != ',') {
            fail("members not separated by ','", s);
        }
        if (s[i] != '"' || !json_string(s, n - 1, &i) || s[i++] != ':') {
            fail("a member without \"key\":", s);
        }
        if (s[i] == '"') {
            if (!json_string(s, n - 1, &i)) {
                fail("a string value not closed", s);
            }
        } else if (strncmp(s + i, "null", 4) == 0) {
            i += 4;
        } else {
            size_t k = i + (s[i] == '-');

            if (s[k] < '0' || s[k] > '9') {
                fail("a value that is not a string, number or null", s);
            }
            while (s[k] >= '0' && s[k] <= '9') {
                k++;
            }
            i = k;
        }
    }
}

static void check_logfmt(const struct ml_access_line *l)
{
    const char *s = l->buf;
    size_t n = l->n, i = 0;

    while (i < n) {
        if (i > 0 && s[i++] != ' ') {
            fail("pairs not separated by one space", s);
        }
        while (i < n && s[i] != '=' && s[i] != ' ') {
            i++;
        }
        if (i >= n || s[i++] != '=') {
            fail("a key without '='", s);
        }
        if (s[i] == '"') {
            for (i++; i < n && s[i] != '"'; i++) {
                i += s[i] == '\\';
            }
            if (i++ >= n) {
                fail("a quoted value not closed", s);
            }
        } else {
            while (i < n && s[i] != ' ') {
                i++;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"ts", "client", "request_id", "path", "authority"};
    static char text[65536];
    struct ml_access_line l;

    if (size >= sizeof(text)) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    for (int format = ML_CFG_ACCESS_LOG_LOGFMT; format <= ML_CFG_ACCESS_LOG_JSON; format++) {
        struct ml_cfg_node node = {.access_log = ML_CFG_ACCESS_LOG_OFF,
                                   .access_log_format = format};
        struct ml_access_log *al;
        char why[128], *p = text, *end = text + size;
        int k = 0;

        if (ml_access_log_new(&node, why, sizeof(why), &al) < 0) {
            return 0;
        }
        ml_access_line_begin(&l, al);
        while (p <= end && k < VALUES_MAX) {
            char *sep = memchr(p, 0xff, (size_t)(end - p));
            char saved;

            if (sep == NULL) {
                sep = end;
            }
            saved = *sep;
            *sep = '\0';
            ml_access_line_str(&l, keys[k % 5], p);
            ml_access_line_uint(&l, "n", (uint64_t)(sep - p));
            ml_access_line_int_or_none(&l, "s", -(long)k, k % 2 == 0);
            *sep = saved;
            p = sep + 1;
            k++;
        }
        ml_access_line_write(al, &l); /* off: closes the line, writes nothing */
        check_one_line(&l);
        if (format == ML_CFG_ACCESS_LOG_JSON) {
            check_json(&l);
        } else {
            check_logfmt(&l);
        }
        ml_access_log_free(al);
    }
    return 0;
}
