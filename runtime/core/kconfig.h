/* Kconfig symbols as C expressions, so code that stays compiled reads `if (IS_ENABLED(...))`
 * and tables take or leave an entry, instead of #ifdef ladders: the compiler still sees (and
 * checks) both branches of an `if`, and the optimiser drops the one that is off.
 *
 * firmware/kconfig.py writes `#define CONFIG_ML_X 1` for a bool that is y and nothing for one that
 * is n. IS_ENABLED keeps the name Linux and Zephyr give it (the one unprefixed macro), so that a
 * reader who knows either knows this one. */
#ifndef ML_CORE_KCONFIG_H
#define ML_CORE_KCONFIG_H

#include "meshlet_config.h"

/* How both work: pasting the symbol's value onto ML_KC_PLACEHOLDER_ gives ML_KC_PLACEHOLDER_1,
 * which expands to "0," (an extra argument) only when the symbol is defined as 1; anything else
 * (the bare symbol's name) stays one argument. ML_KC_SECOND then picks the second argument. */
#define ML_KC_PLACEHOLDER_1 0,
#define ML_KC_SECOND(ignored, val, ...) val
#define ML_KC_UNPAREN(...) __VA_ARGS__

/* 1 when the Kconfig bool sym is y, else 0; a constant expression (usable in #if, static
 * initialisers and _Static_assert). */
#define IS_ENABLED(sym) ML_KC_IS1(sym)
#define ML_KC_IS1(val) ML_KC_IS2(ML_KC_PLACEHOLDER_##val)
#define ML_KC_IS2(one_or_junk) ML_KC_SECOND(one_or_junk 1, 0, )

/* The parenthesised code when sym is y, nothing when it is n: a table entry that names a symbol
 * of a file compiled only with sym (ml_sources_ifdef in CMakeLists.txt), e.g.
 *   ML_IF_ENABLED(CONFIG_ML_FAULT, (&ml_step_fault,))
 * (Zephyr's COND_CODE_1). The code must be in parentheses: its commas are then not arguments. */
#define ML_IF_ENABLED(sym, code) ML_KC_IF1(sym, code)
#define ML_KC_IF1(val, code) ML_KC_IF2(ML_KC_PLACEHOLDER_##val, code)
#define ML_KC_IF2(one_or_junk, code) ML_KC_SECOND(one_or_junk ML_KC_UNPAREN code, , )

#endif
