/* Data-plane TLS on listeners and to clusters: mbedTLS 3.6 driven directly over a lower
 * transport (the raw socket libwebsockets accepted or we connected, or memory in tests and
 * fuzzers), itself a transport for h2 (core/transport-t.h). Not through libwebsockets' mbedTLS
 * wrapper: it has no hooks for the peer identity, ALPN refusal counts and per-listener limits
 * the data plane needs. This speaks 1.3 and 1.2, nothing older, and only ALPN h2. */
#ifndef ML_TLS_TLS_H
#define ML_TLS_TLS_H

#include "core/loop-t.h"
#include "core/transport-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A handshake not finished this long after the first byte is abandoned (counted TIMEOUT): a
 * client that stalls mid-handshake holds a socket and a handshake slot no longer. */
#define ML_TLS_HANDSHAKE_TIMEOUT_MS 10000
/* Handshakes in progress per listener: more are refused at accept (each holds mbedTLS's record
 * buffers, ~33 KiB, and costs public-key work), so a flood of ClientHellos cannot take the RAM
 * and CPU of the connections already served. */
#define ML_TLS_HANDSHAKES_MAX 16
/* Longest identity kept (URI SAN or CN), with its NUL; a longer one is cut. */
#define ML_TLS_IDENTITY_MAX 256
/* Session tickets are good this long (resumption skips the public-key work). */
#define ML_TLS_TICKET_LIFETIME_S 86400

/* Why a handshake failed: counted per listener (/stats, Prometheus). */
enum ml_tls_fail {
    ML_TLS_FAIL_BAD_CERT = 0, /* the client's certificate: missing (mtls), expired, unusable */
    ML_TLS_FAIL_UNKNOWN_CA,   /* the client's certificate does not chain to ca */
    ML_TLS_FAIL_NO_ALPN,      /* the client did not offer h2 (alert no_application_protocol) */
    ML_TLS_FAIL_VERSION,      /* the client offered nothing from TLS 1.2 and 1.3 */
    ML_TLS_FAIL_TIMEOUT,      /* not done within ML_TLS_HANDSHAKE_TIMEOUT_MS */
    ML_TLS_FAIL_PLAINTEXT,    /* the first byte was not a TLS handshake record */
    ML_TLS_FAIL_OTHER,        /* anything else (malformed, peer closed, out of memory) */
    /* Upstreams only (tls/tls_client.h): the server's name does not match cluster identity.
     * After the listeners' reasons, which are counted per listener in this order. */
    ML_TLS_FAIL_IDENTITY,
    ML_TLS_FAIL_COUNT,
};

/* "bad_cert", "unknown_ca", "no_alpn_h2", "version", "timeout", "plaintext", "other",
 * "identity". */
const char *ml_tls_fail_name(enum ml_tls_fail f);

struct ml_tls_server; /* one listener's TLS: certificate, key, CA, tickets */

struct ml_tls_server_cfg {
    const char *cert; /* PEM certificate (chain), path */
    const char *key;  /* PEM private key of cert, path */
    const char *ca;   /* PEM CA client certificates must chain to (mtls); NULL otherwise */
    bool mtls;        /* a client certificate chaining to ca is required */
};

/* Reads cert, key (and ca) and sets up TLS 1.2-1.3, ALPN h2, session tickets. 0 and *out; -EINVAL
 * (a file does not parse or the key is not cert's: why says which), -ENOMEM. */
int ml_tls_server_new(const struct ml_tls_server_cfg *cfg, char *why, size_t cap,
                      struct ml_tls_server **out);
/* The listener is done with srv; connections still in TLS keep it until they close. */
void ml_tls_server_free(struct ml_tls_server *srv);
/* Handshakes in progress now. */
uint32_t ml_tls_server_handshaking(const struct ml_tls_server *srv);

/* A handshake ended: rv 0 and tls (the connection: the callee takes it over, e.g.
 * ml_h2_server_new, or closes it), or rv < 0, fail and why (borrowed) with tls NULL (the
 * connection is closed already, after an alert where TLS has one). */
typedef void ml_tls_ready_fn(void *user, struct ml_transport *tls, int rv, enum ml_tls_fail fail,
                             const char *why);

/* Serves TLS on lower (which it takes over on success): first[0..n) are bytes already read from
 * it. loop: for the handshake timeout (NULL: none, memory tests). ready runs once, never from
 * inside this call unless first already decides the handshake. 0; -EBUSY (ML_TLS_HANDSHAKES_MAX
 * in progress), -ENOMEM: lower is not taken then. */
int ml_tls_accept(struct ml_tls_server *srv, struct ml_loop *loop, struct ml_transport *lower,
                  const uint8_t *first, size_t n, ml_tls_ready_fn *ready, void *user);

#endif
