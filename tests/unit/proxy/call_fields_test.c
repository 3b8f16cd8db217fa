/* proxy/call.c: ml_call_fields_find, the request fields a call and its steps read (:path,
 * :authority, Host, :method, content-type, grpc-timeout), found in one walk when the call
 * starts instead of one lookup each where they are read: the first field of each name counts,
 * as the lookups found it; a missing one is empty, a missing grpc-timeout is told from an
 * empty one (which is malformed). */
#include "proxy/call_int.h"

#include "h2/hdrs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void assert_slice(struct ml_slice s, const char *want)
{
    assert_non_null(s.p);
    assert_int_equal(s.n, strlen(want));
    assert_memory_equal(s.p, want, s.n);
}

static void test_a_grpc_request(void **state)
{
    struct ml_h2_hdrs h;
    struct ml_call_fields f;

    ml_h2_hdrs_init(&h, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":method", "POST"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":scheme", "http"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":path", "/helloworld.Greeter/SayHello"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":authority", "localhost:15001"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "content-type", "application/grpc"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "te", "trailers"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "grpc-timeout", "1S"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "user-agent", "grpc-c/1"), 0);
    ml_call_fields_find(&h, &f);
    assert_slice(f.method, "POST");
    assert_slice(f.path, "/helloworld.Greeter/SayHello");
    assert_slice(f.authority, "localhost:15001");
    assert_slice(f.host, "");
    assert_slice(f.content_type, "application/grpc");
    assert_slice(f.grpc_timeout, "1S");
    ml_h2_hdrs_deinit(&h);
}

static void test_missing_fields_are_empty_and_a_missing_timeout_is_told_apart(void **state)
{
    struct ml_h2_hdrs h;
    struct ml_call_fields f;

    ml_h2_hdrs_init(&h, 4096);
    ml_call_fields_find(&h, &f); /* no fields at all */
    assert_slice(f.path, "");
    assert_slice(f.authority, "");
    assert_slice(f.method, "");
    assert_slice(f.content_type, "");
    assert_null(f.grpc_timeout.p);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "grpc-timeout", ""), 0);
    ml_call_fields_find(&h, &f);
    assert_slice(f.grpc_timeout, ""); /* there, and empty: malformed, not absent */
    ml_h2_hdrs_deinit(&h);
}

static void test_the_first_of_a_repeated_name_counts(void **state)
{
    struct ml_h2_hdrs h;
    struct ml_call_fields f;

    ml_h2_hdrs_init(&h, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":path", "/a"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "host", "first.example"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "host", "second.example"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "content-type", "application/grpc+proto"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "content-type", "text/plain"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "grpc-timeout", "5m"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "grpc-timeout", "9H"), 0);
    /* lookalikes of the same lengths are none of them */
    assert_int_equal(ml_h2_hdrs_add_str(&h, "hosT", "x"), 0); /* lowered: a third host */
    assert_int_equal(ml_h2_hdrs_add_str(&h, "x-path", "/b"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":pathx", "/c"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "content-typo", "y"), 0);
    ml_call_fields_find(&h, &f);
    assert_slice(f.path, "/a");
    assert_slice(f.authority, "");
    assert_slice(f.host, "first.example");
    assert_slice(f.content_type, "application/grpc+proto");
    assert_slice(f.grpc_timeout, "5m");
    ml_h2_hdrs_deinit(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_grpc_request),
        cmocka_unit_test(test_missing_fields_are_empty_and_a_missing_timeout_is_told_apart),
        cmocka_unit_test(test_the_first_of_a_repeated_name_counts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
