/* What the access-line tests (access_line_test.c, access_line_long_call_test.c) share: an access
 * log of one format that writes nowhere (access_log = off), whose line builder they read back. */
#ifndef ML_TEST_ACCESS_LINE_FIXTURE_H
#define ML_TEST_ACCESS_LINE_FIXTURE_H

#include "config/snapshot-t.h"
#include "core/access_log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* format: ML_CFG_ACCESS_LOG_JSON or _LOGFMT. The caller frees it (ml_access_log_free). */
static inline struct ml_access_log *log_of(int format)
{
    struct ml_cfg_node node = {.access_log = ML_CFG_ACCESS_LOG_OFF, .access_log_format = format};
    struct ml_access_log *al;
    char why[128];

    assert_int_equal(ml_access_log_new(&node, why, sizeof(why), &al), 0);
    return al;
}

#endif
