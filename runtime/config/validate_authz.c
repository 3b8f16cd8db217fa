/* [authz]: its rules and the listener it guards. */
#include "config/validate_int.h"

#include "config/snapshot-t.h"
#include "config/unimplemented.h"
#include "core/kconfig.h"

#include <string.h>

int ml_config_read_rule(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, struct ml_cfg_authz *az)
{
    static const char what[] =
        "PRINCIPAL -> PATH-GLOB, e.g. spiffe://mesh.local/frontend -> /helloworld.Greeter/*";
    const char *arrow = strstr(v, "->");
    size_t pn, gn;
    const char *principal, *glob;
    struct ml_cfg_authz_rule *rule;
    char *pc, *gc;

    if (arrow == NULL) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    pn = (size_t)(arrow - v);
    principal = ml_config_trim(v, &pn);
    gn = strlen(arrow + 2);
    glob = ml_config_trim(arrow + 2, &gn);
    if (pn == 0 || gn == 0 || (glob[0] != '/' && !(gn == 1 && glob[0] == '*'))) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    if ((pc = ml_config_strdup(c, principal, pn)) == NULL ||
        (gc = ml_config_strdup(c, glob, gn)) == NULL) {
        return 0;
    }
    if (ml_config_has_space_or_ctl(pc) || ml_config_has_space_or_ctl(gc)) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    if (az->n_rules >= CONFIG_ML_MAX_AUTHZ_RULES) {
        return ml_config_bad_value(c, line, k, v,
                                   "at most %d rules per [authz] (CONFIG_ML_MAX_AUTHZ_RULES)",
                                   CONFIG_ML_MAX_AUTHZ_RULES);
    }
    rule = &az->rules[az->n_rules++];
    rule->allow = strcmp(k->name, "allow") == 0;
    rule->principal = pc;
    rule->path = gc;
    return 0;
}

void ml_config_check_authz(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_authz *az = &c->snap->authz[sec->index];

    if (ml_config_kind_unimplemented(ML_KIND_AUTHZ)) {
        /* Accepted, its rules would not be enforced: every call would pass (fail open). */
        ml_config_key_error(
            c, sec, sec->line, NULL,
            "expected no [authz] section: not implemented in this version (its rules "
            "would not be enforced)");
    }

    if ((az->listener = ml_config_find_listener(c->snap, az->name)) < 0) {
        ml_config_key_error(c, sec, sec->line, NULL,
                            "expected the name of a [listener] section after authz, got \"%s\"",
                            az->name);
    }
}
