/* Who the peer of a TLS connection is, by its certificate: for `meshlet controller --ca`, which
 * ties a node id to the certificate that shows it (mbedTLS's x509 stays under tls/). */
#ifndef ML_TLS_PEER_ID_H
#define ML_TLS_PEER_ID_H

#include <stddef.h>

struct lws;

/* The largest peer certificate read (DER); a bigger one names nobody. */
#define ML_TLS_PEER_CERT_MAX_BYTES 8192

/* Whether the certificate wsi's peer showed names id: one of its URI subjectAltNames equals id
 * exactly; a certificate without URI SANs names its subject's CN (the first). Chain checks are
 * the handshake's; this only reads names. 0 when it does; -EACCES when it names someone else;
 * -ENOENT when there is no peer certificate; -EPROTO when it cannot be read (too large, not
 * DER); -ENOMEM. seen[cap] gets what the certificate says, for a log line ("URI SAN x" or
 * "CN x", non-printable bytes as \xHH), or why nothing could be read. */
int ml_tls_peer_id_check(struct lws *wsi, const char *id, char *seen, size_t cap);

/* The same for a DER certificate der[0..n) (borrowed), without a connection. */
int ml_tls_cert_id_check(const unsigned char *der, size_t n, const char *id, char *seen,
                         size_t cap);

#endif
