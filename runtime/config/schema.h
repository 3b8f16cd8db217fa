/* The key table (schema.def) and lookups over it. */
#ifndef ML_CONFIG_SCHEMA_H
#define ML_CONFIG_SCHEMA_H

#include "config/schema-t.h"

extern const struct ml_key_def ml_schema_keys[ML_K_COUNT];

/* "listener" → ML_KIND_LISTENER; -1 when s[0..n) is no section kind. */
int ml_schema_kind_parse(const char *s, size_t n);
const char *ml_schema_kind_name(enum ml_config_kind kind);
/* Kinds written [KIND NAME]; the others ([node], [fleet]) take no name and appear once. */
bool ml_schema_kind_named(enum ml_config_kind kind);
/* Most sections of a kind one config may hold (Kconfig limits). */
uint32_t ml_schema_kind_max(enum ml_config_kind kind);
/* The Kconfig symbol behind ml_schema_kind_max, for error messages. */
const char *ml_schema_kind_max_symbol(enum ml_config_kind kind);

/* The key named name in sections of kind, as an enum ml_key_id; -1 when there is none. */
int ml_schema_key_find(enum ml_config_kind kind, const char *name);
/* The closest key name of that kind (for "did you mean"), or NULL when none is close. */
const char *ml_schema_key_suggest(enum ml_config_kind kind, const char *name);
/* An ENUM key's choices as "a|b|c"; NULL for other keys. */
const char *ml_schema_key_choices(const struct ml_key_def *k);
/* Position of choice in an ENUM key's choices, or -1. */
int ml_schema_choice_index(const struct ml_key_def *k, const char *choice);

#endif
