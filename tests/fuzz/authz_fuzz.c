/* libFuzzer target: the [authz] matcher (runtime/proxy/authz.c) on what a peer controls — its
 * principal (a certificate's URI SAN is the peer's to choose, within its CA) and the :path — over
 * a fixed section, plus the glob alone checked against a plain recursive reference. The
 * properties that keep authz from failing open: a peer without a principal is matched only by
 * `-` and a deny `*`; a decision never depends on the query string; a case-changed principal
 * never matches a glob without wildcards. In memory, deterministic.
 *
 * Input: "G<pattern>\n<subject>" for the glob alone; else "<principal>\n<path>" (an empty
 * principal is none). */
#include "config/errors.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"
#include "core/log.h"
#include "proxy/authz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char config[] = "[listener l]\nbind = 127.0.0.1:15001\n"
                             "[route r]\nlistener = l\nto = c\n"
                             "[cluster c]\nendpoint = 127.0.0.1:1\n"
                             "[authz l]\n"
                             "deny = * -> /grpc.reflection.*\n"
                             "allow = spiffe://mesh.local/front* -> /a.S/*\n"
                             "deny = - -> /a.S/Admin\n"
                             "allow = - -> /a.S/*\n"
                             "allow = spiffe://mesh.local/exact -> *\n"
                             "default = deny\n";

/* The largest principal or path the target builds a C string of. */
#define FUZZ_FIELD_MAX 4096

static struct ml_snapshot *snap;
static const struct ml_cfg_authz *az;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct ml_config_errors errs;

    (void)argc;
    (void)argv;
    ml_log_level = -1;
    ml_config_errors_init(&errs);
    if (ml_config_load_text(config, sizeof(config) - 1, NULL, &errs, &snap) != 0 ||
        (az = ml_authz_of_listener(snap, 0)) == NULL) {
        abort(); /* the harness's own config: a programmer error */
    }
    ml_config_errors_deinit(&errs);
    return 0;
}

/* Reference glob: '*' any run, '?' one byte, case-sensitive; plain recursion (inputs bounded). */
static bool ref_glob(const char *p, const uint8_t *s, size_t n)
{
    if (*p == '\0') {
        return n == 0;
    }
    if (*p == '*') {
        for (size_t i = 0; i <= n; i++) {
            if (ref_glob(p + 1, s + i, n - i)) {
                return true;
            }
        }
        return false;
    }
    return n > 0 && (*p == '?' || (uint8_t)*p == s[0]) && ref_glob(p + 1, s + 1, n - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[FUZZ_FIELD_MAX + 1];
    const uint8_t *nl = memchr(data, '\n', size);
    size_t an, bn;
    const uint8_t *b;
    int d;

    if (nl == NULL || size > 2 * FUZZ_FIELD_MAX) {
        return 0;
    }
    an = (size_t)(nl - data);
    b = nl + 1;
    bn = size - an - 1;
    if (an > FUZZ_FIELD_MAX || memchr(data, '\0', an) != NULL) {
        return 0;
    }
    memcpy(a, data, an);
    a[an] = '\0';
    if (an > 0 && a[0] == 'G') {
        size_t stars = 0;

        for (size_t i = 1; i < an; i++) {
            stars += a[i] == '*';
        }
        if (stars > 4 || bn > 64) {
            return 0; /* the reference is exponential */
        }
        if (ml_authz_glob(a + 1, (struct ml_slice){b, bn}) != ref_glob(a + 1, b, bn)) {
            abort();
        }
        return 0;
    }
    d = ml_authz_decide(az, a, (struct ml_slice){b, bn});
    if (an == 0) {
        /* no principal: only rule 1 (deny *), 3 (deny -), 4 (allow -) or the default */
        if (d != ML_AUTHZ_DEFAULT && d != 0 && d != 2 && d != 3) {
            abort();
        }
    } else if (d == 2 || d == 3) {
        abort(); /* "-" matched a peer with a principal */
    }
    {
        const uint8_t *q = memchr(b, '?', bn);

        /* whatever follows '?' changes nothing */
        if (q != NULL && ml_authz_decide(az, a, (struct ml_slice){b, (size_t)(q - b)}) != d) {
            abort();
        }
    }
    if (strcmp(a, "spiffe://mesh.local/exact") != 0 &&
        strcasecmp(a, "spiffe://mesh.local/exact") == 0 && d == 4) {
        abort(); /* principals are case-sensitive */
    }
    return 0;
}
