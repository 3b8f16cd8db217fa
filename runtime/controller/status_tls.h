/* `meshlet fleet` over HTTPS (status_tls.c): the TLS files of the command line. */
#ifndef ML_CONTROLLER_STATUS_TLS_H
#define ML_CONTROLLER_STATUS_TLS_H

#include <stddef.h>

struct ml_fleet_tls_opts {
    const char *ca;         /* PEM CA the controller's certificate must chain to (required) */
    const char *cert, *key; /* PEM client certificate and key, for a controller with --ca */
};

/* Over the connected socket fd: TLS handshake (the controller's certificate checked against
 * o->ca and host), req[0..req_n) sent, the answer read until the controller closes, at most cap
 * bytes into buf (*n_out). 0, or -1 with the reason in why. fd stays open (the caller's). */
int ml_fleet_tls_exchange(int fd, const struct ml_fleet_tls_opts *o, const char *host,
                          const char *req, size_t req_n, char *buf, size_t cap, size_t *n_out,
                          char *why, size_t why_cap);

#endif
