/* [listener]: the checks across its keys and sections (TLS keys given, the downstream fd budget,
 * binds no other listener or the admin endpoint takes). */
#include "config/validate_int.h"

#include "config/features.h"
#include "config/snapshot-t.h"
#include "config/value.h"
#include "core/fd_budget.h"

/* Listeners' max_connections together stay within the downstream fd budget (core/fd_budget.h):
 * beyond it their connections would take the descriptors of upstream, admin and the fleet
 * client. Said once, at the listener whose max_connections crosses it. */
_Static_assert(CONFIG_ML_MAX_CONNECTIONS <= ML_FD_BUDGET_DOWNSTREAM,
               "one listener's max_connections must fit in the downstream fd budget");

static void downstream_budget(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    const struct ml_snapshot *s = c->snap;
    uint64_t before = 0, mine = s->listeners[sec->index].max_connections;
    int line = sec->key_line[ML_K_listener_max_connections];

    for (uint32_t i = 0; i < sec->index; i++) {
        before += s->listeners[i].max_connections;
    }
    if (before <= ML_FD_BUDGET_DOWNSTREAM && before + mine > ML_FD_BUDGET_DOWNSTREAM) {
        ml_config_key_error(
            c, sec, line != 0 ? line : sec->line, "max_connections",
            "expected at most %llu (all listeners together within the downstream file "
            "descriptor budget, %d: ML_FD_BUDGET_DOWNSTREAM; %llu taken by the listeners "
            "before), got %llu%s",
            (unsigned long long)(ML_FD_BUDGET_DOWNSTREAM - before), ML_FD_BUDGET_DOWNSTREAM,
            (unsigned long long)before, (unsigned long long)mine,
            line != 0 ? "" : " (the default)");
    }
}

void ml_config_check_listener(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    struct ml_snapshot *s = c->snap;
    struct ml_cfg_listener *l = &s->listeners[sec->index];
    char got[GOT_MAX];

    ml_config_tls_refused(c, sec, ML_K_listener_tls, l->tls, ML_HAVE_DATA_TLS);
    if (l->tls != ML_CFG_TLS_OFF && ML_HAVE_DATA_TLS) {
        /* Readability and the PEM itself are checked when the listener starts (and by the
         * certificate checks of `meshlet check`); here only that they are given. */
        if (l->cert == NULL || l->key == NULL) {
            ml_config_key_error(
                c, sec, sec->key_line[ML_K_listener_tls], "tls",
                "expected cert = PATH and key = PATH with tls = on|mtls|permissive, got %s",
                l->cert == NULL ? "no cert" : "no key");
        }
        if (l->tls == ML_CFG_TLS_MTLS && l->ca == NULL) {
            ml_config_key_error(
                c, sec, sec->key_line[ML_K_listener_tls], "tls",
                "expected ca = PATH with tls = mtls (client certificates chain to it), got "
                "no ca");
        }
    }
    downstream_budget(c, sec);
    if (!l->bind.set) {
        return;
    }
    for (uint32_t i = 0; i < sec->index; i++) {
        const struct ml_cfg_listener *o = &s->listeners[i];
        if (ml_value_addr_overlaps(&o->bind, &l->bind)) {
            ml_config_key_error(
                c, sec, sec->key_line[ML_K_listener_bind], "bind",
                "expected an address no other listener binds ([listener %s] on line %d), "
                "got \"%s\"",
                o->name, o->line, ml_config_shown(l->bind.text, got, sizeof(got)));
        }
    }
    if (ml_value_addr_overlaps(&s->node.admin, &l->bind)) {
        ml_config_key_error(
            c, sec, sec->key_line[ML_K_listener_bind], "bind",
            "expected an address other than the admin endpoint's ([node] admin), got \"%s\"",
            ml_config_shown(l->bind.text, got, sizeof(got)));
    }
}
