/* proxy/authz.c: the [authz] matcher with and without a principal, over sections loaded from
 * INI text (so the rules are those the validator parsed). */
#include "proxy/authz.h"

#include "config/errors.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define FRONTEND "spiffe://mesh.local/frontend"

/* A config with one listener "l" guarded by [authz l] with rules (lines); the caller unrefs. */
static struct ml_snapshot *load(const char *rules)
{
    char text[2048];
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;
    int rv;

    snprintf(text, sizeof(text),
             "[listener l]\nbind = 127.0.0.1:15999\n[listener m]\nbind = 127.0.0.1:15998\n"
             "[route r]\nlistener = l\nto = c\n[cluster c]\nendpoint = 127.0.0.1:50051\n"
             "[authz l]\n%s\n",
             rules);
    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, strlen(text), NULL, &errs, &s);
    for (size_t i = 0; i < errs.n; i++) {
        print_error("  %d: %s\n", errs.v[i].line, errs.v[i].text);
    }
    ml_config_errors_deinit(&errs);
    assert_int_equal(rv, 0);
    assert_non_null(s);
    return s;
}

static struct ml_slice sl(const char *s)
{
    return (struct ml_slice){(const uint8_t *)s, strlen(s)};
}

/* The decision for principal on path: the rule number from 1, 1000 for the default; negative
 * when denied. */
static int decide(const struct ml_snapshot *s, const char *principal, const char *path)
{
    const struct ml_cfg_authz *az = ml_authz_of_listener(s, 0);
    int d;

    assert_non_null(az);
    d = ml_authz_decide(az, principal, sl(path));
    d = d == ML_AUTHZ_DEFAULT ? 1000 : d + 1;
    return ml_authz_allows(az, d == 1000 ? ML_AUTHZ_DEFAULT : d - 1) ? d : -d;
}

#define ALLOWED_BY(n) (n)
#define DENIED_BY(n) (-(n))
#define DEFAULT_ALLOWED 1000
#define DEFAULT_DENIED (-1000)

static void test_glob_is_case_sensitive_and_star_spans_slashes(void **state)
{
    (void)state;
    assert_true(ml_authz_glob("/a.B/*", sl("/a.B/C/d")));
    assert_false(ml_authz_glob("/a.B/*", sl("/A.b/C")));
    assert_true(ml_authz_glob("spiffe://mesh.local/*", sl(FRONTEND)));
    assert_false(ml_authz_glob("spiffe://mesh.local/*", sl("spiffe://mesh.localx/a")));
    assert_true(ml_authz_glob("spiffe://mesh.local/front?nd", sl(FRONTEND)));
    assert_true(ml_authz_glob("*", sl("")));
    assert_false(ml_authz_glob("/a", sl("/ab")));
}

static void test_allow_star_needs_a_principal_deny_star_takes_everyone(void **state)
{
    struct ml_snapshot *s = load("allow = * -> /a/*\ndeny = * -> /b/*\ndefault = allow");

    (void)state;
    assert_int_equal(decide(s, FRONTEND, "/a/x"), ALLOWED_BY(1));
    assert_int_equal(decide(s, NULL, "/a/x"), DEFAULT_ALLOWED);
    assert_int_equal(decide(s, "", "/a/x"), DEFAULT_ALLOWED);
    assert_int_equal(decide(s, FRONTEND, "/b/x"), DENIED_BY(2));
    assert_int_equal(decide(s, NULL, "/b/x"), DENIED_BY(2));
    ml_snapshot_unref(s);
}

static void test_dash_is_only_the_peer_without_a_principal(void **state)
{
    struct ml_snapshot *s = load("allow = - -> *\ndefault = deny");

    (void)state;
    assert_int_equal(decide(s, NULL, "/a/x"), ALLOWED_BY(1));
    assert_int_equal(decide(s, "", "/a/x"), ALLOWED_BY(1));
    assert_int_equal(decide(s, FRONTEND, "/a/x"), DEFAULT_DENIED);
    /* a peer whose principal is literally "-" is a principal, not "none" */
    assert_int_equal(decide(s, "-", "/a/x"), DEFAULT_DENIED);
    ml_snapshot_unref(s);
}

static void test_principal_globs_match_principals_only(void **state)
{
    struct ml_snapshot *s = load("deny = spiffe://mesh.local/evil* -> *\n"
                                 "allow = spiffe://mesh.local/* -> /helloworld.Greeter/*\n"
                                 "default = deny");

    (void)state;
    assert_int_equal(decide(s, FRONTEND, "/helloworld.Greeter/SayHello"), ALLOWED_BY(2));
    assert_int_equal(decide(s, "spiffe://mesh.local/evil-twin", "/helloworld.Greeter/SayHello"),
                     DENIED_BY(1));
    assert_int_equal(decide(s, "spiffe://other/frontend", "/helloworld.Greeter/SayHello"),
                     DEFAULT_DENIED);
    assert_int_equal(decide(s, NULL, "/helloworld.Greeter/SayHello"), DEFAULT_DENIED);
    assert_int_equal(decide(s, FRONTEND, "/grpc.reflection.v1.ServerReflection/Info"),
                     DEFAULT_DENIED);
    ml_snapshot_unref(s);
}

static void test_first_match_wins_and_query_is_ignored(void **state)
{
    struct ml_snapshot *s = load("deny = * -> /grpc.reflection.*\nallow = * -> *\n"
                                 "allow = - -> /public/*\ndefault = deny");

    (void)state;
    assert_int_equal(decide(s, FRONTEND, "/grpc.reflection.v1alpha.ServerReflection/Info"),
                     DENIED_BY(1));
    assert_int_equal(decide(s, NULL, "/grpc.reflection.v1alpha.ServerReflection/Info"),
                     DENIED_BY(1));
    assert_int_equal(decide(s, FRONTEND, "/x"), ALLOWED_BY(2));
    assert_int_equal(decide(s, NULL, "/public/a?b=c"), ALLOWED_BY(3));
    assert_int_equal(decide(s, NULL, "/grpc.reflection.x?/public/"), DENIED_BY(1));
    assert_int_equal(decide(s, NULL, "/private"), DEFAULT_DENIED);
    ml_snapshot_unref(s);
}

static void test_the_section_belongs_to_its_listener_only(void **state)
{
    struct ml_snapshot *s = load("default = deny");

    (void)state;
    assert_non_null(ml_authz_of_listener(s, 0));
    assert_null(ml_authz_of_listener(s, 1)); /* no [authz m]: every call passes */
    ml_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob_is_case_sensitive_and_star_spans_slashes),
        cmocka_unit_test(test_allow_star_needs_a_principal_deny_star_takes_everyone),
        cmocka_unit_test(test_dash_is_only_the_peer_without_a_principal),
        cmocka_unit_test(test_principal_globs_match_principals_only),
        cmocka_unit_test(test_first_match_wins_and_query_is_ignored),
        cmocka_unit_test(test_the_section_belongs_to_its_listener_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
