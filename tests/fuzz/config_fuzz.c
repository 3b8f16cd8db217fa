/* libFuzzer target: INI text → ml_config_load_text, in memory and deterministic.
 *
 * Whatever the bytes, loading must end in one of the codes snapshot.h documents, build a snapshot
 * that stays inside the Kconfig limits, explain every refusal in the error list, and render that
 * list (ml_config_errors_join, what a Nack and POST /config carry) as at most 4 KiB of
 * "FILE:LINE: ..." lines with at most one "... and N more" line at the end. Any break of that
 * contract aborts with a message, so libFuzzer keeps the input. Each input is loaded twice: as it
 * is, and with one allocation made to fail. Run through tests/fuzz/run.sh. */
#include "config/errors.h"
#include "config/features.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "grpc/health.h"
#include "meshlet_config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_LABEL "fuzz"

static void fail(const char *what, int rv, const char *text)
{
    fprintf(stderr, "config_fuzz: invariant broken: %s (rv %d)\n", what, rv);
    if (text != NULL) {
        fprintf(stderr, "--- joined errors ---\n%s\n---\n", text);
    }
    abort();
}

#define CHECK(cond, rv, text)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(#cond, (rv), (text));                                                             \
        }                                                                                          \
    } while (0)

/* Length of the UTF-8 sequence at s[0..n) (RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    size_t len;

    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (len > n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return len;
}

/* "... and N more": N, or -1 when line is not that line. */
static long more_line(const char *line, size_t n)
{
    static const char head[] = "... and ";
    static const char tail[] = " more";
    char digits[24];
    size_t nd;

    if (n <= sizeof(head) - 1 + sizeof(tail) - 1 || memcmp(line, head, sizeof(head) - 1) != 0 ||
        memcmp(line + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0) {
        return -1;
    }
    nd = n - (sizeof(head) - 1) - (sizeof(tail) - 1);
    if (nd == 0 || nd >= sizeof(digits)) {
        return -1;
    }
    memcpy(digits, line + sizeof(head) - 1, nd);
    digits[nd] = '\0';
    for (size_t i = 0; i < nd; i++) {
        if (digits[i] < '0' || digits[i] > '9') {
            return -1;
        }
    }
    return strtol(digits, NULL, 10);
}

/* The joined text of errs into cap bytes: NUL-terminated at the length returned, one error per
 * line, each "fuzz:" (then LINE: for a line error), text without control bytes and in UTF-8, and
 * the lines shown plus the N of a last "... and N more" account for every error. */
static void check_joined(const struct ml_config_errors *errs, size_t cap, int rv)
{
    static char buf[ML_CONFIG_ERRORS_TEXT_MAX + 64];
    const size_t guard = sizeof(buf) - cap;
    size_t len, shown = 0, total = ml_config_errors_count(errs);
    long more = -1;
    const char *p;

    memset(buf, 0x5a, sizeof(buf));
    len = ml_config_errors_join(errs, FILE_LABEL, buf, cap);
    CHECK(len < cap || (cap == 0 && len == 0), rv, NULL);
    for (size_t i = cap; i < cap + guard; i++) {
        CHECK(buf[i] == 0x5a, rv, NULL); /* nothing written past cap */
    }
    if (cap == 0) {
        return;
    }
    CHECK(buf[len] == '\0' && strlen(buf) == len, rv, NULL);
    /* In 4 KiB there is always room for a line or "... and N more"; a tiny cap may hold none. */
    if (cap >= ML_CONFIG_ERRORS_TEXT_MAX) {
        CHECK((total == 0) == (len == 0), rv, buf);
    } else if (len == 0) {
        return;
    }

    for (p = buf; p < buf + len;) {
        const char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);

        CHECK(more < 0, rv, buf); /* "... and N more" only as the last line */
        CHECK(n > 0, rv, buf);    /* no empty lines */
        if ((more = more_line(p, n)) < 0) {
            CHECK(n > sizeof(FILE_LABEL) && memcmp(p, FILE_LABEL ":", sizeof(FILE_LABEL)) == 0, rv,
                  buf);
            shown++;
        } else {
            CHECK(more > 0, rv, buf);
        }
        for (size_t i = 0; i < n;) {
            size_t l = utf8_seq((const unsigned char *)p + i, n - i);
            CHECK(l > 0, rv, buf);                                       /* UTF-8 */
            CHECK((unsigned char)p[i] >= 0x20 && p[i] != 0x7f, rv, buf); /* no control bytes */
            i += l;
        }
        p += n + (nl ? 1 : 0);
        CHECK(!(nl && p == buf + len), rv, buf); /* no trailing newline */
    }
    CHECK(shown + (size_t)(more > 0 ? more : 0) == total, rv, buf);
}

static void check_snapshot(const struct ml_snapshot *s, size_t n, int rv)
{
    CHECK(s->refcount == 1, rv, NULL);
    CHECK(s->text != NULL && s->text_bytes == n && s->text[n] == '\0', rv, NULL);
    CHECK(strncmp(s->version, "local-", 6) == 0 && strlen(s->version) == 6 + 12, rv, NULL);
    CHECK(s->node.id != NULL && s->node.state_dir != NULL, rv, NULL);

    CHECK(s->n_listeners <= CONFIG_ML_MAX_LISTENERS, rv, NULL);
    CHECK(s->n_routes <= CONFIG_ML_MAX_ROUTES, rv, NULL);
    CHECK(s->n_clusters <= CONFIG_ML_MAX_CLUSTERS, rv, NULL);
    CHECK(s->n_authz <= CONFIG_ML_MAX_LISTENERS, rv, NULL);
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        const struct ml_cfg_cluster *c = &s->clusters[i];
        /* never fail open: TLS to upstreams is accepted only whole (a ca to verify against, a
         * cert and key to show with mtls, in a build with it), and its keys never without it
         * (they would check or show nothing) */
        if (c->tls == ML_CFG_TLS_OFF) {
            CHECK(c->sni == NULL && c->identity == NULL && c->ca == NULL && c->cert == NULL &&
                      c->key == NULL,
                  rv, NULL);
        } else {
            CHECK(ML_HAVE_DATA_TLS && c->ca != NULL, rv, NULL);
            CHECK(c->tls == ML_CFG_TLS_MTLS ? c->cert != NULL && c->key != NULL
                                            : c->cert == NULL && c->key == NULL,
                  rv, NULL);
        }
        /* what is still refused (config/unimplemented.c): balancers Kconfig left out */
        CHECK((c->lb != ML_CFG_LB_RING_HASH || ML_HAVE_LB_RING_HASH) &&
                  (c->lb != ML_CFG_LB_MAGLEV || ML_HAVE_LB_MAGLEV),
              rv, NULL);
        /* the Check request's bound (grpc/health.h) */
        CHECK(c->health_service == NULL || strlen(c->health_service) <= ML_GRPC_HEALTH_SERVICE_MAX,
              rv, NULL);
    }

    for (uint32_t i = 0; i < s->n_listeners; i++) {
        const struct ml_cfg_listener *l = &s->listeners[i];
        CHECK(l->name != NULL && l->bind.set && l->bind.port != 0, rv, NULL);
        CHECK(l->max_connections >= 1 && l->max_connections <= CONFIG_ML_MAX_CONNECTIONS, rv, NULL);
        CHECK(l->max_streams >= 1 && l->max_streams <= CONFIG_ML_H2_MAX_STREAMS, rv, NULL);
    }
    for (uint32_t i = 0; i < s->n_routes; i++) {
        const struct ml_cfg_route *r = &s->routes[i];
        uint64_t sum = 0;
        CHECK(r->name != NULL, rv, NULL);
        CHECK(r->listener >= 0 && (uint32_t)r->listener < s->n_listeners, rv, NULL);
        CHECK(r->n_headers <= CONFIG_ML_MAX_ROUTE_HEADERS, rv, NULL);
        CHECK(r->n_split >= 1 && r->n_split <= CONFIG_ML_MAX_SPLIT, rv, NULL);
        CHECK(r->retries <= CONFIG_ML_MAX_RETRIES, rv, NULL);
        CHECK(r->retry_backoff.from_ms <= r->retry_backoff.to_ms, rv, NULL);
        CHECK(r->fault_delay_ppm <= 1000000 && r->fault_abort_ppm <= 1000000, rv, NULL);
        CHECK(!(r->prefix && r->path), rv, NULL);
        for (uint32_t j = 0; j < r->n_headers; j++) {
            CHECK(r->headers[j].name != NULL, rv, NULL);
        }
        for (uint32_t j = 0; j < r->n_split; j++) {
            int cl = r->split[j].cluster;
            CHECK(cl >= 0 && (uint32_t)cl < s->n_clusters, rv, NULL);
            CHECK(strcmp(s->clusters[cl].name, r->split[j].cluster_name) == 0, rv, NULL);
            sum += r->split[j].weight;
        }
        CHECK(sum > 0, rv, NULL);
    }
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        const struct ml_cfg_cluster *c = &s->clusters[i];
        CHECK(c->name != NULL, rv, NULL);
        CHECK(c->n_endpoints <= CONFIG_ML_MAX_ENDPOINTS, rv, NULL);
        CHECK((c->n_endpoints > 0) != (c->dns_host != NULL), rv, NULL);
        for (uint32_t j = 0; j < c->n_endpoints; j++) {
            CHECK(c->endpoints[j].weight >= 1 && c->endpoints[j].weight <= 128, rv, NULL);
            CHECK(c->endpoints[j].addr.set && c->endpoints[j].addr.text != NULL, rv, NULL);
        }
        CHECK(c->max_connections >= 1 && c->max_connections <= CONFIG_ML_MAX_UPSTREAM_CONNECTIONS,
              rv, NULL);
        CHECK(c->outlier_max_ppm <= 1000000, rv, NULL);
    }
    for (uint32_t i = 0; i < s->n_authz; i++) {
        const struct ml_cfg_authz *a = &s->authz[i];
        CHECK(a->listener >= 0 && (uint32_t)a->listener < s->n_listeners, rv, NULL);
        CHECK(strcmp(a->name, s->listeners[a->listener].name) == 0, rv, NULL);
        CHECK(a->n_rules <= CONFIG_ML_MAX_AUTHZ_RULES, rv, NULL);
        for (uint32_t j = 0; j < a->n_rules; j++) {
            CHECK(a->rules[j].principal != NULL && a->rules[j].path != NULL, rv, NULL);
        }
    }
}

/* One load of data[0..size) and every check on its outcome; frees all it made. Returns the code. */
static int load_and_check(const uint8_t *data, size_t size)
{
    static const size_t small_caps[] = {0, 1, 40, 300};
    struct ml_config_errors errs;
    struct ml_snapshot *snap = (struct ml_snapshot *)1; /* must come back NULL on failure */
    char summary[160];
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_text((const char *)data, size, NULL, &errs, &snap);
    CHECK(rv == 0 || rv == -EINVAL || rv == -EILSEQ || rv == -EFBIG || rv == -ENOMEM, rv, NULL);
    if (rv == 0) {
        CHECK(snap != NULL && ml_config_errors_count(&errs) == 0, rv, NULL);
        check_snapshot(snap, size, rv);
        ml_snapshot_summary(snap, summary, sizeof(summary));
        CHECK(ml_snapshot_ref(snap) == snap && snap->refcount == 2, rv, NULL);
        ml_snapshot_unref(snap);
        ml_snapshot_unref(snap);
    } else {
        CHECK(snap == NULL, rv, NULL);
    }
    if (rv == -EINVAL) {
        CHECK(ml_config_errors_count(&errs) >= 1, rv, NULL);
    }
    if (rv == -EILSEQ || rv == -EFBIG) { /* one line-0 error (or one dropped for no memory) */
        CHECK(ml_config_errors_count(&errs) == 1 && (errs.n == 0 || errs.v[0].line == 0), rv, NULL);
    }
    for (size_t i = 0; i < errs.n; i++) {
        CHECK(errs.v[i].text != NULL && errs.v[i].line >= 0, rv, NULL);
        /* sorted by line when invalid (snapshot.c sorts them) */
        CHECK(rv != -EINVAL || i == 0 || errs.v[i - 1].line <= errs.v[i].line, rv, NULL);
    }
    CHECK(errs.n <= CONFIG_ML_CONFIG_MAX_ERRORS, rv, NULL);

    check_joined(&errs, ML_CONFIG_ERRORS_TEXT_MAX, rv);
    for (size_t i = 0; i < sizeof(small_caps) / sizeof(small_caps[0]); i++) {
        check_joined(&errs, small_caps[i], rv);
    }
    ml_config_errors_deinit(&errs);
    return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u; /* FNV-1a of the input: picks the allocation to fail */
    long made;
    int rv, rv_nomem;

    ml_alloc_fail_after(-1);
    rv = load_and_check(data, size);
    made = ml_alloc_fail_after(-1);
    /* Nothing failed to allocate: only an arena cap (snapshot.c) can say -ENOMEM, and the caps
     * are sized so that any text up to CONFIG_ML_MAX_CONFIG_BYTES fits. */
    CHECK(rv != -ENOMEM, rv, NULL);

    /* Then the same input once more with one allocation failing (runtime/STYLE.md: each allocation
     * failing in turn gives a clean error, no leak, no crash), chosen from the input's bytes so
     * the run stays deterministic and the fuzzer walks the failure points as it mutates. */
    if (made > 0) {
        for (size_t i = 0; i < size; i++) {
            h = (h ^ data[i]) * 16777619u;
        }
        ml_alloc_fail_after((long)(h % (uint32_t)made));
        rv_nomem = load_and_check(data, size);
        ml_alloc_fail_after(-1);
        CHECK(rv_nomem == rv || rv_nomem == -ENOMEM, rv_nomem, NULL);
    }
    return 0;
}
