/* core/access_log.c: a number in an access line keeps all 64 bits on a 32-bit board. A call's
 * upstream_us passes 2^31 after 35 minutes (a long server stream); on armv7 a `long` is 32
 * bits and the line once said upstream_us=-1294967296 for a 50-minute call. */
#include "core/access_log.h"

#include "config/snapshot-t.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "access_line_fixture.h"

/* 50 minutes in microseconds: over INT32_MAX and UINT32_MAX alike. */
#define LONG_CALL_US 3000000000ll

static void test_json_keeps_a_50_minute_upstream_time_whole(void **state)
{
    struct ml_access_log *al = log_of(ML_CFG_ACCESS_LOG_JSON);
    struct ml_access_line l;
    int64_t upstream_us = LONG_CALL_US;

    ml_access_line_begin(&l, al);
    ml_access_line_int_or_none(&l, "upstream_us", upstream_us, true);
    ml_access_line_write(al, &l); /* off: closes the line, writes nothing */
    assert_string_equal(l.buf, "{\"upstream_us\":3000000000}");
    ml_access_log_free(al);
}

static void test_logfmt_keeps_a_50_minute_upstream_time_whole(void **state)
{
    struct ml_access_log *al = log_of(ML_CFG_ACCESS_LOG_LOGFMT);
    struct ml_access_line l;
    int64_t upstream_us = LONG_CALL_US;

    ml_access_line_begin(&l, al);
    ml_access_line_int_or_none(&l, "upstream_us", upstream_us, true);
    ml_access_line_int_or_none(&l, "grpc_status", -1, false);
    ml_access_line_write(al, &l);
    assert_string_equal(l.buf, "upstream_us=3000000000 grpc_status=-");
    ml_access_log_free(al);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_keeps_a_50_minute_upstream_time_whole),
        cmocka_unit_test(test_logfmt_keeps_a_50_minute_upstream_time_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
