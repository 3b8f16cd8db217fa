#include "core/access_log.h"

#include "config/snapshot-t.h"
#include "core/alloc.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

struct ml_access_log {
    enum ml_cfg_access_log kind;
    bool json;        /* access_log_format = json */
    int fd;           /* ML_CFG_ACCESS_LOG_FILE: the open file; else -1 */
    const char *path; /* the node config's (the snapshot outlives the log) */
};

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    return fd < 0 ? -errno : fd;
}

int ml_access_log_new(const struct ml_cfg_node *node, char *why, size_t cap,
                      struct ml_access_log **out)
{
    struct ml_access_log *al;
    int fd;

    *out = NULL;
    if ((al = ml_calloc(1, sizeof(*al))) == NULL) {
        snprintf(why, cap, "out of memory for the access log");
        return -ENOMEM;
    }
    al->kind = node->access_log;
    al->json = node->access_log_format == ML_CFG_ACCESS_LOG_JSON;
    al->fd = -1;
    al->path = node->access_log_path;
    if (al->kind == ML_CFG_ACCESS_LOG_FILE) {
        if ((fd = open_file(al->path)) < 0) {
            snprintf(why, cap, "access_log %s: cannot open it: %s", al->path, strerror(-fd));
            ml_free(al);
            return fd;
        }
        al->fd = fd;
    } else if (al->kind == ML_CFG_ACCESS_LOG_SYSLOG) {
        openlog("meshlet", LOG_NDELAY, LOG_DAEMON);
    }
    *out = al;
    return 0;
}

void ml_access_log_free(struct ml_access_log *al)
{
    if (al == NULL) {
        return;
    }
    if (al->fd >= 0) {
        close(al->fd);
    }
    if (al->kind == ML_CFG_ACCESS_LOG_SYSLOG) {
        closelog();
    }
    ml_free(al);
}

bool ml_access_log_enabled(const struct ml_access_log *al)
{
    return al != NULL && al->kind != ML_CFG_ACCESS_LOG_OFF;
}

int ml_access_log_reopen(struct ml_access_log *al)
{
    int fd;

    if (al == NULL || al->kind != ML_CFG_ACCESS_LOG_FILE) {
        return 0;
    }
    if ((fd = open_file(al->path)) < 0) {
        ML_LOG_ERR("access_log %s: cannot reopen it: %s: still writing to the old file", al->path,
                   strerror(-fd));
        return fd;
    }
    close(al->fd);
    al->fd = fd;
    ML_LOG_INF("access_log %s: reopened", al->path);
    return 0;
}

void ml_access_log_write(struct ml_access_log *al, const char *line, size_t n)
{
    char buf[ML_ACCESS_LOG_LINE_MAX + 1];

    if (!ml_access_log_enabled(al)) {
        return;
    }
    if (n > ML_ACCESS_LOG_LINE_MAX) {
        n = ML_ACCESS_LOG_LINE_MAX;
    }
    if (al->kind == ML_CFG_ACCESS_LOG_SYSLOG) {
        syslog(LOG_INFO, "%.*s", (int)n, line);
        return;
    }
    memcpy(buf, line, n);
    buf[n++] = '\n';
    /* A full disk or a closed stderr loses the line; the call is not worth failing for it. */
    if (write(al->kind == ML_CFG_ACCESS_LOG_FILE     ? al->fd
              : al->kind == ML_CFG_ACCESS_LOG_STDOUT ? STDOUT_FILENO
                                                     : STDERR_FILENO,
              buf, n) < 0) {
        return;
    }
}

static bool needs_quotes(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];

        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f) {
            return true;
        }
    }
    return false;
}

size_t ml_logfmt_add_len(char *buf, size_t n, size_t cap, const char *key, const char *value,
                         size_t value_len)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = n;
    int rv;

    if (cap == 0 || n >= cap - 1) {
        return n;
    }
    rv = snprintf(buf + n, cap - n, "%s%s=", n > 0 ? " " : "", key);
    if (rv < 0 || (size_t)rv >= cap - n) {
        buf[n] = '\0';
        return n;
    }
    n += (size_t)rv;
    if (value == NULL || value_len == 0) {
        value = "-";
        value_len = 1;
    }
    if (!needs_quotes(value, value_len)) {
        size_t k = value_len < cap - 1 - n ? value_len : cap - 1 - n;

        memcpy(buf + n, value, k);
        n += k;
    } else {
        if (n + 2 > cap - 1) { /* not even both quotes: leave the pair out, never half-quoted */
            buf[start] = '\0';
            return start;
        }
        buf[n++] = '"';
        /* 4 bytes per input byte at most, and the closing quote. */
        for (size_t i = 0; i < value_len && n + 5 < cap; i++) {
            unsigned char c = (unsigned char)value[i];

            if (c == '"' || c == '\\') {
                buf[n++] = '\\';
                buf[n++] = (char)c;
            } else if (c < ' ' || c == 0x7f) {
                buf[n++] = '\\';
                buf[n++] = 'x';
                buf[n++] = hex[c >> 4];
                buf[n++] = hex[c & 15];
            } else {
                buf[n++] = (char)c;
            }
        }
        if (n < cap - 1) {
            buf[n++] = '"';
        }
    }
    buf[n] = '\0';
    return n;
}

size_t ml_logfmt_add(char *buf, size_t n, size_t cap, const char *key, const char *value)
{
    return ml_logfmt_add_len(buf, n, cap, key, value, value != NULL ? strlen(value) : 0);
}

/* ---- the line builder ----------------------------------------------------------------------- */

/* Room kept for what closes a line: the JSON '}' and the NUL. */
#define LINE_CLOSE_BYTES 2

void ml_access_line_begin(struct ml_access_line *l, const struct ml_access_log *al)
{
    l->json = al != NULL && al->json;
    l->n = 0;
    if (l->json) {
        l->buf[l->n++] = '{';
    }
    l->buf[l->n] = '\0';
}

/* JSON: appends ,"key": and the raw value text (a number, null), or nothing when it does not fit.
 */
static void json_raw(struct ml_access_line *l, const char *key, const char *raw)
{
    size_t cap = sizeof(l->buf) - LINE_CLOSE_BYTES;
    int rv = snprintf(l->buf + l->n, cap - l->n, "%s\"%s\":%s", l->n > 1 ? "," : "", key, raw);

    if (rv < 0 || (size_t)rv >= cap - l->n) {
        l->buf[l->n] = '\0'; /* cut at a whole value */
        return;
    }
    l->n += (size_t)rv;
}

static void json_str(struct ml_access_line *l, const char *key, const char *v, size_t vn)
{
    static const char hex[] = "0123456789abcdef";
    size_t cap = sizeof(l->buf) - LINE_CLOSE_BYTES, start = l->n;
    int rv = snprintf(l->buf + l->n, cap - l->n, "%s\"%s\":\"", l->n > 1 ? "," : "", key);

    if (rv < 0 || (size_t)rv >= cap - l->n - 1) {
        l->buf[l->n] = '\0';
        return;
    }
    l->n += (size_t)rv;
    for (size_t i = 0; i < vn; i++) {
        unsigned char c = (unsigned char)v[i];
        char esc[7];
        size_t k;

        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, k = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't', k = 2;
        } else if (c < ' ' || c >= 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15], k = 6;
        } else {
            esc[0] = (char)c, k = 1;
        }
        if (l->n + k + 1 >= cap) { /* the value is cut; its closing quote still fits */
            break;
        }
        memcpy(l->buf + l->n, esc, k);
        l->n += k;
    }
    if (l->n + 1 >= cap) {
        l->n = start; /* not even the quote: leave the value out */
    } else {
        l->buf[l->n++] = '"';
    }
    l->buf[l->n] = '\0';
}

void ml_access_line_str(struct ml_access_line *l, const char *key, const char *value)
{
    if (!l->json) {
        l->n = ml_logfmt_add(l->buf, l->n, sizeof(l->buf) - 1, key, value);
    } else if (value == NULL || value[0] == '\0') {
        json_raw(l, key, "null");
    } else {
        json_str(l, key, value, strlen(value));
    }
}

void ml_access_line_uint(struct ml_access_line *l, const char *key, uint64_t value)
{
    char num[24];

    snprintf(num, sizeof(num), "%" PRIu64, value);
    if (l->json) {
        json_raw(l, key, num);
    } else {
        l->n = ml_logfmt_add(l->buf, l->n, sizeof(l->buf) - 1, key, num);
    }
}

void ml_access_line_int_or_none(struct ml_access_line *l, const char *key, int64_t value,
                                bool present)
{
    char num[24]; /* INT64_MIN is 20 characters */

    snprintf(num, sizeof(num), "%" PRId64, value);
    if (l->json) {
        json_raw(l, key, present ? num : "null");
    } else {
        l->n = ml_logfmt_add(l->buf, l->n, sizeof(l->buf) - 1, key, present ? num : NULL);
    }
}

void ml_access_line_write(struct ml_access_log *al, struct ml_access_line *l)
{
    if (l->json) {
        l->buf[l->n++] = '}'; /* LINE_CLOSE_BYTES kept room for it */
        l->buf[l->n] = '\0';
    }
    ml_access_log_write(al, l->buf, l->n);
}
