/* admin/guard.c: the checks an admin request passes (framing, Host, token), alone. */
#include "admin/guard.h"

#include "config/value.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static struct ml_cfg_addr addr(const char *text)
{
    struct ml_cfg_addr a;

    memset(&a, 0, sizeof(a));
    assert_int_equal(ml_value_addr(text, &a), 0);
    a.set = true;
    return a;
}

/* ---- Content-Length ------------------------------------------------------------------------ */

static void test_content_length_takes_digits_only(void **state)
{
    uint64_t v = 7;

    assert_int_equal(ml_admin_content_length("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ml_admin_content_length("262144", &v), 0);
    assert_int_equal(v, 262144);
    assert_int_equal(ml_admin_content_length("9999999999999999999", &v), 0);
    assert_true(v == 9999999999999999999ull);

    /* a second Content-Length header reaches us joined: "10, 10" */
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 ",
                                      "1.0",
                                      "0x10",
                                      "1e3",
                                      "ten",
                                      "10, 10",
                                      "10,10",
                                      "10 ,12",
                                      "99999999999999999999",
                                      "1\t"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        assert_int_equal(ml_admin_content_length(bad[i], &v), -EINVAL);
        assert_int_equal(v, 7);
    }
    assert_int_equal(ml_admin_content_length(NULL, &v), -EINVAL);
}

/* ---- Host ------------------------------------------------------------------------------------ */

static void test_host_of_a_loopback_admin(void **state)
{
    struct ml_cfg_addr a = addr("127.0.0.1:15000");

    assert_true(ml_admin_host_allowed(&a, "127.0.0.1:15000"));
    assert_true(ml_admin_host_allowed(&a, "localhost:15000"));
    assert_true(ml_admin_host_allowed(&a, "LocalHost:15000"));
    assert_true(ml_admin_host_allowed(&a, "[::1]:15000"));

    static const char *const bad[] = {
        "evil.example:15000",
        "127.0.0.1:15001",
        "127.0.0.1",
        "localhost",
        "127.0.0.2:15000",
        "10.0.0.1:15000",
        "127.0.0.1:",
        "127.0.0.1:015000x",
        "[::1]",
        "[::1]15000",
        "127.0.0.1:15000, x",
        "",
        "localhost.evil:15000",
        "127.0.0.1:99999",
        "[::1:15000",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ml_admin_host_allowed(&a, bad[i]));
    }
    assert_false(ml_admin_host_allowed(&a, NULL));
}

static void test_host_of_a_remote_admin_is_its_address_only(void **state)
{
    struct ml_cfg_addr a = addr("192.0.2.7:8080");
    struct ml_cfg_addr v6 = addr("[2001:db8::7]:8080");

    assert_true(ml_admin_host_allowed(&a, "192.0.2.7:8080"));
    assert_false(ml_admin_host_allowed(&a, "localhost:8080"));
    assert_false(ml_admin_host_allowed(&a, "127.0.0.1:8080"));
    assert_false(ml_admin_host_allowed(&a, "gateway.lan:8080"));
    assert_true(ml_admin_host_allowed(&v6, "[2001:db8::7]:8080"));
    assert_true(ml_admin_host_allowed(&v6, "[2001:DB8:0::7]:8080"));
    assert_false(ml_admin_host_allowed(&v6, "[::1]:8080"));
}

static void test_host_of_a_wildcard_admin_is_any_ip_literal(void **state)
{
    struct ml_cfg_addr a = addr("0.0.0.0:80");

    assert_true(ml_admin_host_allowed(&a, "192.0.2.7"));
    assert_true(ml_admin_host_allowed(&a, "192.0.2.7:80"));
    assert_true(ml_admin_host_allowed(&a, "localhost"));
    assert_false(ml_admin_host_allowed(&a, "192.0.2.7:81"));
    assert_false(ml_admin_host_allowed(&a, "rebound.attacker.test"));
}

/* ---- token ---------------------------------------------------------------------------------- */

static void test_bearer_token_must_match_exactly(void **state)
{
    const char *tok = "0123456789abcdef0123";
    size_t n = strlen(tok);

    assert_true(ml_admin_bearer_matches("Bearer 0123456789abcdef0123", tok, n));
    assert_true(ml_admin_bearer_matches("bearer 0123456789abcdef0123", tok, n));
    assert_true(ml_admin_bearer_matches("BEARER  0123456789abcdef0123", tok, n));

    static const char *const bad[] = {
        "Bearer 0123456789abcdef012",
        "Bearer 0123456789abcdef01234",
        "Bearer 1123456789abcdef0123",
        "Bearer 0123456789abcdef0124",
        "Basic 0123456789abcdef0123",
        "0123456789abcdef0123",
        "Bearer",
        "Bearer ",
        "",
        "Bearer 0123456789abcdef0123 ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ml_admin_bearer_matches(bad[i], tok, n));
    }
    assert_false(ml_admin_bearer_matches(NULL, tok, n));
    assert_false(ml_admin_bearer_matches("Bearer ", "", 0)); /* no token: nothing matches */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_takes_digits_only),
        cmocka_unit_test(test_host_of_a_loopback_admin),
        cmocka_unit_test(test_host_of_a_remote_admin_is_its_address_only),
        cmocka_unit_test(test_host_of_a_wildcard_admin_is_any_ip_literal),
        cmocka_unit_test(test_bearer_token_must_match_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
