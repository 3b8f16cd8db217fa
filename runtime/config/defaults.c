#include "config/defaults.h"

#include "config/schema.h"
#include "config/unimplemented.h"

#include <string.h>
#include <unistd.h>

void ml_config_print_defaults(FILE *out)
{
    char host[256] = "";

    if (gethostname(host, sizeof(host) - 1) < 0) {
        host[0] = '\0';
    }
    fprintf(out, "; meshlet defaults: every key, by section kind (see config/README.md)\n");
    for (int kind = 0; kind < ML_KIND_COUNT; kind++) {
        if (ml_schema_kind_named(kind)) {
            fprintf(out, "\n[%s NAME]\n", ml_schema_kind_name(kind));
        } else {
            fprintf(out, "\n[%s]\n", ml_schema_kind_name(kind));
        }
        for (int key = 0; key < ML_K_COUNT; key++) {
            const struct ml_key_def *k = &ml_schema_keys[key];
            if (k->kind != (enum ml_config_kind)kind) {
                continue;
            }
            const char *off = NULL;
            bool unimpl = ml_config_unimplemented(key, &off) || ml_config_kind_unimplemented(kind);
            fprintf(out, "; %s%s%s\n", k->help, (k->flags & ML_KF_REPEATABLE) ? " (repeatable)" : "",
                    k->available ? "" : " (not in this build)");
            if (unimpl && off != NULL) {
                /* the default is the off value: nothing unimplemented runs by default */
                fprintf(out, "; not implemented yet: refused unless %s\n", off[0] ? off : "empty");
            } else if (unimpl) {
                fprintf(out, "; not implemented yet: refused\n");
            }
            if (unimpl && off == NULL) {
                fprintf(out, ";%s =                ; not implemented yet\n", k->name);
            } else if (kind == ML_KIND_NODE && strcmp(k->name, "id") == 0) {
                fprintf(out, "%s = %s\n", k->name, host);
            } else if (k->flags & ML_KF_REQUIRED) {
                fprintf(out, ";%s =                ; REQUIRED\n", k->name);
            } else if (k->dflt == NULL) {
                fprintf(out, ";%s =                ; not set\n", k->name);
            } else if (k->dflt[0] == '\0') {
                fprintf(out, "%s =\n", k->name);
            } else {
                fprintf(out, "%s = %s\n", k->name, k->dflt);
            }
        }
    }
}
