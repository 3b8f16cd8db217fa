/* Who a verified certificate names, as a principal: its first URI subjectAltName (a SPIFFE ID,
 * spiffe://TRUST_DOMAIN/...), else its subject's CN. */
#ifndef ML_TLS_IDENTITY_H
#define ML_TLS_IDENTITY_H

#include <mbedtls/x509_crt.h>
#include <stddef.h>

/* The name into out[cap] (a byte that is not printable ASCII becomes '?', so a log line or a glob
 * never meets a control byte). Returns the length written; 0 (out = "") when the certificate has
 * neither, or its name does not fit in cap - 1 bytes (a cut name could match someone else's). */
size_t ml_tls_cert_identity(const mbedtls_x509_crt *crt, char *out, size_t cap);

/* The subject CN of the first certificate in the PEM file at path into out[cap], as above (an
 * MQTT broker that takes the client certificate as the username, mosquitto's
 * use_identity_as_username, takes the CN, never a SAN). 0; -ENOENT: no CN (or too long);
 * -EINVAL: the file does not read or parse; -ENOMEM. */
int ml_tls_cert_file_cn(const char *path, char *out, size_t cap);

#endif
