/* The keys this version parses but whose code does not exist yet (issue 7: never fail open, never
 * promise what is not there). Such a key is accepted only with the value that asks for nothing
 * (retries = 0, lb = round_robin, health_check = off, ...); any other value, and any value of a
 * key that has no such value, is refused by the validator with its line. When a feature's code
 * lands, its keys leave this table (and the schema walk in tests/integration/
 * test_config_surface.py then asks for a test showing their effect). */
#ifndef ML_CONFIG_UNIMPLEMENTED_H
#define ML_CONFIG_UNIMPLEMENTED_H

#include "config/schema-t.h"

#include <stdbool.h>

/* key: an enum ml_key_id. Returns false for a key whose code exists. For a key without code:
 * true, *off_text the value it is accepted with as INI text ("0", "off", "round_robin"), or NULL
 * when no value is accepted (the key must be left out). */
bool ml_config_unimplemented(int key, const char **off_text);

/* True when the value just read into obj (the key's section struct) is the off value of
 * ml_config_unimplemented(key). */
bool ml_config_unimplemented_is_off(int key, const void *obj);

/* Section kinds whose code does not exist yet: the whole section is refused at its header. */
bool ml_config_kind_unimplemented(enum ml_config_kind kind);

#endif
