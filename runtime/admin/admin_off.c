/* admin/admin.h in a build without CONFIG_ML_ADMIN (compiled instead of the files of admin/,
 * CMakeLists.txt): nothing listens, so the node's calls need no #ifdef. The [node] admin keys are
 * refused by the config check in such a build, but admin's default (127.0.0.1:15000) still fills
 * the snapshot: ml_admin_new says "no endpoint" rather than failing the start. */
#include "admin/admin.h"
#include "admin/clusters.h"

#include <errno.h>
#include <stddef.h>

int ml_admin_new(struct ml_loop *loop, struct ml_proxy *proxy, char *why, size_t cap,
                 struct ml_admin **out)
{
    *out = NULL;
    return 0;
}

void ml_admin_free(struct ml_admin *a)
{
}

void ml_admin_set_hooks(struct ml_admin *a, const struct ml_admin_hooks *hooks, void *user)
{
}

void ml_admin_apply_done(struct ml_admin *a, unsigned int token, unsigned int status,
                         const char *body)
{
}

void ml_admin_set_proxy(struct ml_admin *a, struct ml_proxy *proxy)
{
}

/* [node] workers' GET /clusters (node/workers.c): never asked for without an endpoint */
long ml_admin_clusters_sum(struct ml_balance *const *b, unsigned int n, bool json, char **body)
{
    *body = NULL;
    return -ENOTSUP;
}
