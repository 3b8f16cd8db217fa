/* grpc/message.c: the grpc-message value meshlet writes and the content-type check that decides
 * whether a call is answered in gRPC. (runtime/grpc has no length-prefixed message parser: the
 * proxy relays DATA as bytes, so the 5-byte framing is not parsed anywhere yet.) */
#include "grpc/message.h"

#include "core/alloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static bool is_ct(const char *s)
{
    return ml_grpc_is_content_type((struct ml_slice){(const uint8_t *)s, strlen(s)});
}

static const char *enc(const char *msg, char *buf, size_t cap)
{
    return ml_grpc_message_encode(msg, buf, cap);
}

/* ---- content-type --------------------------------------------------------------------------- */

static void test_grpc_content_type_alone_or_with_a_suffix_is_grpc(void **state)
{
    assert_true(is_ct("application/grpc"));
    assert_true(is_ct("application/grpc+proto"));
    assert_true(is_ct("application/grpc+json"));
    assert_true(is_ct("application/grpc;charset=utf-8"));
    assert_true(is_ct("application/grpc-web"));
    assert_true(is_ct("application/grpc-web-text+proto"));
}

static void test_grpc_content_type_is_case_insensitive(void **state)
{
    assert_true(is_ct("Application/GRPC"));
    assert_true(is_ct("APPLICATION/GRPC+PROTO"));
}

static void test_other_content_types_are_not_grpc(void **state)
{
    assert_false(is_ct(""));
    assert_false(is_ct("application/grp"));
    assert_false(is_ct("application/grpcx"));
    assert_false(is_ct("application/grpc proto"));
    assert_false(is_ct("application/json"));
    assert_false(is_ct(" application/grpc"));
    assert_false(is_ct("text/plain"));
}

static void test_content_type_is_read_within_its_length_only(void **state)
{
    /* The slice ends before the suffix: exactly "application/grpc". */
    const char *s = "application/grpc!!";

    assert_true(ml_grpc_is_content_type((struct ml_slice){(const uint8_t *)s, 16}));
    assert_false(ml_grpc_is_content_type((struct ml_slice){(const uint8_t *)s, 17}));
    assert_false(ml_grpc_is_content_type((struct ml_slice){(const uint8_t *)s, 15}));
    assert_false(ml_grpc_is_content_type((struct ml_slice){NULL, 0}));
}

/* ---- grpc-message --------------------------------------------------------------------------- */

static void test_printable_ascii_is_kept_as_is(void **state)
{
    char buf[64];

    assert_string_equal(enc("upstream connect error: refused", buf, sizeof(buf)),
                        "upstream connect error: refused");
    assert_string_equal(enc("", buf, sizeof(buf)), "");
    assert_string_equal(enc(" ~", buf, sizeof(buf)), " ~");
}

static void test_percent_controls_and_non_ascii_are_escaped_in_upper_hex(void **state)
{
    char buf[64];

    assert_string_equal(enc("100%", buf, sizeof(buf)), "100%25");
    assert_string_equal(enc("a\nb\tc", buf, sizeof(buf)), "a%0Ab%09c");
    assert_string_equal(enc("\x7f\x1f", buf, sizeof(buf)), "%7F%1F");
    assert_string_equal(enc("caf\xc3\xa9", buf, sizeof(buf)), "caf%C3%A9");
}

static void test_result_is_the_buffer_and_always_nul_terminated(void **state)
{
    char buf[8];

    memset(buf, 'x', sizeof(buf));
    assert_ptr_equal(enc("abcdefghijk", buf, sizeof(buf)), buf);
    assert_string_equal(buf, "abcdefg");
}

static void test_cut_to_fit_never_splits_an_escape(void **state)
{
    char buf[16];

    /* cap 6: room for 5 characters. "ab%25" fits exactly; the next escape does not. */
    assert_string_equal(enc("ab%%", buf, 6), "ab%25");
    /* cap 5: "ab" and then %25 would need 3 more + NUL: cut before it. */
    assert_string_equal(enc("ab%%", buf, 5), "ab");
    assert_string_equal(enc("%", buf, 4), "%25");
    assert_string_equal(enc("%", buf, 3), "");
    assert_string_equal(enc("a", buf, 1), "");
}

static void test_zero_cap_writes_nothing(void **state)
{
    char buf[2] = {'g', 'g'};

    assert_ptr_equal(enc("abc", buf, 0), buf);
    assert_int_equal(buf[0], 'g');
    assert_int_equal(buf[1], 'g');
}

static void test_encoding_allocates_nothing(void **state)
{
    char buf[32];

    ml_alloc_fail_after(0);
    enc("a%b\n", buf, sizeof(buf));
    is_ct("application/grpc");
    assert_int_equal(ml_alloc_fail_after(-1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpc_content_type_alone_or_with_a_suffix_is_grpc),
        cmocka_unit_test(test_grpc_content_type_is_case_insensitive),
        cmocka_unit_test(test_other_content_types_are_not_grpc),
        cmocka_unit_test(test_content_type_is_read_within_its_length_only),
        cmocka_unit_test(test_printable_ascii_is_kept_as_is),
        cmocka_unit_test(test_percent_controls_and_non_ascii_are_escaped_in_upper_hex),
        cmocka_unit_test(test_result_is_the_buffer_and_always_nul_terminated),
        cmocka_unit_test(test_cut_to_fit_never_splits_an_escape),
        cmocka_unit_test(test_zero_cap_writes_nothing),
        cmocka_unit_test(test_encoding_allocates_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
