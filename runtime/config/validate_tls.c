/* TLS keys of every section kind: tls refused by a build without data-plane TLS, and the
 * certificate files read on every apply (tls/cert_check.h). */
#include "config/validate_int.h"

#include "config/snapshot-t.h"
#include "tls/cert_check.h"

#include <time.h>

/* built: TLS exists in this build (listeners and clusters with ML_TLS). */
void ml_config_tls_refused(struct ml_config_vctx *c, const struct ml_raw_section *sec, int key,
                           int tls, bool built)
{
    char got[GOT_MAX];

    if (tls != ML_CFG_TLS_OFF && !built) {
        ml_config_key_error(
            c, sec, sec->key_line[key], "tls",
            "expected off: this build of meshlet has no data-plane TLS (CONFIG_ML_TLS is "
            "off; never served in plaintext), got \"%s\"",
            ml_config_shown(ml_config_value_at(c, sec, key), got, sizeof(got)));
    }
}

/* Findings about one section's certificate files (tls/cert_check.h): errors here, so every
 * apply (SIGHUP, push, POST /config) reads the files again and refuses bad ones; the warnings
 * are `meshlet check`'s (config/lint_certs.c). */
struct tls_files_ctx {
    struct ml_config_vctx *c;
    const struct ml_raw_section *sec;
    const int *line; /* cert, key, ca */
};

static void tls_file_error(void *ctx, enum ml_tls_file file, bool warning, const char *text)
{
    static const char *const key[] = {"cert", "key", "ca"};
    struct tls_files_ctx *t = ctx;

    if (!warning) {
        ml_config_key_error(t->c, t->sec, t->line[file], key[file], "%s", text);
    }
}

void ml_config_check_tls_files(struct ml_config_vctx *c, const struct ml_raw_section *sec,
                               const char *cert, const char *key, const char *ca, const int line[3])
{
    struct tls_files_ctx t = {c, sec, line};

    if (ml_tls_check_files(cert, key, ca, time(NULL), tls_file_error, &t) < 0) {
        c->oom = 1;
    }
}
