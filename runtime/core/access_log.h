/* The access log: one line per call, logfmt or JSON ([node] access_log_format), to [node]
 * access_log (off | stderr | stdout | syslog | a file). It is a stream of its own, apart from the
 * node's log (core/log.h): on stdout or in a file it is alone; sharing stderr, its lines still
 * tell apart by their first bytes ("ts=" or "{", where a node log line starts with a digit).
 * A file is opened in append mode and reopened on request (SIGUSR1, after logrotate renamed it),
 * so new lines go to a new file at the configured path. Lines are written with one write() each:
 * whole lines, never interleaved. */
#ifndef ML_CORE_ACCESS_LOG_H
#define ML_CORE_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_access_log;
struct ml_cfg_node;

/* Longest line; longer ones are cut (values are bounded before that anyway). */
#define ML_ACCESS_LOG_LINE_MAX 2048

/* The sink node asks for. 0 and *out; -errno when the file cannot be opened (why says so);
 * -ENOMEM. */
int ml_access_log_new(const struct ml_cfg_node *node, char *why, size_t cap,
                      struct ml_access_log **out);
void ml_access_log_free(struct ml_access_log *al);

/* false for access_log = off (and a NULL log): callers skip building lines. */
bool ml_access_log_enabled(const struct ml_access_log *al);

/* Reopens the file (a no-op for the other sinks). 0, or -errno: the old file is kept then. */
int ml_access_log_reopen(struct ml_access_log *al);

/* Writes line[0..n) (without its '\n', which is added). */
void ml_access_log_write(struct ml_access_log *al, const char *line, size_t n);

/* A line being built, in the log's format. Values are escaped so the line stays one line and
 * parses: logfmt as ml_logfmt_add; JSON strings with \" \\ \n \r \t and \u00XX for the other
 * control bytes and every byte past ASCII (a peer's bytes need not be UTF-8). A line that would
 * pass ML_ACCESS_LOG_LINE_MAX is cut at a whole value, and JSON stays an object. */
struct ml_access_line {
    char buf[ML_ACCESS_LOG_LINE_MAX];
    size_t n;
    bool json;
};

void ml_access_line_begin(struct ml_access_line *l, const struct ml_access_log *al);
/* A string; NULL or "" is "-" in logfmt and null in JSON. */
void ml_access_line_str(struct ml_access_line *l, const char *key, const char *value);
void ml_access_line_uint(struct ml_access_line *l, const char *key, uint64_t value);
/* A number that may be missing (present false): "-" / null. 64 bits on every board: a long
 * is 32 on armv7, where a call's upstream_us passes it after 35 minutes. */
void ml_access_line_int_or_none(struct ml_access_line *l, const char *key, int64_t value,
                                bool present);
/* Closes the line and writes it. */
void ml_access_line_write(struct ml_access_log *al, struct ml_access_line *l);

/* Appends " key=value" (no leading space at n == 0) to buf, logfmt-quoted when value has a
 * space, '=', '"', a backslash or a control byte (which are escaped); an empty or NULL value is
 * written as "-". Cut at cap; buf stays NUL-terminated. Returns the new length. */
size_t ml_logfmt_add(char *buf, size_t n, size_t cap, const char *key, const char *value);
size_t ml_logfmt_add_len(char *buf, size_t n, size_t cap, const char *key, const char *value,
                         size_t value_len);

#endif
