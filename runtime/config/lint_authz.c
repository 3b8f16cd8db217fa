/* config/lint.h: [authz] rules that can never match. An allow rule's `*` is every peer WITH a
 * principal (proxy/authz.h): on a plaintext listener no peer has one, so such a rule lets
 * nobody in, which a user who read `*` as "anyone" would not see until calls are denied. */
#include "config/errors.h"
#include "config/lint.h"

#include <errno.h>
#include <string.h>

int ml_config_lint_authz(const struct ml_snapshot *s, struct ml_config_errors *warn)
{
    for (uint32_t i = 0; i < s->n_authz; i++) {
        const struct ml_cfg_authz *az = &s->authz[i];

        if (az->listener < 0 || s->listeners[az->listener].tls != ML_CFG_TLS_OFF) {
            continue;
        }
        for (uint32_t r = 0; r < az->n_rules; r++) {
            const struct ml_cfg_authz_rule *rule = &az->rules[r];

            if (!rule->allow || strcmp(rule->principal, "-") == 0) {
                continue;
            }
            if (ml_config_errors_add(warn, az->line,
                                     "warning: [authz %s]: rule %u (allow = %s -> %s) never "
                                     "matches: listener %s is plaintext, its peers have no "
                                     "principal (allow them with `allow = - -> PATH`)",
                                     az->name, r + 1, rule->principal, rule->path, az->name) < 0) {
                return -ENOMEM;
            }
        }
    }
    return 0;
}
