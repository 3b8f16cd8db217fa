/* libFuzzer target: route matching (runtime/proxy/route.c) on what a client controls — the
 * :authority, the :path and the header fields — over a fixed snapshot with every kind of matcher,
 * and the glob matcher on both a pattern and a subject from the input, checked against a plain
 * recursive reference. In memory, deterministic.
 *
 * Input: fields separated by '\n': authority, path, then "name:value" header lines; or, when
 * byte 0 is 'G', "G<pattern>\n<subject>" for the glob alone. */
#include "config/errors.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"
#include "core/log.h"
#include "h2/hdrs.h"
#include "proxy/route.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char config[] = "[listener l]\nbind = 127.0.0.1:15001\n"
                             "[listener m]\nbind = 127.0.0.1:15002\n"
                             "[route exact]\nlistener = l\npath = /a.S/M\nto = a\n"
                             "[route hdr]\nlistener = l\nprefix = /a.S/\nheader = x-canary: 1\n"
                             "header = x-debug\nto = a 1, b 3\n"
                             "[route host]\nlistener = l\nauthority = *.ex*ple.com\nto = b\n"
                             "[route v6]\nlistener = l\nauthority = [*]\nprefix = /\nto = a\n"
                             "[route other]\nlistener = m\nto = b\n"
                             "[route rest]\nlistener = l\nprefix = /z\nto = a 0, b 5\n"
                             "[cluster a]\nendpoint = 127.0.0.1:1\n"
                             "[cluster b]\nendpoint = 127.0.0.1:2\n";

static struct ml_snapshot *snap;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct ml_config_errors errs;

    ml_log_level = -1;
    ml_config_errors_init(&errs);
    if (ml_config_load_text(config, sizeof(config) - 1, NULL, &errs, &snap) != 0) {
        abort(); /* the harness's own config: a programmer error */
    }
    ml_config_errors_deinit(&errs);
    return 0;
}

/* Bounds of the glob inputs tried (the reference below keeps a table of this size). */
#define GLOB_MAX_PATTERN 24
#define GLOB_MAX_SUBJECT 64

/* Reference glob: '*' any run, '?' one byte, case-insensitive. A table over (pattern suffix,
 * subject suffix) rather than plain recursion: the recursion is exponential in the stars
 * ("******h" against 60 bytes ran past libFuzzer's 10 s timeout in tests/fuzz/long.sh), this is
 * O(pn * sn) and as plainly right. m[i][j]: p[i..] matches s[j..]. */
static bool ref_glob(const char *p, size_t pn, const uint8_t *s, size_t sn)
{
    static bool m[GLOB_MAX_PATTERN + 1][GLOB_MAX_SUBJECT + 1];

    for (size_t j = 0; j <= sn; j++) {
        m[pn][j] = j == sn;
    }
    for (size_t i = pn; i-- > 0;) {
        for (size_t j = sn + 1; j-- > 0;) {
            if (p[i] == '*') {
                m[i][j] = m[i + 1][j] || (j < sn && m[i][j + 1]);
            } else {
                m[i][j] = j < sn &&
                          (p[i] == '?' || tolower((unsigned char)p[i]) == tolower(s[j])) &&
                          m[i + 1][j + 1];
            }
        }
    }
    return m[0][0];
}

static void fuzz_glob(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t pn = nl != NULL ? (size_t)(nl - data) : size;
    char *pattern;
    uint8_t *subject;
    size_t sn = nl != NULL ? size - pn - 1 : 0;

    if (pn > GLOB_MAX_PATTERN || sn > GLOB_MAX_SUBJECT || memchr(data, '\0', pn) != NULL) {
        return; /* the reference's table; a NUL ends the C-string pattern */
    }
    pattern = malloc(pn + 1);
    subject = malloc(sn + 1);
    if (pattern == NULL || subject == NULL) {
        free(pattern);
        free(subject);
        return;
    }
    memcpy(pattern, data, pn);
    pattern[pn] = '\0';
    if (sn > 0) {
        memcpy(subject, nl + 1, sn);
    }
    if (ml_route_glob(pattern, (struct ml_slice){subject, sn}) !=
        ref_glob(pattern, pn, subject, sn)) {
        __builtin_trap();
    }
    free(pattern);
    free(subject);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ml_slice part[2] = {{NULL, 0}, {NULL, 0}};
    struct ml_h2_hdrs hdrs;
    struct ml_route_request req;
    uint8_t *copy;
    size_t at = 0;
    int rv;

    if (size > 0 && data[0] == 'G') {
        fuzz_glob(data + 1, size - 1);
        return 0;
    }
    /* A copy of exactly the input, so that reading past any field shows under ASan. */
    if ((copy = malloc(size + 1)) == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    ml_h2_hdrs_init(&hdrs, 16384);
    for (int i = 0; i < 2; i++) {
        const uint8_t *nl = memchr(copy + at, '\n', size - at);
        size_t n = nl != NULL ? (size_t)(nl - (copy + at)) : size - at;

        part[i] = (struct ml_slice){copy + at, n};
        at += n + (nl != NULL);
    }
    while (at < size) {
        const uint8_t *nl = memchr(copy + at, '\n', size - at);
        size_t n = nl != NULL ? (size_t)(nl - (copy + at)) : size - at;
        const uint8_t *colon = memchr(copy + at, ':', n);
        size_t nn = colon != NULL ? (size_t)(colon - (copy + at)) : n;

        if (ml_h2_hdrs_add(&hdrs, copy + at, nn, colon != NULL ? colon + 1 : copy + at,
                           colon != NULL ? n - nn - 1 : 0, false) < 0) {
            break;
        }
        at += n + (nl != NULL);
    }
    req.authority = part[0];
    req.path = part[1];
    req.hdrs = &hdrs;
    for (int l = 0; l < (int)snap->n_listeners; l++) {
        rv = ml_route_match(snap, l, &req);
        if (rv != -ENOENT &&
            (rv < 0 || (uint32_t)rv >= snap->n_routes || snap->routes[rv].listener != l)) {
            __builtin_trap();
        }
        if (rv >= 0) {
            /* Every random number picks one of the route's clusters. */
            static const uint32_t r[] = {0, 1, 0x3fffffff, 0x40000000, 0xbfffffff, UINT32_MAX};

            for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
                int cl = ml_route_pick_cluster(&snap->routes[rv], r[i]);

                if (cl < 0 || (uint32_t)cl >= snap->n_clusters) {
                    __builtin_trap();
                }
            }
        }
    }
    if (ml_route_authority_host(req.authority).n > req.authority.n) {
        __builtin_trap();
    }
    ml_h2_hdrs_deinit(&hdrs);
    free(copy);
    return 0;
}
