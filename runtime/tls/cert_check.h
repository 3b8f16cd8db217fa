/* What `meshlet check` (and so every apply: SIGHUP, push, POST /config) says about the PEM files
 * of one TLS identity: a certificate, its private key, and the CA its peers must chain to. The
 * mbedTLS calls stay under tls/; config/ only hears findings. */
#ifndef ML_TLS_CERT_CHECK_H
#define ML_TLS_CERT_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* A PEM file read whole; a bigger one is refused (a CA bundle of a few hundred roots fits). */
#define ML_TLS_PEM_MAX_BYTES (512 * 1024)
/* A certificate that expires within this many seconds is a warning (7 days: time to rotate). */
#define ML_TLS_EXPIRY_WARN_S (7 * 24 * 3600)
/* Longest finding text. */
#define ML_TLS_FINDING_MAX 300

enum ml_tls_file {
    ML_TLS_FILE_CERT, /* the certificate (its chain may follow the leaf in the same file) */
    ML_TLS_FILE_KEY,  /* its private key */
    ML_TLS_FILE_CA,   /* the CA certificate(s) */
};

/* One finding about file (an error unless warning), text without the file's key name, e.g.
 * "expected a readable PEM certificate, got /x.pem: No such file or directory". */
typedef void ml_tls_finding_fn(void *ctx, enum ml_tls_file file, bool warning, const char *text);

/* Checks the files given (any may be NULL): each readable, at most ML_TLS_PEM_MAX_BYTES, PEM,
 * and parses (cert, ca: X.509 certificates; key: an unencrypted private key); the key matches
 * the cert's public key; the cert chains to ca when both are given (a warning: ca is what this
 * side's PEERS chain to, in a mesh the same CA, but not necessarily); the cert's and ca's
 * certificates: expired at now → an error (all of ca's expired: an error; some: a warning),
 * expiring within ML_TLS_EXPIRY_WARN_S or not valid yet → a warning. A file whose directory does
 * not exist is not checked at all (a config checked off the board it is for), see
 * config/README.md. Returns 0, or -ENOMEM (findings so far were reported). */
int ml_tls_check_files(const char *cert, const char *key, const char *ca, time_t now,
                       ml_tls_finding_fn *report, void *ctx);

#endif
