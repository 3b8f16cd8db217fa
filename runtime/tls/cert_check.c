/* tls/cert_check.h: certificate files checked with mbedTLS's x509 and pk parsers. */
#include "tls/cert_check.h"

#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What each file is called in findings. */
static const char *const what[] = {"PEM certificate", "PEM private key", "PEM CA certificate"};

struct checker {
    ml_tls_finding_fn *report;
    void *ctx;
    time_t now;
};

__attribute__((format(printf, 4, 5))) static void say(struct checker *ck, enum ml_tls_file f,
                                                      bool warning, const char *fmt, ...)
{
    char text[ML_TLS_FINDING_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    ck->report(ck->ctx, f, warning, text);
}

/* Whether path's directory exists: when it does not, this is not the machine the config is
 * for, and nothing can be said about the file. */
static bool dir_exists(const char *path)
{
    char copy[4096];
    struct stat st;

    if (strlen(path) >= sizeof(copy)) {
        return true; /* then the open says what is wrong */
    }
    strcpy(copy, path);
    return stat(dirname(copy), &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads path whole, NUL-terminated (mbedTLS's PEM parsers want the NUL counted in the length).
 * 0 with *buf (ml_free) and *len (without the NUL); 1: not to be checked here (its directory does
 * not exist); -EINVAL: reported; -ENOMEM. */
static int read_pem(struct checker *ck, enum ml_tls_file f, const char *path, unsigned char **buf,
                    size_t *len)
{
    struct stat st;
    ssize_t got;
    size_t n = 0;
    int fd, err;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
        err = errno;
        if (err == ENOENT && !dir_exists(path)) {
            return 1;
        }
        say(ck, f, false, "expected a readable %s, got %s: %s", what[f], path, strerror(err));
        return -EINVAL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        say(ck, f, false, "expected a readable %s, got %s: not a regular file", what[f], path);
        goto bad;
    }
    if (st.st_size > ML_TLS_PEM_MAX_BYTES) {
        say(ck, f, false,
            "expected a %s of at most %d bytes (ML_TLS_PEM_MAX_BYTES), got %s: %lld bytes", what[f],
            ML_TLS_PEM_MAX_BYTES, path, (long long)st.st_size);
        goto bad;
    }
    if ((*buf = ml_malloc((size_t)st.st_size + 1)) == NULL) {
        close(fd);
        return -ENOMEM;
    }
    while (n < (size_t)st.st_size && (got = read(fd, *buf + n, (size_t)st.st_size - n)) > 0) {
        n += (size_t)got;
    }
    close(fd);
    (*buf)[n] = '\0';
    *len = n;
    if (strstr((const char *)*buf, "-----BEGIN ") == NULL) { /* DER or a NUL byte: not PEM */
        say(ck, f, false, "expected a %s (-----BEGIN ...), got %s: no PEM block", what[f], path);
        ml_free(*buf);
        *buf = NULL;
        return -EINVAL;
    }
    return 0;

bad:
    close(fd);
    return -EINVAL;
}

/* mbedTLS's error text for rv. */
static const char *tls_error(int rv, char *buf, size_t cap)
{
    mbedtls_strerror(rv, buf, cap);
    return buf;
}

/* Reads and parses a certificate file into crt. 0; 1: not checked here; -EINVAL: reported;
 * -ENOMEM. */
static int load_certs(struct checker *ck, enum ml_tls_file f, const char *path,
                      mbedtls_x509_crt *crt)
{
    unsigned char *buf = NULL;
    size_t len;
    char err[160];
    int rv = read_pem(ck, f, path, &buf, &len);

    if (rv != 0) {
        return rv;
    }
    rv = mbedtls_x509_crt_parse(crt, buf, len + 1);
    ml_free(buf);
    if (rv == MBEDTLS_ERR_X509_ALLOC_FAILED) {
        return -ENOMEM;
    }
    if (rv < 0) {
        say(ck, f, false, "expected a %s, got %s: %s", what[f], path,
            tls_error(rv, err, sizeof(err)));
        return -EINVAL;
    }
    if (rv > 0) {
        /* mbedTLS skips the blocks it cannot parse: a bundle with a bad one is still bad */
        say(ck, f, false, "expected only parseable certificates, got %s: %d that do not parse",
            path, rv);
        return -EINVAL;
    }
    return 0;
}

/* x509 time → seconds since the epoch (UTC), without the C library's local time. */
static int64_t x509_epoch(const mbedtls_x509_time *t)
{
    int y = t->year, m = t->mon;
    int64_t days;

    /* days from civil (Howard Hinnant's algorithm) */
    y -= m <= 2;
    {
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + t->day - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

        days = era * 146097 + doe - 719468;
    }
    return days * 86400 + t->hour * 3600 + t->min * 60 + t->sec;
}

static void date_text(const mbedtls_x509_time *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", t->year, t->mon, t->day, t->hour, t->min,
             t->sec);
}

/* The expiry findings of one certificate; true when it is expired. */
static bool check_dates(struct checker *ck, enum ml_tls_file f, const char *path,
                        const mbedtls_x509_crt *c, bool expired_is_error)
{
    int64_t to = x509_epoch(&c->valid_to), from = x509_epoch(&c->valid_from), now = ck->now;
    char when[32];

    if (to < now) {
        date_text(&c->valid_to, when, sizeof(when));
        say(ck, f, !expired_is_error, "expected a certificate valid now, got %s: expired on %s",
            path, when);
        return true;
    }
    if (to - now <= ML_TLS_EXPIRY_WARN_S) {
        date_text(&c->valid_to, when, sizeof(when));
        say(ck, f, true, "%s expires on %s, in %lld hours: rotate it", path, when,
            (long long)((to - now) / 3600));
    }
    if (from > now) {
        /* a warning: a board without a real-time clock may not know the time yet */
        date_text(&c->valid_from, when, sizeof(when));
        say(ck, f, true, "%s is not valid before %s (is this machine's clock right?)", path, when);
    }
    return false;
}

static int rng(void *ctx, unsigned char *out, size_t n)
{
    return mbedtls_ctr_drbg_random(ctx, out, n);
}

/* Whether key's public half is the one in crt. 0; -EINVAL: reported; -ENOMEM. */
static int check_key(struct checker *ck, const char *cert_path, const char *key_path,
                     mbedtls_x509_crt *crt, bool have_crt)
{
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context pk;
    unsigned char *buf = NULL;
    size_t len;
    char err[160];
    int rv = read_pem(ck, ML_TLS_FILE_KEY, key_path, &buf, &len);

    if (rv != 0) {
        return rv < 0 ? rv : 0;
    }
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_pk_init(&pk);
    if ((rv = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                    (const unsigned char *)"meshlet-cert-check", 18)) != 0) {
        say(ck, ML_TLS_FILE_KEY, false, "cannot check %s: no random source: %s", key_path,
            tls_error(rv, err, sizeof(err)));
        rv = -EINVAL;
        goto out;
    }
    rv = mbedtls_pk_parse_key(&pk, buf, len + 1, NULL, 0, rng, &drbg);
    if (rv == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
        say(ck, ML_TLS_FILE_KEY, false,
            "expected an unencrypted PEM private key, got %s: it needs a password", key_path);
        rv = -EINVAL;
        goto out;
    }
    if (rv == MBEDTLS_ERR_PK_ALLOC_FAILED) {
        rv = -ENOMEM;
        goto out;
    }
    if (rv != 0) {
        say(ck, ML_TLS_FILE_KEY, false, "expected a PEM private key, got %s: %s", key_path,
            tls_error(rv, err, sizeof(err)));
        rv = -EINVAL;
        goto out;
    }
    if (have_crt && mbedtls_pk_check_pair(&crt->pk, &pk, rng, &drbg) != 0) {
        say(ck, ML_TLS_FILE_KEY, false,
            "expected the private key of %s, got %s: it does not match the certificate's public "
            "key",
            cert_path, key_path);
        rv = -EINVAL;
        goto out;
    }
    rv = 0;

out:
    mbedtls_pk_free(&pk);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    if (buf != NULL) {
        mbedtls_platform_zeroize(buf, len);
        ml_free(buf);
    }
    return rv;
}

int ml_tls_check_files(const char *cert, const char *key, const char *ca, time_t now,
                       ml_tls_finding_fn *report, void *ctx)
{
    struct checker ck = {report, ctx, now};
    mbedtls_x509_crt crt, cas;
    bool have_crt = false, have_ca = false;
    int rv = 0, r;

    mbedtls_x509_crt_init(&crt);
    mbedtls_x509_crt_init(&cas);
    if (cert != NULL) {
        if ((r = load_certs(&ck, ML_TLS_FILE_CERT, cert, &crt)) == -ENOMEM) {
            rv = -ENOMEM;
            goto out;
        }
        if (r == 0) {
            have_crt = true;
            check_dates(&ck, ML_TLS_FILE_CERT, cert, &crt, true); /* the leaf: what peers see */
        }
    }
    if (key != NULL) {
        if (check_key(&ck, cert, key, &crt, have_crt) == -ENOMEM) {
            rv = -ENOMEM;
            goto out;
        }
    }
    if (ca != NULL) {
        if ((r = load_certs(&ck, ML_TLS_FILE_CA, ca, &cas)) == -ENOMEM) {
            rv = -ENOMEM;
            goto out;
        }
        have_ca = r == 0;
    }
    if (have_ca) {
        unsigned n = 0, expired = 0;

        for (const mbedtls_x509_crt *c = &cas; c != NULL && c->raw.len > 0; c = c->next) {
            n++;
            /* one expired root among others is a warning; all expired is an error (below) */
            expired += check_dates(&ck, ML_TLS_FILE_CA, ca, c, false);
        }
        if (n > 0 && expired == n) {
            say(&ck, ML_TLS_FILE_CA, false,
                "expected a CA certificate valid now, got %s: every one has expired", ca);
        }
    }
    if (have_crt && have_ca) {
        uint32_t flags = 0;
        char info[200];

        mbedtls_x509_crt_verify(&crt, &cas, NULL, NULL, &flags, NULL, NULL);
        /* dates were reported above, once, with their severity */
        flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE);
        if (flags != 0) {
            mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
            info[strcspn(info, "\n")] = '\0';
            say(&ck, ML_TLS_FILE_CERT, true,
                "%s does not chain to %s (%s): peers that trust only that CA refuse it", cert, ca,
                info);
        }
    }

out:
    mbedtls_x509_crt_free(&crt);
    mbedtls_x509_crt_free(&cas);
    return rv;
}
