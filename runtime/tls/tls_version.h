#ifndef ML_TLS_VERSION_H
#define ML_TLS_VERSION_H

/* "mbedTLS 3.6.6"; static storage. */
const char *ml_tls_library_version(void);

#endif
