/* config/lint.h: the warnings about certificate files (tls/cert_check.h); their errors are the
 * validator's (validate_tls.c), so this sees only files that passed. */
#include "config/errors.h"
#include "config/lint.h"
#include "config/schema.h"
#include "tls/cert_check.h"
#include "tls/identity.h"
#include "tls/tls.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct lint_ctx {
    struct ml_config_errors *warn;
    const char *label; /* "[fleet]", "[listener NAME]" */
    const int *line;   /* cert, key, ca */
};

static void tls_file_warning(void *ctx, enum ml_tls_file file, bool warning, const char *text)
{
    static const char *const key[] = {"cert", "key", "ca"};
    struct lint_ctx *l = ctx;

    if (warning) {
        ml_config_errors_add(l->warn, l->line[file], "warning: %s %s: %s", l->label, key[file],
                             text);
    }
}

/* Over MQTT the broker knows a node by its certificate's CN (runtime/fleet/README.md, "The fleet
 * over MQTT": the CN is the username its ACL grants the node's own topics to), while the node
 * publishes and subscribes as [node] id: when they differ, the broker drops the node's Hello and
 * never hands it a push, without telling it (MQTT 3.1.1 has no refusal for either). Only a
 * warning: a broker may be set up to map names another way. */
static int lint_mqtt_identity(const struct ml_snapshot *s, struct ml_config_errors *warn)
{
    const struct ml_cfg_fleet *f = &s->fleet;
    char cn[ML_TLS_IDENTITY_MAX];
    int rv;

    if (!f->present || !f->url_mqtt || !f->url_tls || f->cert == NULL || s->node.id_line == 0) {
        return 0;
    }
    rv = ml_tls_cert_file_cn(f->cert, cn, sizeof(cn));
    if (rv == -ENOMEM) {
        return rv;
    }
    if (rv == 0 && strcmp(cn, s->node.id) == 0) {
        return 0;
    }
    if (rv == -EINVAL) {
        return 0; /* not readable here (checked off its board) or already an error */
    }
    return ml_config_errors_add(
        warn, s->bootstrap_line[ML_K_fleet_cert],
        "warning: [fleet] cert: names %s%s%s, not this node's id \"%s\": an "
        "MQTT broker that takes the certificate's CN as the username "
        "drops this node's Hello and never delivers its pushes",
        rv == 0 ? "\"" : "", rv == 0 ? cn : "no CN", rv == 0 ? "\"" : "", s->node.id);
}

int ml_config_lint_certs(const struct ml_snapshot *s, struct ml_config_errors *warn)
{
    const struct ml_cfg_fleet *f = &s->fleet;
    char label[96];
    int rv = 0;

    if (f->present) {
        const int line[3] = {s->bootstrap_line[ML_K_fleet_cert], s->bootstrap_line[ML_K_fleet_key],
                             s->bootstrap_line[ML_K_fleet_ca]};
        struct lint_ctx l = {warn, "[fleet]", line};

        rv = ml_tls_check_files(f->cert, f->key, f->ca, time(NULL), tls_file_warning, &l);
        rv = rv < 0 ? rv : lint_mqtt_identity(s, warn);
    }
    for (uint32_t i = 0; rv == 0 && i < s->n_listeners; i++) {
        const struct ml_cfg_listener *ls = &s->listeners[i];
        struct lint_ctx l = {warn, label, ls->file_line};

        snprintf(label, sizeof(label), "[listener %s]", ls->name);
        rv = ml_tls_check_files(ls->cert, ls->key, ls->ca, time(NULL), tls_file_warning, &l);
    }
    for (uint32_t i = 0; rv == 0 && i < s->n_clusters; i++) {
        const struct ml_cfg_cluster *cl = &s->clusters[i];
        struct lint_ctx l = {warn, label, cl->file_line};

        snprintf(label, sizeof(label), "[cluster %s]", cl->name);
        rv = ml_tls_check_files(cl->cert, cl->key, cl->ca, time(NULL), tls_file_warning, &l);
    }
    return rv;
}
