/* core/access_log.c: the line builder in both formats. JSON lines must parse whatever a peer
 * sent (quotes, control bytes, bytes that are not UTF-8) and stay an object when cut. */
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

static void test_json_has_numbers_strings_and_null(void **state)
{
    struct ml_access_log *al = log_of(ML_CFG_ACCESS_LOG_JSON);
    struct ml_access_line l;

    ml_access_line_begin(&l, al);
    ml_access_line_str(&l, "path", "/x.Y/Z");
    ml_access_line_str(&l, "request_id", "");
    ml_access_line_str(&l, "route", NULL);
    ml_access_line_uint(&l, "duration_us", 1234);
    ml_access_line_int_or_none(&l, "grpc_status", 14, true);
    ml_access_line_int_or_none(&l, "http_status", 0, false);
    ml_access_line_write(al, &l); /* off: closes the line, writes nothing */
    assert_string_equal(l.buf, "{\"path\":\"/x.Y/Z\",\"request_id\":null,\"route\":null,"
                               "\"duration_us\":1234,\"grpc_status\":14,\"http_status\":null}");
    ml_access_log_free(al);
}

static void test_json_escapes_quotes_controls_and_non_ascii(void **state)
{
    struct ml_access_log *al = log_of(ML_CFG_ACCESS_LOG_JSON);
    struct ml_access_line l;

    ml_access_line_begin(&l, al);
    ml_access_line_str(&l, "v",
                       "a\"b\\c\n\t\x01"
                       "\xc3\xa9\x7f");
    ml_access_line_write(al, &l);
    assert_string_equal(l.buf, "{\"v\":\"a\\\"b\\\\c\\n\\t\\u0001\\u00c3\\u00a9\\u007f\"}");
    ml_access_log_free(al);
}

static void test_a_cut_json_line_is_still_an_object(void **state)
{
    struct ml_access_log *al = log_of(ML_CFG_ACCESS_LOG_JSON);
    struct ml_access_line l;
    char big[700];
    bool in_str = false;

    memset(big, '\n', sizeof(big) - 1); /* 2 bytes each escaped: 4 of them pass the cap */
    big[sizeof(big) - 1] = '\0';
    ml_access_line_begin(&l, al);
    for (int i = 0; i < 4; i++) {
        ml_access_line_str(&l, "k", big);
        ml_access_line_uint(&l, "n", 7);
    }
    ml_access_line_write(al, &l);
    assert_true(l.n <= ML_ACCESS_LOG_LINE_MAX);
    assert_int_equal(strlen(l.buf), l.n);
    assert_int_equal(l.buf[0], '{');
    assert_int_equal(l.buf[l.n - 1], '}');
    /* every string closes: no quote left open before the final brace */
    for (size_t i = 1; i + 1 < l.n; i++) {
        if (l.buf[i] == '\\') {
            i++;
        } else if (l.buf[i] == '"') {
            in_str = !in_str;
        }
    }
    assert_false(in_str);
    ml_access_log_free(al);
}

static void test_logfmt_builder_writes_dashes_for_none(void **state)
{
    struct ml_access_log *al = log_of(ML_CFG_ACCESS_LOG_LOGFMT);
    struct ml_access_line l;

    ml_access_line_begin(&l, al);
    ml_access_line_str(&l, "client", "127.0.0.1:5");
    ml_access_line_str(&l, "reason", "cluster c: connect failed");
    ml_access_line_uint(&l, "duration_us", 42);
    ml_access_line_int_or_none(&l, "grpc_status", 0, false);
    ml_access_line_write(al, &l);
    assert_string_equal(l.buf, "client=127.0.0.1:5 reason=\"cluster c: connect failed\" "
                               "duration_us=42 grpc_status=-");
    ml_access_log_free(al);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_has_numbers_strings_and_null),
        cmocka_unit_test(test_json_escapes_quotes_controls_and_non_ascii),
        cmocka_unit_test(test_a_cut_json_line_is_still_an_object),
        cmocka_unit_test(test_logfmt_builder_writes_dashes_for_none),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
