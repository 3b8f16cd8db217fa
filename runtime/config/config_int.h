/* Private to config/: the raw document between parsing (parse.c, inih) and validation
 * (validate.c). Everything in it lives in a scratch arena dropped after validation. */
#ifndef ML_CONFIG_INT_H
#define ML_CONFIG_INT_H

#include "config/errors-t.h"
#include "config/schema-t.h"
#include "core/arena-t.h"

#include <stddef.h>
#include <stdint.h>

struct ml_raw_section {
    enum ml_config_kind kind;
    const char *name; /* NULL for [node] and [fleet] */
    int line;         /* of the header */
    uint32_t index;   /* position among the sections of its kind */
    int key_line[ML_K_COUNT];       /* first line of each key given; 0 = not given */
    uint32_t key_count[ML_K_COUNT]; /* how many times each key was given (repeatable keys) */
};

struct ml_raw_entry {
    uint32_t section;  /* index into doc->sections */
    int key;           /* enum ml_key_id */
    const char *value; /* as inih hands it: comments stripped, trimmed */
    int line;
};

struct ml_raw_doc {
    struct ml_raw_section **sections; /* the sections that were well-formed, file order */
    uint32_t n_sections, cap_sections;
    struct ml_raw_entry *entries; /* known keys of well-formed sections, file order */
    uint32_t n_entries, cap_entries;
    uint32_t n_kind[ML_KIND_COUNT];
};

/* Splits text[0..n) (NUL-terminated at n) into sections and entries, reporting every syntax
 * error, unknown or repeated section and key, and key not in this build into errs. Allocates
 * from scratch only. Returns 0 (errors or not), or -ENOMEM. */
int ml_config_parse(struct ml_arena *scratch, const char *text, size_t n, struct ml_raw_doc *doc,
                    struct ml_config_errors *errs);

/* Builds the snapshot's sections from a parsed doc (validate.c). Returns 0 (errors or not), or
 * -ENOMEM. */
struct ml_snapshot;
int ml_config_validate(struct ml_snapshot *snap, const struct ml_raw_doc *doc,
                       struct ml_config_errors *errs);

#endif
