#include "config/schema.h"

#include "config/features.h"
#include "config/snapshot-t.h"

#include <stddef.h>
#include <string.h>

static const char *enum_choices(enum ml_config_kind kind, const char *key);

const struct ml_key_def ml_schema_keys[ML_K_COUNT] = {
#define ML_KEY(kind_, key_, type_, flags_, min_, max_, dflt_, field_, feature_, help_)             \
    [ML_K_##kind_##_##key_] = {                                                                    \
        .kind = ML_KIND_##kind_##_ID,                                                              \
        .name = #key_,                                                                             \
        .type = ML_KT_##type_,                                                                     \
        .flags = (flags_),                                                                         \
        .min = (min_),                                                                             \
        .max = (max_),                                                                             \
        .dflt = (dflt_),                                                                           \
        .offset = offsetof(struct ml_cfg_##kind_, field_),                                         \
        .available = (feature_),                                                                   \
        .symbol = ML_SYMBOL_##feature_,                                                            \
        .help = (help_),                                                                           \
    },
#define ML_KIND_node_ID ML_KIND_NODE
#define ML_KIND_fleet_ID ML_KIND_FLEET
#define ML_KIND_listener_ID ML_KIND_LISTENER
#define ML_KIND_route_ID ML_KIND_ROUTE
#define ML_KIND_cluster_ID ML_KIND_CLUSTER
#define ML_KIND_authz_ID ML_KIND_AUTHZ
#include "config/schema.def"
#undef ML_KEY
};

static const struct {
    const char *name;
    bool named;
    uint32_t max;
    const char *max_symbol;
} kinds[ML_KIND_COUNT] = {
    [ML_KIND_NODE] = {"node", false, 1, NULL},
    [ML_KIND_FLEET] = {"fleet", false, 1, NULL},
    [ML_KIND_LISTENER] = {"listener", true, CONFIG_ML_MAX_LISTENERS, "CONFIG_ML_MAX_LISTENERS"},
    [ML_KIND_ROUTE] = {"route", true, CONFIG_ML_MAX_ROUTES, "CONFIG_ML_MAX_ROUTES"},
    [ML_KIND_CLUSTER] = {"cluster", true, CONFIG_ML_MAX_CLUSTERS, "CONFIG_ML_MAX_CLUSTERS"},
    /* one [authz] per listener at most */
    [ML_KIND_AUTHZ] = {"authz", true, CONFIG_ML_MAX_LISTENERS, "CONFIG_ML_MAX_LISTENERS"},
};

int ml_schema_kind_parse(const char *s, size_t n)
{
    for (int k = 0; k < ML_KIND_COUNT; k++) {
        if (strlen(kinds[k].name) == n && memcmp(kinds[k].name, s, n) == 0) {
            return k;
        }
    }
    return -1;
}

const char *ml_schema_kind_name(enum ml_config_kind kind)
{
    return kinds[kind].name;
}

bool ml_schema_kind_named(enum ml_config_kind kind)
{
    return kinds[kind].named;
}

uint32_t ml_schema_kind_max(enum ml_config_kind kind)
{
    return kinds[kind].max;
}

const char *ml_schema_kind_max_symbol(enum ml_config_kind kind)
{
    return kinds[kind].max_symbol;
}

int ml_schema_key_find(enum ml_config_kind kind, const char *name)
{
    for (int i = 0; i < ML_K_COUNT; i++) {
        if (ml_schema_keys[i].kind == kind && strcmp(ml_schema_keys[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* Edit distance, bounded: names are short (keys <= 32 bytes), anything longer is not close. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 32 };
    size_t la = strlen(a), lb = strlen(b);
    size_t prev[MAXLEN + 1], cur[MAXLEN + 1];

    if (la > MAXLEN || lb > MAXLEN) {
        return (size_t)-1;
    }
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}

const char *ml_schema_key_suggest(enum ml_config_kind kind, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3; /* suggest only within two edits */

    for (int i = 0; i < ML_K_COUNT; i++) {
        if (ml_schema_keys[i].kind != kind) {
            continue;
        }
        size_t d = edit_distance(name, ml_schema_keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = ml_schema_keys[i].name;
        }
    }
    return best;
}

int ml_schema_choice_index(const struct ml_key_def *k, const char *choice)
{
    const char *p = enum_choices(k->kind, k->name);
    size_t n = strlen(choice);

    for (int i = 0; p != NULL && *p; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, choice, n) == 0) {
            return i;
        }
        if (bar == NULL) {
            break;
        }
        p = bar + 1;
    }
    return -1;
}

static const char *enum_choices(enum ml_config_kind kind, const char *key)
{
    static const struct {
        enum ml_config_kind kind;
        const char *key, *choices;
    } table[] = {
#define ML_KEY(...)
#define ML_KEY_CHOICES(kind_, key_, choices_) {ML_KIND_##kind_##_ID, #key_, choices_},
#include "config/schema.def"
#undef ML_KEY_CHOICES
#undef ML_KEY
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].kind == kind && strcmp(table[i].key, key) == 0) {
            return table[i].choices;
        }
    }
    return NULL;
}

const char *ml_schema_key_choices(const struct ml_key_def *k)
{
    return enum_choices(k->kind, k->name);
}
