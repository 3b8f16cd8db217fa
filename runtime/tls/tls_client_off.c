/* The cluster half of TLS (tls/tls_client.h) in a build without CONFIG_ML_TLS (compiled instead
 * of tls/tls_client.c, CMakeLists.txt). The config check refuses cluster tls = on|mtls in such a
 * build, so balance/ never asks for a TLS client; should it, the answer is an error, never a
 * connection made in plaintext. */
#include "tls/tls_client.h"

#include <errno.h>
#include <stdio.h>

int ml_tls_client_new(const struct ml_tls_client_cfg *cfg, char *why, size_t cap,
                      struct ml_tls_client **out)
{
    (void)cfg;
    snprintf(why, cap, "this build of meshlet has no cluster TLS (CONFIG_ML_TLS is off)");
    *out = NULL;
    return -EINVAL;
}

struct ml_tls_client *ml_tls_client_ref(struct ml_tls_client *cli)
{
    return cli;
}

void ml_tls_client_free(struct ml_tls_client *cli)
{
    (void)cli;
}

int ml_tls_connect(struct ml_tls_client *cli, struct ml_transport *lower, const char *host,
                   ml_tls_client_done_fn *done, void *done_user, struct ml_transport **out)
{
    (void)cli, (void)lower, (void)host, (void)done, (void)done_user;
    *out = NULL;
    return -EINVAL;
}

void ml_tls_client_resume(struct ml_transport *tp, const char *key)
{
    (void)tp, (void)key;
}

bool ml_tls_client_handshaking(const struct ml_transport *tp)
{
    (void)tp;
    return false;
}
