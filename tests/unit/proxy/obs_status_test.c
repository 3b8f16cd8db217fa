/* proxy/obs.c: ml_call_obs_status, the :status and grpc-status a call relays downstream, given
 * as the values proxy/call.c looked up once (it used to look both up a second time itself):
 * the first :status stays, a later grpc-status (the trailers') replaces the headers', and a
 * value that is not 1 to 4 digits counts as none. */
#include "proxy/obs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static struct ml_slice S(const char *s) {
    return (struct ml_slice){(const uint8_t *)s, strlen(s)};
}

static void
fresh(struct ml_call_obs *o)
{
    memset(o, 0, sizeof(*o));
    o->grpc_status = -1; /* as ml_call_obs_begin leaves it */
}

static void test_headers_then_trailers(void **state)
{
    struct ml_call_obs o;

    fresh(&o);
    ml_call_obs_status(&o, S("200"), S("")); /* response headers: no grpc-status yet */
    assert_int_equal(o.http_status, 200);
    assert_int_equal(o.grpc_status, -1);
    ml_call_obs_status(&o, S(""), S("14")); /* trailers */
    assert_int_equal(o.http_status, 200);
    assert_int_equal(o.grpc_status, 14);
}

static void test_trailers_only_answer(void **state)
{
    struct ml_call_obs o;

    fresh(&o);
    ml_call_obs_status(&o, S("200"), S("0"));
    assert_int_equal(o.http_status, 200);
    assert_int_equal(o.grpc_status, 0);
}

static void test_first_status_stays(void **state)
{
    struct ml_call_obs o;

    fresh(&o);
    ml_call_obs_status(&o, S("503"), S(""));
    ml_call_obs_status(&o, S("200"), S(""));
    assert_int_equal(o.http_status, 503);
}

static void test_values_that_are_not_numbers_count_as_none(void **state)
{
    struct ml_call_obs o;

    fresh(&o);
    ml_call_obs_status(&o, S("2x0"), S("1x"));
    assert_int_equal(o.http_status, 0);
    assert_int_equal(o.grpc_status, -1);
    ml_call_obs_status(&o, S("20000"), S("12345"));
    assert_int_equal(o.http_status, 0);
    assert_int_equal(o.grpc_status, -1);
    ml_call_obs_status(&o, S(""), S("16"));
    assert_int_equal(o.grpc_status, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_then_trailers),
        cmocka_unit_test(test_trailers_only_answer),
        cmocka_unit_test(test_first_status_stays),
        cmocka_unit_test(test_values_that_are_not_numbers_count_as_none),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
