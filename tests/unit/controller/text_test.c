/* controller/text.c: the node id rule (1..64 of [A-Za-z0-9._:-], no leading '.') and text from
 * nodes made safe for a log line. */
#include "controller/controller_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_ids_inside_the_rule(void **state)
{
    char longest[ML_CTL_NODE_ID_MAX + 1];

    memset(longest, 'a', ML_CTL_NODE_ID_MAX);
    longest[ML_CTL_NODE_ID_MAX] = '\0';
    assert_true(ml_ctl_node_id_safe(longest));
    assert_true(ml_ctl_node_id_safe("gw-1.site_a:rack-2"));
    assert_true(ml_ctl_node_id_safe("Z"));
    assert_true(ml_ctl_node_id_safe("urn:meshlet:gw-7"));
}

static void test_ids_outside_the_rule(void **state)
{
    static const char *bad[] = {
        "", ".", "..", ".hidden", "a/b", "a b", "a\tb", "a\x01", "\xc3\xa9", "a;b", "a\\b", "a*",
    };
    char too_long[ML_CTL_NODE_ID_MAX + 2];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ml_ctl_node_id_safe(bad[i]));
    }
    memset(too_long, 'a', ML_CTL_NODE_ID_MAX + 1);
    too_long[ML_CTL_NODE_ID_MAX + 1] = '\0';
    assert_false(ml_ctl_node_id_safe(too_long));
}

static void test_printable_escapes_what_a_terminal_would_act_on(void **state)
{
    char out[64];

    ml_ctl_text_printable("ok \x1b[31m\\\n\xc3", 64, out, sizeof(out));
    assert_string_equal(out, "ok \\x1b[31m\\x5c\\x0a\\xc3");
}

static void test_printable_cuts_with_dots_and_stays_terminated(void **state)
{
    char out[12];

    ml_ctl_text_printable("abcdefghijklmnop", 64, out, sizeof(out));
    assert_string_equal(out, "abcdefgh..."); /* 11 bytes and the NUL */
    ml_ctl_text_printable("\x01\x02\x03\x04", 64, out, sizeof(out));
    assert_string_equal(out, "\\x01\\x02...");
    ml_ctl_text_printable("abcdef", 3, out, sizeof(out)); /* n_max bounds an unterminated s */
    assert_string_equal(out, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_inside_the_rule),
        cmocka_unit_test(test_ids_outside_the_rule),
        cmocka_unit_test(test_printable_escapes_what_a_terminal_would_act_on),
        cmocka_unit_test(test_printable_cuts_with_dots_and_stays_terminated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
