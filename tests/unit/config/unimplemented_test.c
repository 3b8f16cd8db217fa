/* config/unimplemented.c: keys whose code does not exist yet are refused by the validator, on
 * their line, unless given the value that asks for nothing.
 * Each key of the table is tried with its off value in the section it belongs to. */
#include "config/unimplemented.h"

#include "config/errors.h"
#include "config/features.h"
#include "config/schema.h"
#include "config/snapshot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define BASE                                                                                       \
    "[listener l]\nbind = 127.0.0.1:15001\n"                                                       \
    "[route r]\nlistener = l\nto = c\n"                                                            \
    "[cluster c]\nendpoint = 127.0.0.1:50051\n"

/* Loads BASE + extra; returns the code, the joined error lines in out. */
static int load(const char *extra, char *out, size_t cap)
{
    char text[1024];
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;
    int rv;

    snprintf(text, sizeof(text), "%s%s", BASE, extra);
    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, strlen(text), NULL, &errs, &s);
    out[0] = '\0';
    ml_config_errors_join(&errs, "t", out, cap);
    ml_config_errors_deinit(&errs);
    ml_snapshot_unref(s);
    return rv;
}

/* BASE's sections as named above; authz has none (none of its keys is in the table). */
static const char *section_of(enum ml_config_kind kind)
{
    switch (kind) {
    case ML_KIND_LISTENER:
        return "[listener l2]\nbind = 127.0.0.1:15002\n";
    case ML_KIND_ROUTE:
        return "[route r2]\nlistener = l\nto = c\n";
    case ML_KIND_CLUSTER:
        return "[cluster c2]\nendpoint = 127.0.0.1:50052\n";
    default:
        return NULL;
    }
}

static void test_every_off_value_is_accepted(void **state)
{
    char extra[256], errs[1024];
    int n = 0;
    (void)state;

    for (int key = 0; key < ML_K_COUNT; key++) {
        const struct ml_key_def *k = &ml_schema_keys[key];
        const char *off = NULL, *sec;

        if (!ml_config_unimplemented(key, &off) || off == NULL) {
            continue;
        }
        sec = section_of(k->kind);
        assert_non_null(sec);
        snprintf(extra, sizeof(extra), "%s%s = %s\n", sec, k->name, off);
        if (load(extra, errs, sizeof(errs)) != 0) {
            fail_msg("%s = \"%s\" (off) refused: %s", k->name, off, errs);
        }
        n++;
    }
    /* the table shrinks as features land: with every balancer built it is empty (n == 0) */
    assert_true(n >= (ML_HAVE_LB_RING_HASH && ML_HAVE_LB_MAGLEV ? 0 : 1));
}

static void test_an_asking_value_is_refused_on_its_line(void **state)
{
    char errs[1024];
    (void)state;

#if !ML_HAVE_LB_MAGLEV
    /* BASE is 7 lines: [cluster c2] is line 8, lb line 10 */
    assert_int_not_equal(
        load("[cluster c2]\nendpoint = 127.0.0.1:50052\nlb = maglev\n", errs, sizeof(errs)), 0);
    assert_string_equal(errs, "t:10: [cluster c2] lb: expected round_robin: not implemented in "
                              "this version, got \"maglev\"");
#else
    /* Cluster sni and identity work now (tls/tls_client.c): in a build with every balancer no
     * key is left that the table refuses. */
    (void)errs;
    skip();
#endif
}

static void test_a_bad_value_is_reported_once_as_bad(void **state)
{
    char errs[1024];
    (void)state;

    assert_int_not_equal(
        load("[route r2]\nlistener = l\nto = c\nretries = lots\n", errs, sizeof(errs)), 0);
    assert_non_null(strstr(errs, "t:11: [route r2] retries: expected 0.."));
    assert_null(strstr(errs, "not implemented"));
}

/* [authz] is enforced (proxy/step_authz.c): the section is accepted like any other. */
static void test_authz_is_accepted(void **state)
{
    char errs[1024];
    (void)state;

    assert_int_equal(load("[authz l]\nallow = - -> /a.B/*\ndefault = deny\n", errs, sizeof(errs)),
                     0);
}

static void test_implemented_keys_are_not_in_the_table(void **state)
{
    const char *off = NULL;
    (void)state;

    assert_false(ml_config_unimplemented(ML_K_route_timeout, &off));
    assert_false(ml_config_unimplemented(ML_K_cluster_endpoint, &off));
    assert_false(ml_config_unimplemented(ML_K_node_admin, &off));
    assert_false(ml_config_kind_unimplemented(ML_KIND_CLUSTER));
    assert_false(ml_config_kind_unimplemented(ML_KIND_AUTHZ));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_off_value_is_accepted),
        cmocka_unit_test(test_an_asking_value_is_refused_on_its_line),
        cmocka_unit_test(test_a_bad_value_is_reported_once_as_bad),
        cmocka_unit_test(test_authz_is_accepted),
        cmocka_unit_test(test_implemented_keys_are_not_in_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
