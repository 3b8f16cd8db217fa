/* TLS to upstream clusters (cluster tls = on | mtls): mbedTLS 3.6 driven directly over an
 * outgoing raw socket, itself a transport for the upstream h2 session (core/transport-t.h).
 * TLS 1.3 and 1.2, nothing older; ALPN h2 required; the server's chain verified against the
 * cluster's ca; with identity, the server's URI SAN (else CN) must match a glob. */
#ifndef ML_TLS_TLS_CLIENT_H
#define ML_TLS_TLS_CLIENT_H

#include "core/transport-t.h"
#include "tls/tls.h"

#include <stdbool.h>
#include <stddef.h>

struct ml_tls_client; /* one cluster's TLS (of one config): CA, own cert/key, identity glob */

/* Endpoints whose last session a client keeps for resumption (a cluster's endpoints are at most
 * ML_LB_HOSTS_MAX = 128): past it new sessions are not kept. Each is ~1 KiB with its ticket and
 * the server's certificate. */
#define ML_TLS_RESUME_MAX 128
/* Longest resumption key ("[IPv6]:PORT"), with its NUL. */
#define ML_TLS_RESUME_KEY_MAX 64

struct ml_tls_client_cfg {
    const char *ca;       /* PEM CA the server's certificate must chain to, path (required) */
    const char *cert;     /* PEM certificate (chain) shown with mtls, path; NULL: none */
    const char *key;      /* PEM private key of cert, path */
    const char *identity; /* glob on the server's URI SAN (else CN); NULL: any */
    const char *sni;      /* server name sent; NULL: the caller's host name, if any */
};

/* Reads the files and sets up TLS 1.2-1.3 with ALPN h2. 0 and *out; -EINVAL (a file does not
 * parse, or the key is not cert's: why says which), -ENOMEM. */
int ml_tls_client_new(const struct ml_tls_client_cfg *cfg, char *why, size_t cap,
                      struct ml_tls_client **out);
/* Another reference (a health checker keeps its cluster's across applies). */
struct ml_tls_client *ml_tls_client_ref(struct ml_tls_client *cli);
/* Drops a reference: connections made with cli keep it until they close. NULL is a no-op. */
void ml_tls_client_free(struct ml_tls_client *cli);

/* How a handshake ended, told once: rv 0 with the server's first plaintext (in TLS 1.3 the server
 * checks our certificate after we consider the handshake done: its first bytes say it took
 * it), rv < 0 before the owner hears on_close (fail says why, for counters; text why,
 * borrowed, for logs). Not told when the owner closed the connection first (its own timeout),
 * nor when TCP never connected. */
typedef void ml_tls_client_done_fn(void *user, int rv, enum ml_tls_fail fail, const char *why);

/* Wraps lower (an outgoing plain socket, not connected yet), which it takes over: the handshake
 * starts when lower connects; the owner (set_ops) hears on_connected once TLS is up with ALPN h2
 * and the identity matched, or on_close(-ECONNREFUSED, "TLS handshake failed (REASON): ...").
 * host: the endpoint's host name for SNI when the cluster gives no sni (NULL: an IP literal,
 * no SNI). done (may be NULL) and done_user as above. 0 and *out; -ENOMEM (lower not taken). */
int ml_tls_connect(struct ml_tls_client *cli, struct ml_transport *lower, const char *host,
                   ml_tls_client_done_fn *done, void *done_user, struct ml_transport **out);

/* Resumption: tp (from ml_tls_connect, not connected yet) offers the session last saved under
 * key (the endpoint's address) by a connection of the same client, and saves its own there
 * (TLS 1.2 session tickets, TLS 1.3 NewSessionTicket): a reconnect skips the public-key work.
 * Sessions live in the client, so a SIGHUP or push that reads the files again starts afresh.
 * key is copied; longer than ML_TLS_RESUME_KEY_MAX - 1 bytes: no resumption. */
void ml_tls_client_resume(struct ml_transport *tp, const char *key);

/* tp (from ml_tls_connect) is connected and in its TLS handshake: its timeout is a TLS one. */
bool ml_tls_client_handshaking(const struct ml_transport *tp);

#endif
