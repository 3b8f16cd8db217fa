/* Raw document → snapshot: every value read by its key's type (schema.def), then the checks that
 * span keys and sections (references, binds, what this build can serve). Every problem is
 * reported with its line; validation goes on after an error so that one run lists them all.
 * This file drives it and applies each key; the readers and checks of each section kind are in
 * validate_*.c (validate_int.h). */
#include "config/validate_int.h"

#include "config/schema.h"
#include "config/snapshot-t.h"
#include "config/unimplemented.h"
#include "config/value.h"
#include "core/arena.h"
#include "core/kconfig.h"
#include "fleet/token.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void *section_struct(struct ml_snapshot *s, enum ml_config_kind kind, uint32_t index)
{
    switch (kind) {
    case ML_KIND_NODE:
        return &s->node;
    case ML_KIND_FLEET:
        return &s->fleet;
    case ML_KIND_LISTENER:
        return &s->listeners[index];
    case ML_KIND_ROUTE:
        return &s->routes[index];
    case ML_KIND_CLUSTER:
        return &s->clusters[index];
    case ML_KIND_AUTHZ:
        return &s->authz[index];
    default:
        return NULL;
    }
}

static int apply(struct ml_config_vctx *c, void *obj, int key, const char *v, int line)
{
    const struct ml_key_def *k = &ml_schema_keys[key];
    void *field = (char *)obj + k->offset;

    switch (k->type) {
    case ML_KT_UINT:
        return ml_config_read_uint(c, k, v, line, field);
    case ML_KT_DURATION:
        return ml_config_read_duration(c, k, v, line, field);
    case ML_KT_SIZE:
        return ml_config_read_size(c, k, v, line, field);
    case ML_KT_PERCENT:
        if (ml_value_percent(v, true, field) < 0) {
            return ml_config_bad_value(c, line, k, v, "0..100, with or without %%");
        }
        return 0;
    case ML_KT_BOOL:
        if (ml_value_bool(v, field) < 0) {
            return ml_config_bad_value(c, line, k, v, "on or off");
        }
        return 0;
    case ML_KT_ENUM:
        return ml_config_read_enum(c, k, v, line, field);
    case ML_KT_RANGE:
        return ml_config_read_range(c, k, v, line, field);
    case ML_KT_NAME:
        if (!ml_value_is_name(v, strlen(v))) {
            return ml_config_bad_value(c, line, k, v,
                                       "a name of 1..63 characters from A-Z a-z 0-9 _ . -");
        }
        *(const char **)field = ml_config_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_NODE_ID:
        /* The id goes to the controller, its logs and file names: the fleet's token rule. */
        if (!ml_fleet_node_id_valid(v, strlen(v))) {
            return ml_config_bad_value(c, line, k, v, "a node id of %s", ML_FLEET_NODE_ID_RULE);
        }
        *(const char **)field = ml_config_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_PATH:
        return ml_config_read_path(c, k, v, line, field);
    case ML_KT_STRING:
        if (ml_config_has_space_or_ctl(v)) {
            return ml_config_bad_value(c, line, k, v, "text without spaces or control characters");
        }
        *(const char **)field = ml_config_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_ADDR:
        return ml_config_read_addr(c, k, v, line, field, false);
    case ML_KT_ADMIN:
        return ml_config_read_addr(c, k, v, line, field, true);
    case ML_KT_ACCESS_LOG:
        return ml_config_read_access_log(c, k, v, line, obj);
    case ML_KT_URL:
        return ml_config_read_url(c, k, v, line, obj);
    case ML_KT_LISTENER_REF:
        if (!ml_value_is_name(v, strlen(v))) {
            return ml_config_bad_value(c, line, k, v, "the name of a [listener] section");
        }
        ((struct ml_cfg_route *)obj)->listener_name = ml_config_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_GLOB:
        if (!ml_config_is_glob(v)) {
            return ml_config_bad_value(c, line, k, v,
                                       "a host name or a glob like * or *.example.com");
        }
        *(const char **)field = ml_config_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_HTTP_PATH:
        if (v[0] != '/' || ml_config_has_space_or_ctl(v)) {
            return ml_config_bad_value(c, line, k, v, "a path starting with /");
        }
        *(const char **)field = ml_config_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_HEADER:
        return ml_config_read_header(c, k, v, line, obj);
    case ML_KT_SPLIT:
        return ml_config_read_split(c, k, v, line, obj);
    case ML_KT_RETRY_ON:
        return ml_config_read_retry_on(c, k, v, line, field);
    case ML_KT_FAULT_DELAY:
        return ml_config_read_fault_delay(c, k, v, line, obj);
    case ML_KT_FAULT_ABORT:
        return ml_config_read_fault_abort(c, k, v, line, obj);
    case ML_KT_RATE:
        return ml_config_read_rate(c, k, v, line, obj);
    case ML_KT_ENDPOINT:
        return ml_config_read_endpoint(c, k, v, line, obj);
    case ML_KT_DNS:
        return ml_config_read_dns(c, k, v, line, obj);
    case ML_KT_HASH:
        return ml_config_read_hash(c, k, v, line, obj);
    case ML_KT_HOSTNAME:
        if (!ml_value_is_hostname(v, strlen(v))) {
            return ml_config_bad_value(c, line, k, v, "a host name");
        }
        *(const char **)field = ml_config_strdup(c, v, strlen(v));
        return 0;
    case ML_KT_URI:
        return ml_config_read_uri(c, k, v, line, field);
    case ML_KT_RULE:
        return ml_config_read_rule(c, k, v, line, obj);
    case ML_KT_LABELS:
        return ml_config_read_labels(c, k, v, line, obj);
    }
    return -1;
}

static void apply_defaults(struct ml_config_vctx *c, enum ml_config_kind kind, void *obj)
{
    const struct ml_raw_section *saved = c->sec;

    c->sec = NULL; /* a default that fails to parse reports as a bug in schema.def */
    for (int key = 0; key < ML_K_COUNT; key++) {
        const struct ml_key_def *k = &ml_schema_keys[key];
        if (k->kind == kind && k->dflt != NULL) {
            apply(c, obj, key, k->dflt, 0);
        }
    }
    c->sec = saved;
}

/* Arrays of repeatable keys, sized by how often the section gives them (bounded by the limits
 * the readers check). */
static int alloc_arrays(struct ml_config_vctx *c, const struct ml_raw_section *sec, void *obj)
{
    struct ml_arena *a = &c->snap->arena;
    uint32_t n;

    switch (sec->kind) {
    case ML_KIND_ROUTE:
        n = sec->key_count[ML_K_route_header];
        n = n < CONFIG_ML_MAX_ROUTE_HEADERS ? n : CONFIG_ML_MAX_ROUTE_HEADERS;
        if (n && !(((struct ml_cfg_route *)obj)->headers = ml_arena_alloc(a, n * sizeof(struct ml_cfg_header_match)))) {
            return -ENOMEM;
        }
        break;
    case ML_KIND_CLUSTER:
        n = sec->key_count[ML_K_cluster_endpoint];
        n = n < CONFIG_ML_MAX_ENDPOINTS ? n : CONFIG_ML_MAX_ENDPOINTS;
        if (n && !(((struct ml_cfg_cluster *)obj)->endpoints = ml_arena_alloc(a, n * sizeof(struct ml_cfg_endpoint)))) {
            return -ENOMEM;
        }
        break;
    case ML_KIND_AUTHZ:
        n = sec->key_count[ML_K_authz_allow] + sec->key_count[ML_K_authz_deny];
        n = n < CONFIG_ML_MAX_AUTHZ_RULES ? n : CONFIG_ML_MAX_AUTHZ_RULES;
        if (n && !(((struct ml_cfg_authz *)obj)->rules = ml_arena_alloc(a, n * sizeof(struct ml_cfg_authz_rule)))) {
            return -ENOMEM;
        }
        break;
    default:
        break;
    }
    return 0;
}

const char *ml_config_value_at(const struct ml_config_vctx *c, const struct ml_raw_section *sec,
                               int key)
{
    /* The first value given for key in sec (for messages about a key found wrong later). */
    for (uint32_t i = 0; i < c->doc->n_entries; i++) {
        const struct ml_raw_entry *e = &c->doc->entries[i];
        if (c->doc->sections[e->section] == sec && e->key == key) {
            return e->value;
        }
    }
    return "";
}

int ml_config_find_listener(const struct ml_snapshot *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        if (strcmp(s->listeners[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int ml_config_find_cluster(const struct ml_snapshot *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        if (strcmp(s->clusters[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void required_keys(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    for (int key = 0; key < ML_K_COUNT; key++) {
        const struct ml_key_def *k = &ml_schema_keys[key];
        if (k->kind == sec->kind && (k->flags & ML_KF_REQUIRED) && sec->key_line[key] == 0) {
            ml_config_key_error(c, sec, sec->line, k->name,
                                "expected this key (required), got nothing");
        }
    }
}

/* A key whose code does not exist yet (config/unimplemented.c), given a value that asks for
 * something: refused where it stands, as tls = on is. */
static void unimplemented_refused(struct ml_config_vctx *c, const void *obj,
                                  const struct ml_raw_entry *e)
{
    const char *off = NULL;
    char want[64], got[GOT_MAX];

    if (!ml_config_unimplemented(e->key, &off) || ml_config_unimplemented_is_off(e->key, obj)) {
        return;
    }
    if (off == NULL) {
        snprintf(want, sizeof(want), "this key left out");
    } else if (off[0] == '\0') {
        snprintf(want, sizeof(want), "an empty value");
    } else if (strcmp(off, "0") == 0) {
        snprintf(want, sizeof(want), "0 (off)");
    } else {
        snprintf(want, sizeof(want), "%s", off);
    }
    ml_config_key_error(c, c->sec, e->line, ml_schema_keys[e->key].name,
                        "expected %s: not implemented in this version, got \"%s\"", want,
                        ml_config_shown(e->value, got, sizeof(got)));
}

int ml_config_validate(struct ml_snapshot *snap, const struct ml_raw_doc *doc,
                       struct ml_config_errors *errs)
{
    struct ml_config_vctx c = {.snap = snap, .doc = doc, .errs = errs};
    struct ml_arena *a = &snap->arena;

    /* The arrays, sized by the sections found (each bounded by its Kconfig limit in parse.c). */
    snap->n_listeners = doc->n_kind[ML_KIND_LISTENER];
    snap->n_routes = doc->n_kind[ML_KIND_ROUTE];
    snap->n_clusters = doc->n_kind[ML_KIND_CLUSTER];
    snap->n_authz = doc->n_kind[ML_KIND_AUTHZ];
    if ((snap->n_listeners && !(snap->listeners = ml_arena_alloc(a, snap->n_listeners * sizeof(*snap->listeners)))) ||
        (snap->n_routes && !(snap->routes = ml_arena_alloc(a, snap->n_routes * sizeof(*snap->routes)))) ||
        (snap->n_clusters && !(snap->clusters = ml_arena_alloc(a, snap->n_clusters * sizeof(*snap->clusters)))) ||
        (snap->n_authz && !(snap->authz = ml_arena_alloc(a, snap->n_authz * sizeof(*snap->authz))))) {
        return -ENOMEM;
    }

    /* Defaults first, so every section is complete whatever the file gives. */
    apply_defaults(&c, ML_KIND_NODE, &snap->node);
    apply_defaults(&c, ML_KIND_FLEET, &snap->fleet);
    for (uint32_t i = 0; i < doc->n_sections; i++) {
        const struct ml_raw_section *sec = doc->sections[i];
        void *obj = section_struct(snap, sec->kind, sec->index);
        if (sec->kind == ML_KIND_NODE || sec->kind == ML_KIND_FLEET) {
            for (int key = 0; key < ML_K_COUNT; key++) {
                if (ml_schema_keys[key].kind == sec->kind) {
                    snap->bootstrap_line[key] = sec->key_line[key];
                }
            }
            /* node/merge.c cuts these sections out of a push by line: where one ends is where
             * the parser saw the next header, whatever the bytes before its '[' */
            int end_line = i + 1 < doc->n_sections ? doc->sections[i + 1]->line : 0;

            if (sec->kind == ML_KIND_NODE) {
                snap->node.line = sec->line;
                snap->node.end_line = end_line;
                snap->node.id_line = sec->key_line[ML_K_node_id];
                snap->node.admin_line = sec->key_line[ML_K_node_admin];
            }
            if (sec->kind == ML_KIND_FLEET) {
                snap->fleet.present = true;
                snap->fleet.line = sec->line;
                snap->fleet.end_line = end_line;
            }
            continue;
        }
        apply_defaults(&c, sec->kind, obj);
        if (alloc_arrays(&c, sec, obj) < 0) {
            return -ENOMEM;
        }
        /* name and line are the first two fields' worth of every named section */
        switch (sec->kind) {
        case ML_KIND_LISTENER:
            snap->listeners[sec->index].name = ml_config_strdup(&c, sec->name, strlen(sec->name));
            snap->listeners[sec->index].line = sec->line;
            break;
        case ML_KIND_ROUTE:
            snap->routes[sec->index].name = ml_config_strdup(&c, sec->name, strlen(sec->name));
            snap->routes[sec->index].line = sec->line;
            snap->routes[sec->index].listener = -1;
            break;
        case ML_KIND_CLUSTER:
            snap->clusters[sec->index].name = ml_config_strdup(&c, sec->name, strlen(sec->name));
            snap->clusters[sec->index].line = sec->line;
            break;
        case ML_KIND_AUTHZ:
            snap->authz[sec->index].name = ml_config_strdup(&c, sec->name, strlen(sec->name));
            snap->authz[sec->index].line = sec->line;
            snap->authz[sec->index].listener = -1;
            break;
        default:
            break;
        }
    }

    /* Every value, in file order. */
    for (uint32_t i = 0; i < doc->n_entries; i++) {
        const struct ml_raw_entry *e = &doc->entries[i];
        void *obj;
        c.sec = doc->sections[e->section];
        obj = section_struct(snap, c.sec->kind, c.sec->index);
        if (apply(&c, obj, e->key, e->value, e->line) == 0) {
            unimplemented_refused(&c, obj, e);
        }
    }
    ml_config_default_node_id(&c);
    if (c.oom) {
        /* A string or array the checks below read may be missing (NULL): stop here. */
        return -ENOMEM;
    }

    /* Then what spans keys and sections. Listeners before routes and authz: they refer to them. */
    for (uint32_t i = 0; i < doc->n_sections; i++) {
        const struct ml_raw_section *sec = doc->sections[i];
        required_keys(&c, sec);
        switch (sec->kind) {
        case ML_KIND_NODE:
            ml_config_check_node(&c, sec);
            break;
        case ML_KIND_FLEET:
            ml_config_check_fleet(&c, sec);
            ml_config_check_tls_files(&c, sec, snap->fleet.cert, snap->fleet.key, snap->fleet.ca,
                                      (const int[3]){sec->key_line[ML_K_fleet_cert],
                                                     sec->key_line[ML_K_fleet_key],
                                                     sec->key_line[ML_K_fleet_ca]});
            break;
        case ML_KIND_LISTENER: {
            struct ml_cfg_listener *l = &snap->listeners[sec->index];

            ml_config_check_listener(&c, sec);
            l->file_line[0] = sec->key_line[ML_K_listener_cert];
            l->file_line[1] = sec->key_line[ML_K_listener_key];
            l->file_line[2] = sec->key_line[ML_K_listener_ca];
            ml_config_check_tls_files(&c, sec, l->cert, l->key, l->ca, l->file_line);
            break;
        }
        case ML_KIND_ROUTE:
            ml_config_check_route(&c, sec);
            break;
        case ML_KIND_CLUSTER: {
            struct ml_cfg_cluster *cl = &snap->clusters[sec->index];

            ml_config_check_cluster(&c, sec);
            cl->file_line[0] = sec->key_line[ML_K_cluster_cert];
            cl->file_line[1] = sec->key_line[ML_K_cluster_key];
            cl->file_line[2] = sec->key_line[ML_K_cluster_ca];
            ml_config_check_tls_files(&c, sec, cl->cert, cl->key, cl->ca, cl->file_line);
            break;
        }
        case ML_KIND_AUTHZ:
            ml_config_check_authz(&c, sec);
            break;
        default:
            break;
        }
    }
    return c.oom ? -ENOMEM : 0;
}
