/* Private to config/: what the files of validation share (validate.c drives; validate_*.c read
 * and check each section kind). Everything reported goes to c->errs with its line; out of memory
 * sets c->oom and validation stops after the reading pass. */
#ifndef ML_CONFIG_VALIDATE_INT_H
#define ML_CONFIG_VALIDATE_INT_H

#include "config/config_int.h"
#include "config/errors-t.h"
#include "config/schema-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_snapshot;
struct ml_cfg_addr;
struct ml_cfg_range_ms;
struct ml_cfg_route;
struct ml_cfg_cluster;
struct ml_cfg_authz;
struct ml_cfg_node;
struct ml_cfg_fleet;
struct ml_key_def;

struct ml_config_vctx {
    struct ml_snapshot *snap;
    const struct ml_raw_doc *doc;
    struct ml_config_errors *errs;
    const struct ml_raw_section *sec; /* the section being read; NULL while applying defaults */
    int oom;
};

/* The "got" part of a message, with its NUL: a longer value is shown cut (ml_config_shown). */
#define GOT_MAX 128

/* validate_error.c: reports "[SECTION] KEY: <fmt>" at line (sec NULL: a built-in default that
 * does not parse, a bug in schema.def); bad_value says "expected <what>, got "V"" of the section
 * being read and returns -1; shown copies v into buf[cap] on one line, cut with "...". */
void ml_config_key_error(struct ml_config_vctx *c, const struct ml_raw_section *sec, int line,
                         const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
const char *ml_config_shown(const char *v, char *buf, size_t cap);
int ml_config_bad_value(struct ml_config_vctx *c, int line, const struct ml_key_def *k,
                        const char *v, const char *what_fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* validate_value.c: strdup into the snapshot's arena (NULL and c->oom set when out of memory),
 * trim (spaces off both ends of s[0..*n)), and the readers of the common value types. A reader
 * takes the value v given at line for key k and stores it in out (or in the section): 0, or -1
 * after reporting why (bad_value). */
char *ml_config_strdup(struct ml_config_vctx *c, const char *s, size_t n);
const char *ml_config_trim(const char *s, size_t *n);
bool ml_config_has_space_or_ctl(const char *s);
void ml_config_duration_bounds(const struct ml_key_def *k, char *buf, size_t cap);
int ml_config_read_duration(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                            int line, uint32_t *out);
int ml_config_read_uint(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, uint32_t *out);
int ml_config_read_size(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, uint32_t *out);
int ml_config_read_range(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                         int line, struct ml_cfg_range_ms *out);
int ml_config_read_enum(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, int *out);
int ml_config_read_addr(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, struct ml_cfg_addr *a, bool off_allowed);
int ml_config_read_path(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, const char **out);
bool ml_config_is_glob(const char *s);
int ml_config_read_uri(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                       int line, const char **out);

/* validate_route.c: the [route] readers (as above) and its checks. */
int ml_config_read_header(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                          int line, struct ml_cfg_route *r);
int ml_config_read_split(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                         int line, struct ml_cfg_route *r);
int ml_config_read_retry_on(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                            int line, uint32_t *out);
int ml_config_read_fault_delay(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                               int line, struct ml_cfg_route *r);
int ml_config_read_fault_abort(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                               int line, struct ml_cfg_route *r);
int ml_config_read_rate(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, struct ml_cfg_route *r);
void ml_config_check_route(struct ml_config_vctx *c, const struct ml_raw_section *sec);

/* validate_cluster.c: the [cluster] readers (as above) and its checks. */
int ml_config_read_endpoint(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                            int line, struct ml_cfg_cluster *cl);
int ml_config_read_dns(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                       int line, struct ml_cfg_cluster *cl);
int ml_config_read_hash(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, struct ml_cfg_cluster *cl);
void ml_config_check_cluster(struct ml_config_vctx *c, const struct ml_raw_section *sec);

/* validate_authz.c: an allow or deny rule (as above) and the checks of [authz]. */
int ml_config_read_rule(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, struct ml_cfg_authz *az);
void ml_config_check_authz(struct ml_config_vctx *c, const struct ml_raw_section *sec);

/* validate_node.c: the [node] and [fleet] readers (as above), their checks, and [node] id
 * when the file gives none (the host name). */
int ml_config_read_url(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                       int line, struct ml_cfg_fleet *f);
int ml_config_read_access_log(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                              int line, struct ml_cfg_node *n);
int ml_config_read_labels(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                          int line, struct ml_cfg_node *node);
void ml_config_check_node(struct ml_config_vctx *c, const struct ml_raw_section *sec);
void ml_config_check_fleet(struct ml_config_vctx *c, const struct ml_raw_section *sec);
void ml_config_default_node_id(struct ml_config_vctx *c);

/* validate_listener.c: the checks of [listener]. */
void ml_config_check_listener(struct ml_config_vctx *c, const struct ml_raw_section *sec);

/* validate_tls.c: tls refused at key when not off and not built; the certificate files of a
 * section checked, errors at line[0..2] (cert, key, ca). */
void ml_config_tls_refused(struct ml_config_vctx *c, const struct ml_raw_section *sec, int key,
                           int tls, bool built);
void ml_config_check_tls_files(struct ml_config_vctx *c, const struct ml_raw_section *sec,
                               const char *cert, const char *key, const char *ca,
                               const int line[3]);

/* validate.c: the first value given for key in sec ("" when none); the index of the listener or
 * cluster of that name, -1 when none. */
const char *ml_config_value_at(const struct ml_config_vctx *c, const struct ml_raw_section *sec,
                               int key);
int ml_config_find_listener(const struct ml_snapshot *s, const char *name);
int ml_config_find_cluster(const struct ml_snapshot *s, const char *name);

#endif
