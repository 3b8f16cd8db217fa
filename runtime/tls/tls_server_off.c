/* The listener half of tls/tls.h in a build without CONFIG_ML_TLS (compiled instead of
 * tls/tls_server.c, CMakeLists.txt). The config check refuses tls = on|mtls|permissive in such a
 * build, so proxy/proxy.c never asks for a TLS listener; should it, the answer is an error, never
 * a listener served in plaintext. */
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>

const char *ml_tls_fail_name(enum ml_tls_fail f)
{
    return "other";
}

int ml_tls_server_new(const struct ml_tls_server_cfg *cfg, char *why, size_t cap,
                      struct ml_tls_server **out)
{
    snprintf(why, cap, "this build of meshlet has no listener TLS (CONFIG_ML_TLS is off)");
    *out = NULL;
    return -EINVAL;
}

void ml_tls_server_free(struct ml_tls_server *srv)
{
}

uint32_t ml_tls_server_handshaking(const struct ml_tls_server *srv)
{
    return 0;
}

int ml_tls_accept(struct ml_tls_server *srv, struct ml_loop *loop, struct ml_transport *lower,
                  const uint8_t *first, size_t n, ml_tls_ready_fn *ready, void *user)
{
    return -EINVAL;
}
