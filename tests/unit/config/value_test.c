/* config/value.c: the value syntax of config/README.md ("Syntax"), one pure parser per kind. */
#include "config/value.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

/* ---- numbers -------------------------------------------------------------------------------- */

static void test_uint_takes_decimal_digits_only(void **state)
{
    uint64_t v = 7;

    assert_int_equal(ml_value_uint("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ml_value_uint("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(ml_value_uint("007", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(ml_value_uint("9999999999999999999", &v), 0);
    assert_true(v == 9999999999999999999ull);

    static const char *const bad[] = {"",    "-1",   "+1",  " 1",  "1 ",
                                      "1.0", "0x10", "1e3", "one", "1_000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        assert_int_equal(ml_value_uint(bad[i], &v), -EINVAL);
        assert_int_equal(v, 7); /* untouched on error */
    }
}

static void test_uint_refuses_overflow_instead_of_wrapping(void **state)
{
    uint64_t v;

    assert_int_equal(ml_value_uint("18446744073709551616", &v), -ERANGE);
    assert_int_equal(ml_value_uint("99999999999999999999999", &v), -ERANGE);
}

/* ---- durations ------------------------------------------------------------------------------ */

static void test_duration_units_give_milliseconds(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        {"250ms", 250},  {"2s", 2000}, {"5m", 300000},
        {"1h", 3600000}, {"1ms", 1},   {"720h", 720ull * 3600000},
        {"0ms", 0},      {"0s", 0},    {"90s", 90000},
    };
    uint64_t ms;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(ml_value_duration(ok[i].s, &ms), 0);
        assert_true(ms == ok[i].ms);
    }
}

static void test_duration_zero_alone_is_accepted(void **state)
{
    uint64_t ms = 99;

    assert_int_equal(ml_value_duration("0", &ms), 0);
    assert_int_equal(ms, 0);
}

static void test_duration_bare_number_is_refused(void **state)
{
    uint64_t ms;

    assert_int_equal(ml_value_duration("5", &ms), -EINVAL);
    assert_int_equal(ml_value_duration("250", &ms), -EINVAL);
    assert_int_equal(ml_value_duration("00", &ms), -EINVAL);
}

static void test_duration_other_forms_are_refused(void **state)
{
    static const char *const bad[] = {"",   "ms",    "1.5s", "5 s", "5S",  "5sec", "-1s",
                                      "5d", "1h30m", "s5",   "5 ",  " 5s", "5ms ", "+5s"};
    uint64_t ms;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ml_value_duration(bad[i], &ms), -EINVAL);
    }
}

static void test_duration_overflow_is_a_range_error(void **state)
{
    uint64_t ms;

    assert_int_equal(ml_value_duration("99999999999999999999ms", &ms), -ERANGE);
    assert_int_equal(ml_value_duration("18446744073709551615h", &ms), -ERANGE);
    assert_int_equal(ml_value_duration("5124095576030h", &ms), 0); /* the largest that fits */
    assert_int_equal(ml_value_duration("5124095576031h", &ms), -ERANGE);
}

/* ---- sizes ---------------------------------------------------------------------------------- */

static void test_size_bare_number_is_bytes(void **state)
{
    uint64_t n;

    assert_int_equal(ml_value_size("65536", &n), 0);
    assert_int_equal(n, 65536);
    assert_int_equal(ml_value_size("0", &n), 0);
    assert_int_equal(n, 0);
}

static void test_size_binary_units(void **state)
{
    uint64_t n;

    assert_int_equal(ml_value_size("64KiB", &n), 0);
    assert_int_equal(n, 64 * 1024);
    assert_int_equal(ml_value_size("4MiB", &n), 0);
    assert_int_equal(n, 4 * 1024 * 1024);
    assert_int_equal(ml_value_size("1GiB", &n), 0);
    assert_true(n == 1024ull * 1024 * 1024);
}

static void test_size_other_units_and_forms_are_refused(void **state)
{
    static const char *const bad[] = {"",     "KiB",    "64kib", "64KB", "64K", "64 KiB",
                                      "64kB", "1.5MiB", "-1",    "64B",  "1TiB"};
    uint64_t n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ml_value_size(bad[i], &n), -EINVAL);
    }
}

static void test_size_overflow_is_a_range_error(void **state)
{
    uint64_t n;

    assert_int_equal(ml_value_size("17179869184GiB", &n), -ERANGE); /* 2^34 GiB = 2^64 */
    assert_int_equal(ml_value_size("17179869183GiB", &n), 0);
    assert_int_equal(ml_value_size("99999999999999999999", &n), -ERANGE);
}

/* ---- percents ------------------------------------------------------------------------------- */

static void test_percent_gives_parts_per_million(void **state)
{
    static const struct {
        const char *s;
        uint32_t ppm;
    } ok[] = {
        {"5%", 50000},          {"0%", 0},        {"100%", 1000000},    {"12.5%", 125000},
        {"0.1%", 1000},         {"0.0001%", 1},   {"99.9999%", 999999}, {"100.0%", 1000000},
        {"100.0000%", 1000000}, {"1.50%", 15000}, {"007%", 70000},
    };
    uint32_t ppm;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(ml_value_percent(ok[i].s, false, &ppm), 0);
        assert_int_equal(ppm, ok[i].ppm);
    }
}

static void test_percent_sign_optional_only_when_asked(void **state)
{
    uint32_t ppm;

    /* keys named *_percent take 0..100 with or without % */
    assert_int_equal(ml_value_percent("50", true, &ppm), 0);
    assert_int_equal(ppm, 500000);
    assert_int_equal(ml_value_percent("12.5", true, &ppm), 0);
    assert_int_equal(ppm, 125000);
    assert_int_equal(ml_value_percent("50%", true, &ppm), 0);
    assert_int_equal(ppm, 500000);
    /* ratios elsewhere need it */
    assert_int_equal(ml_value_percent("50", false, &ppm), -EINVAL);
}

static void test_percent_above_100_is_a_range_error(void **state)
{
    uint32_t ppm;

    assert_int_equal(ml_value_percent("101%", false, &ppm), -ERANGE);
    assert_int_equal(ml_value_percent("100.0001%", false, &ppm), -ERANGE);
    assert_int_equal(ml_value_percent("101", true, &ppm), -ERANGE);
    assert_int_equal(ml_value_percent("99999999999999999999999%", false, &ppm), -ERANGE);
}

static void test_percent_bad_forms_are_refused(void **state)
{
    static const char *const bad[] = {"",     "%",    "5.%",      ".5%",       "5%%",  "-5%", "5 %",
                                      "5,5%", "1e2%", "0.00001%", "12.34567%", "half", "5% "};
    uint32_t ppm;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ml_value_percent(bad[i], true, &ppm), -EINVAL);
    }
}

/* ---- booleans ------------------------------------------------------------------------------- */

static void test_bool_is_on_or_off(void **state)
{
    static const char *const bad[] = {"", "On", "OFF", "yes", "no", "true", "false", "1", "0"};
    bool b = false;

    assert_int_equal(ml_value_bool("on", &b), 0);
    assert_true(b);
    assert_int_equal(ml_value_bool("off", &b), 0);
    assert_false(b);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ml_value_bool(bad[i], &b), -EINVAL);
    }
}

/* ---- ranges --------------------------------------------------------------------------------- */

static void test_range_from_to(void **state)
{
    uint64_t from, to;

    assert_int_equal(ml_value_duration_range("25ms..250ms", &from, &to), 0);
    assert_int_equal(from, 25);
    assert_int_equal(to, 250);
    assert_int_equal(ml_value_duration_range("500ms..30s", &from, &to), 0);
    assert_int_equal(from, 500);
    assert_int_equal(to, 30000);
    assert_int_equal(ml_value_duration_range("1s..1s", &from, &to), 0); /* from == to is fine */
    assert_int_equal(from, 1000);
    assert_int_equal(to, 1000);
    assert_int_equal(ml_value_duration_range("0..1s", &from, &to), 0); /* bounds are the key's */
    assert_int_equal(from, 0);
}

static void test_range_from_greater_than_to_is_refused(void **state)
{
    uint64_t from, to;

    assert_int_equal(ml_value_duration_range("250ms..25ms", &from, &to), -ERANGE);
    assert_int_equal(ml_value_duration_range("1m..59s", &from, &to), -ERANGE);
}

static void test_range_bad_forms_are_refused(void **state)
{
    static const char *const bad[] = {
        "",          "25ms",      "25ms..",       "..250ms",       "25ms-250ms",
        "25..250ms", "25ms..250", "25ms...250ms", "25ms .. 250ms", "25ms..250ms..1s"};
    uint64_t from, to;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ml_value_duration_range(bad[i], &from, &to), -EINVAL);
    }
}

static void test_range_with_a_huge_from_is_refused_not_overrun(void **state)
{
    char s[200];
    uint64_t from, to;

    memset(s, '9', 150);
    strcpy(s + 150, "ms..1s");
    assert_int_equal(ml_value_duration_range(s, &from, &to), -EINVAL);
}

/* ---- addresses ------------------------------------------------------------------------------ */

static void test_addr_ipv4_and_port(void **state)
{
    struct ml_cfg_addr a;
    static const uint8_t ip[4] = {127, 0, 0, 1};

    assert_int_equal(ml_value_addr("127.0.0.1:15001", &a), 0);
    assert_true(a.set);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(a.port, 15001);
    assert_memory_equal(a.ip, ip, 4);
    assert_null(a.text); /* the caller keeps the text */

    assert_int_equal(ml_value_addr("0.0.0.0:1", &a), 0);
    assert_int_equal(a.port, 1);
    assert_int_equal(ml_value_addr("255.255.255.255:65535", &a), 0);
    assert_int_equal(a.port, 65535);
}

static void test_addr_ipv6_in_brackets(void **state)
{
    struct ml_cfg_addr a;
    uint8_t ip[16];

    assert_int_equal(ml_value_addr("[::1]:15001", &a), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.port, 15001);
    assert_int_equal(inet_pton(AF_INET6, "::1", ip), 1);
    assert_memory_equal(a.ip, ip, 16);

    assert_int_equal(ml_value_addr("[2001:db8::20]:443", &a), 0);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::20", ip), 1);
    assert_memory_equal(a.ip, ip, 16);
    assert_int_equal(ml_value_addr("[::]:80", &a), 0);
    assert_int_equal(ml_value_addr("[::ffff:10.0.0.1]:80", &a), 0);
}

static void test_addr_spellings_of_one_address_are_equal(void **state)
{
    struct ml_cfg_addr a, b;

    assert_int_equal(ml_value_addr("[::1]:80", &a), 0);
    assert_int_equal(ml_value_addr("[0:0:0:0:0:0:0:1]:80", &b), 0);
    assert_memory_equal(a.ip, b.ip, 16);
    assert_int_equal(ml_value_addr("127.0.0.1:080", &b), 0);
    assert_int_equal(b.port, 80);
}

static void test_addr_refuses_names_missing_ports_and_bad_ports(void **state)
{
    static const char *const bad[] = {"",
                                      "127.0.0.1",
                                      "127.0.0.1:",
                                      "127.0.0.1:0",
                                      "127.0.0.1:65536",
                                      "127.0.0.1:-1",
                                      "127.0.0.1:+80",
                                      "127.0.0.1: 80",
                                      "127.0.0.1:80 ",
                                      "localhost:80",
                                      "greeter.local:50051",
                                      "127.1:80",
                                      "256.0.0.1:80",
                                      "::1:80",
                                      "[::1]80",
                                      "[::1]",
                                      "[::1]:",
                                      "[127.0.0.1]:80",
                                      "[::1:80",
                                      ":80",
                                      "*:80",
                                      "[fe80::1%eth0]:80",
                                      "1.2.3.4:99999999999999999999"};
    struct ml_cfg_addr a;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ml_value_addr(bad[i], &a), -EINVAL);
    }
}

static void test_addr_loopback_is_127_8_and_v6_one(void **state)
{
    static const struct {
        const char *s;
        bool loopback;
    } cases[] = {
        {"127.0.0.1:1", true}, {"127.255.255.254:1", true}, {"10.0.0.1:1", false},
        {"0.0.0.0:1", false},  {"128.0.0.1:1", false},      {"[::1]:1", true},
        {"[::]:1", false},     {"[::2]:1", false},          {"[2001:db8::1]:1", false},
    };
    struct ml_cfg_addr a;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ml_value_addr(cases[i].s, &a), 0);
        assert_int_equal(ml_value_addr_is_loopback(&a), cases[i].loopback);
    }
}

/* ---- host names ----------------------------------------------------------------------------- */

static void test_host_name_rfc1123_labels(void **state)
{
    char label63[64], label64[65];

    assert_true(ml_value_is_hostname("a", 1));
    assert_true(ml_value_is_hostname("greeter.local", 13));
    assert_true(ml_value_is_hostname("xn--bcher-kva.example", 21));
    assert_true(ml_value_is_hostname("10.0.0.1", 8));
    assert_true(ml_value_is_hostname("a-b.c-d", 7));
    memset(label63, 'a', 63);
    label63[63] = '\0';
    memset(label64, 'a', 64);
    label64[64] = '\0';
    assert_true(ml_value_is_hostname(label63, 63));
    assert_false(ml_value_is_hostname(label64, 64));

    static const char *const bad[] = {"-a",  "a-",  "a.-b", "a-.b", "a..b",   ".a",
                                      "a_b", "a b", "a/b",  "a:b",  "é.local"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ml_value_is_hostname(bad[i], strlen(bad[i])));
    }
    assert_false(ml_value_is_hostname("", 0));
}

static void test_host_name_total_length_is_253(void **state)
{
    char name[260];

    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
    memset(name, 'a', sizeof(name));
    name[63] = name[127] = name[191] = '.';
    assert_true(ml_value_is_hostname(name, 253));
    assert_false(ml_value_is_hostname(name, 254));
}

static void test_host_name_only_looks_at_n_bytes(void **state)
{
    assert_true(ml_value_is_hostname("greeter.local:50051", 13));
}

static void test_host_port_takes_a_name_or_an_ip(void **state)
{
    size_t host_len;
    uint16_t port;

    assert_int_equal(ml_value_host_port("greeter.local:50051", &host_len, &port), 0);
    assert_int_equal(host_len, 13);
    assert_int_equal(port, 50051);
    assert_int_equal(ml_value_host_port("10.0.0.5:80", &host_len, &port), 0);
    assert_int_equal(host_len, 8);
    assert_int_equal(port, 80);

    static const char *const bad[] = {"greeter.local", ":80",   "-a:1",           "a..b:1", "a:0",
                                      "a:65536",       "a_b:1", "greeter.local:", "a:b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ml_value_host_port(bad[i], &host_len, &port), -EINVAL);
    }
}

/* ---- names ---------------------------------------------------------------------------------- */

static void test_name_is_1_to_63_of_the_name_characters(void **state)
{
    char n[70];

    memset(n, 'x', sizeof(n));
    assert_true(ml_value_is_name(n, 1));
    assert_true(ml_value_is_name(n, 63));
    assert_false(ml_value_is_name(n, 64));
    assert_false(ml_value_is_name(n, 0));
    assert_true(ml_value_is_name("greeter-v1.eu_west", 18));
    assert_true(ml_value_is_name("GW-0042", 7));

    static const char *const bad[] = {"a b", "a/b", "a:b", "a,b", "a=b", "[a]", "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ml_value_is_name(bad[i], strlen(bad[i])));
    }
}

static void test_header_name_is_a_token_without_pseudo_headers(void **state)
{
    assert_true(ml_value_is_header_name("x-canary", 8));
    assert_true(ml_value_is_header_name("X-User-Id", 9));
    assert_true(ml_value_is_header_name("x_a!#$%&'*+-.^`|~", 17));
    assert_false(ml_value_is_header_name(":path", 5));
    assert_false(ml_value_is_header_name("", 0));
    assert_false(ml_value_is_header_name("x canary", 8));
    assert_false(ml_value_is_header_name("x:canary", 8));
    assert_false(ml_value_is_header_name("x\"a", 3));
}

/* ---- spelling values back ------------------------------------------------------------------- */

static void test_format_duration_uses_the_largest_exact_unit(void **state)
{
    static const struct {
        uint64_t ms;
        const char *s;
    } cases[] = {
        {0, "0"},         {1, "1ms"},
        {250, "250ms"},   {1500, "1500ms"},
        {2000, "2s"},     {90000, "90s"},
        {300000, "5m"},   {3600000, "1h"},
        {5400000, "90m"}, {720ull * 3600000, "720h"},
    };
    char buf[32];
    uint64_t back;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ml_value_format_duration(cases[i].ms, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].s);
        assert_int_equal(ml_value_duration(buf, &back), 0); /* the INI takes it back */
        assert_true(back == cases[i].ms);
    }
}

static void test_format_size_uses_the_largest_exact_unit(void **state)
{
    static const struct {
        uint64_t n;
        const char *s;
    } cases[] = {
        {0, "0"},       {1000, "1000"},    {1024, "1KiB"},       {65536, "64KiB"},
        {1536, "1536"}, {4194304, "4MiB"}, {1073741824, "1GiB"}, {2147483647, "2147483647"},
    };
    char buf[32];
    uint64_t back;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ml_value_format_size(cases[i].n, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].s);
        assert_int_equal(ml_value_size(buf, &back), 0);
        assert_true(back == cases[i].n);
    }
}

static void test_format_truncates_to_the_buffer(void **state)
{
    char buf[3];

    ml_value_format_duration(250, buf, sizeof(buf));
    assert_string_equal(buf, "25");
    ml_value_format_size(65536, buf, sizeof(buf));
    assert_string_equal(buf, "64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uint_takes_decimal_digits_only),
        cmocka_unit_test(test_uint_refuses_overflow_instead_of_wrapping),
        cmocka_unit_test(test_duration_units_give_milliseconds),
        cmocka_unit_test(test_duration_zero_alone_is_accepted),
        cmocka_unit_test(test_duration_bare_number_is_refused),
        cmocka_unit_test(test_duration_other_forms_are_refused),
        cmocka_unit_test(test_duration_overflow_is_a_range_error),
        cmocka_unit_test(test_size_bare_number_is_bytes),
        cmocka_unit_test(test_size_binary_units),
        cmocka_unit_test(test_size_other_units_and_forms_are_refused),
        cmocka_unit_test(test_size_overflow_is_a_range_error),
        cmocka_unit_test(test_percent_gives_parts_per_million),
        cmocka_unit_test(test_percent_sign_optional_only_when_asked),
        cmocka_unit_test(test_percent_above_100_is_a_range_error),
        cmocka_unit_test(test_percent_bad_forms_are_refused),
        cmocka_unit_test(test_bool_is_on_or_off),
        cmocka_unit_test(test_range_from_to),
        cmocka_unit_test(test_range_from_greater_than_to_is_refused),
        cmocka_unit_test(test_range_bad_forms_are_refused),
        cmocka_unit_test(test_range_with_a_huge_from_is_refused_not_overrun),
        cmocka_unit_test(test_addr_ipv4_and_port),
        cmocka_unit_test(test_addr_ipv6_in_brackets),
        cmocka_unit_test(test_addr_spellings_of_one_address_are_equal),
        cmocka_unit_test(test_addr_refuses_names_missing_ports_and_bad_ports),
        cmocka_unit_test(test_addr_loopback_is_127_8_and_v6_one),
        cmocka_unit_test(test_host_name_rfc1123_labels),
        cmocka_unit_test(test_host_name_total_length_is_253),
        cmocka_unit_test(test_host_name_only_looks_at_n_bytes),
        cmocka_unit_test(test_host_port_takes_a_name_or_an_ip),
        cmocka_unit_test(test_name_is_1_to_63_of_the_name_characters),
        cmocka_unit_test(test_header_name_is_a_token_without_pseudo_headers),
        cmocka_unit_test(test_format_duration_uses_the_largest_exact_unit),
        cmocka_unit_test(test_format_size_uses_the_largest_exact_unit),
        cmocka_unit_test(test_format_truncates_to_the_buffer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
