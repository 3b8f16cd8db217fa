/* config/schema.c and schema.def: the one table of INI keys, its lookups, and the promise that
 * config/README.md documents every key of it. */
#include "config/defaults.h"
#include "config/schema.h"
#include "config/snapshot-t.h"
#include "meshlet_config.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/unimplemented.h"

static const char *const kind_names[ML_KIND_COUNT] = {"node",  "fleet",   "listener",
                                                      "route", "cluster", "authz"};

/* ---- kinds ---------------------------------------------------------------------------------- */

static void test_kind_parse_knows_the_six_kinds_by_exact_name(void **state)
{
    for (int k = 0; k < ML_KIND_COUNT; k++) {
        assert_int_equal(ml_schema_kind_parse(kind_names[k], strlen(kind_names[k])), k);
        assert_string_equal(ml_schema_kind_name(k), kind_names[k]);
    }
    assert_int_equal(ml_schema_kind_parse("nod", 3), -1);
    assert_int_equal(ml_schema_kind_parse("nodes", 5), -1);
    assert_int_equal(ml_schema_kind_parse("Node", 4), -1);
    assert_int_equal(ml_schema_kind_parse("", 0), -1);
    assert_int_equal(ml_schema_kind_parse("cluster greeter", 7), ML_KIND_CLUSTER); /* by length */
}

static void test_only_node_and_fleet_take_no_name(void **state)
{
    assert_false(ml_schema_kind_named(ML_KIND_NODE));
    assert_false(ml_schema_kind_named(ML_KIND_FLEET));
    assert_true(ml_schema_kind_named(ML_KIND_LISTENER));
    assert_true(ml_schema_kind_named(ML_KIND_ROUTE));
    assert_true(ml_schema_kind_named(ML_KIND_CLUSTER));
    assert_true(ml_schema_kind_named(ML_KIND_AUTHZ));
}

static void test_kind_maximums_are_the_kconfig_limits(void **state)
{
    assert_int_equal(ml_schema_kind_max(ML_KIND_NODE), 1);
    assert_int_equal(ml_schema_kind_max(ML_KIND_FLEET), 1);
    assert_int_equal(ml_schema_kind_max(ML_KIND_LISTENER), CONFIG_ML_MAX_LISTENERS);
    assert_int_equal(ml_schema_kind_max(ML_KIND_ROUTE), CONFIG_ML_MAX_ROUTES);
    assert_int_equal(ml_schema_kind_max(ML_KIND_CLUSTER), CONFIG_ML_MAX_CLUSTERS);
    assert_int_equal(ml_schema_kind_max(ML_KIND_AUTHZ), CONFIG_ML_MAX_LISTENERS);
    assert_string_equal(ml_schema_kind_max_symbol(ML_KIND_ROUTE), "CONFIG_ML_MAX_ROUTES");
}

/* ---- the key table -------------------------------------------------------------------------- */

static void test_every_key_is_found_by_its_kind_and_name(void **state)
{
    for (int i = 0; i < ML_K_COUNT; i++) {
        const struct ml_key_def *k = &ml_schema_keys[i];
        assert_int_equal(ml_schema_key_find(k->kind, k->name), i);
    }
    assert_int_equal(ml_schema_key_find(ML_KIND_CLUSTER, "greeter"), -1);
    assert_int_equal(ml_schema_key_find(ML_KIND_CLUSTER, "bind"), -1); /* a listener key */
    assert_int_equal(ml_schema_key_find(ML_KIND_LISTENER, "Bind"), -1);
    assert_int_equal(ml_schema_key_find(ML_KIND_LISTENER, ""), -1);
    assert_int_equal(ml_schema_key_find(ML_KIND_NODE, "admin"), ML_K_node_admin);
}

static void test_key_names_are_lower_snake_case_and_unique_per_kind(void **state)
{
    for (int i = 0; i < ML_K_COUNT; i++) {
        const char *n = ml_schema_keys[i].name;
        assert_true(strlen(n) >= 2 && strlen(n) <= 32); /* the suggester bounds names at 32 */
        for (const char *p = n; *p; p++) {
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        }
        for (int j = i + 1; j < ML_K_COUNT; j++) {
            if (ml_schema_keys[j].kind == ml_schema_keys[i].kind) {
                assert_string_not_equal(ml_schema_keys[j].name, n);
            }
        }
    }
}

static void test_every_key_has_help_and_a_sane_range(void **state)
{
    for (int i = 0; i < ML_K_COUNT; i++) {
        const struct ml_key_def *k = &ml_schema_keys[i];
        assert_non_null(k->help);
        assert_true(strlen(k->help) > 10);
        assert_true(k->min <= k->max);
        assert_true(k->kind < ML_KIND_COUNT);
    }
}

static void test_required_and_repeatable_keys_have_no_default(void **state)
{
    int n_required = 0;

    for (int i = 0; i < ML_K_COUNT; i++) {
        const struct ml_key_def *k = &ml_schema_keys[i];
        if (k->flags & (ML_KF_REQUIRED | ML_KF_REPEATABLE)) {
            assert_null(k->dflt);
        }
        assert_false((k->flags & ML_KF_REQUIRED) && (k->flags & ML_KF_REPEATABLE));
        n_required += (k->flags & ML_KF_REQUIRED) != 0;
    }
    /* config/README.md: fleet url, listener bind, route listener and to */
    assert_int_equal(n_required, 4);
    assert_true(ml_schema_keys[ML_K_fleet_url].flags & ML_KF_REQUIRED);
    assert_true(ml_schema_keys[ML_K_listener_bind].flags & ML_KF_REQUIRED);
    assert_true(ml_schema_keys[ML_K_route_listener].flags & ML_KF_REQUIRED);
    assert_true(ml_schema_keys[ML_K_route_to].flags & ML_KF_REQUIRED);
}

static void test_repeatable_keys_are_the_documented_ones(void **state)
{
    static const int repeatable[] = {ML_K_route_header, ML_K_cluster_endpoint, ML_K_authz_allow,
                                     ML_K_authz_deny};
    int n = 0;

    for (int i = 0; i < ML_K_COUNT; i++) {
        n += (ml_schema_keys[i].flags & ML_KF_REPEATABLE) != 0;
    }
    assert_int_equal(n, 4);
    for (size_t i = 0; i < sizeof(repeatable) / sizeof(repeatable[0]); i++) {
        assert_true(ml_schema_keys[repeatable[i]].flags & ML_KF_REPEATABLE);
    }
}

static void test_zero_off_is_only_on_durations(void **state)
{
    for (int i = 0; i < ML_K_COUNT; i++) {
        const struct ml_key_def *k = &ml_schema_keys[i];
        if (k->flags & ML_KF_ZERO_OFF) {
            assert_int_equal(k->type, ML_KT_DURATION);
        }
    }
}

static void test_kconfig_bounds_reach_the_table(void **state)
{
    assert_int_equal(ml_schema_keys[ML_K_listener_max_connections].max, CONFIG_ML_MAX_CONNECTIONS);
    assert_int_equal(ml_schema_keys[ML_K_listener_max_streams].max, CONFIG_ML_H2_MAX_STREAMS);
    assert_int_equal(ml_schema_keys[ML_K_cluster_max_connections].max,
                     CONFIG_ML_MAX_UPSTREAM_CONNECTIONS);
    assert_int_equal(ml_schema_keys[ML_K_route_retries].max, CONFIG_ML_MAX_RETRIES);
}

/* ---- enum choices --------------------------------------------------------------------------- */

static void test_enum_keys_have_choices_and_their_default_is_one(void **state)
{
    for (int i = 0; i < ML_K_COUNT; i++) {
        const struct ml_key_def *k = &ml_schema_keys[i];
        if (k->type == ML_KT_ENUM) {
            assert_non_null(ml_schema_key_choices(k));
            assert_non_null(k->dflt);
            assert_true(ml_schema_choice_index(k, k->dflt) >= 0);
        } else {
            assert_null(ml_schema_key_choices(k));
            assert_int_equal(ml_schema_choice_index(k, "off"), -1);
        }
    }
}

static void test_choice_positions_are_the_snapshot_enum_values(void **state)
{
    const struct ml_key_def *lb = &ml_schema_keys[ML_K_cluster_lb];
    const struct ml_key_def *ltls = &ml_schema_keys[ML_K_listener_tls];
    const struct ml_key_def *ctls = &ml_schema_keys[ML_K_cluster_tls];
    const struct ml_key_def *hc = &ml_schema_keys[ML_K_cluster_health_check];
    const struct ml_key_def *dflt = &ml_schema_keys[ML_K_authz_default];
    const struct ml_key_def *log = &ml_schema_keys[ML_K_node_log];

    assert_int_equal(ml_schema_choice_index(lb, "round_robin"), ML_CFG_LB_ROUND_ROBIN);
    assert_int_equal(ml_schema_choice_index(lb, "least_request"), ML_CFG_LB_LEAST_REQUEST);
    assert_int_equal(ml_schema_choice_index(lb, "random"), ML_CFG_LB_RANDOM);
    assert_int_equal(ml_schema_choice_index(lb, "ring_hash"), ML_CFG_LB_RING_HASH);
    assert_int_equal(ml_schema_choice_index(lb, "maglev"), ML_CFG_LB_MAGLEV);
    assert_int_equal(ml_schema_choice_index(ltls, "off"), ML_CFG_TLS_OFF);
    assert_int_equal(ml_schema_choice_index(ltls, "on"), ML_CFG_TLS_ON);
    assert_int_equal(ml_schema_choice_index(ctls, "mtls"), ML_CFG_TLS_MTLS);
    assert_int_equal(ml_schema_choice_index(hc, "off"), ML_CFG_HEALTH_OFF);
    assert_int_equal(ml_schema_choice_index(hc, "tcp"), ML_CFG_HEALTH_TCP);
    assert_int_equal(ml_schema_choice_index(hc, "grpc"), ML_CFG_HEALTH_GRPC);
    assert_int_equal(ml_schema_choice_index(dflt, "deny"), 0);  /* default_allow = 0 */
    assert_int_equal(ml_schema_choice_index(dflt, "allow"), 1); /* default_allow = 1 */
    assert_int_equal(ml_schema_choice_index(log, "error"), 0);
    assert_int_equal(ml_schema_choice_index(log, "debug"), 3);
}

static void test_choice_index_matches_whole_choices_only(void **state)
{
    const struct ml_key_def *lb = &ml_schema_keys[ML_K_cluster_lb];

    assert_int_equal(ml_schema_choice_index(lb, "round"), -1);
    assert_int_equal(ml_schema_choice_index(lb, "round_robin|least_request"), -1);
    assert_int_equal(ml_schema_choice_index(lb, "ROUND_ROBIN"), -1);
    assert_int_equal(ml_schema_choice_index(lb, ""), -1);
    assert_int_equal(ml_schema_choice_index(lb, "maglevx"), -1);
}

/* ---- did you mean --------------------------------------------------------------------------- */

static void test_suggest_names_the_key_within_two_edits(void **state)
{
    assert_string_equal(ml_schema_key_suggest(ML_KIND_NODE, "admn"), "admin");
    assert_string_equal(ml_schema_key_suggest(ML_KIND_NODE, "logg"), "log");
    assert_string_equal(ml_schema_key_suggest(ML_KIND_NODE, "Log"), "log");
    assert_string_equal(ml_schema_key_suggest(ML_KIND_LISTENER, "max_conections"),
                        "max_connections");
    assert_string_equal(ml_schema_key_suggest(ML_KIND_CLUSTER, "endpoints"), "endpoint");
    assert_string_equal(ml_schema_key_suggest(ML_KIND_CLUSTER, "health_chek"), "health_check");
    assert_string_equal(ml_schema_key_suggest(ML_KIND_ROUTE, "retrys"), "retries");
}

static void test_suggest_nothing_when_nothing_is_close(void **state)
{
    char longname[200];

    assert_null(ml_schema_key_suggest(ML_KIND_NODE, "zzzzzzzz"));
    assert_null(ml_schema_key_suggest(ML_KIND_NODE, "loglevel"));
    assert_null(ml_schema_key_suggest(ML_KIND_CLUSTER, "bind")); /* keys of other kinds: no */
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_null(ml_schema_key_suggest(ML_KIND_CLUSTER, longname));
}

/* ---- meshlet check --defaults ---------------------------------------------------------------- */

static char *defaults_text(void)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);

    assert_non_null(f);
    ml_config_print_defaults(f);
    fclose(f);
    return text;
}

static void test_defaults_printout_has_every_kind_and_key(void **state)
{
    char *text = defaults_text();
    char want[128];

    assert_non_null(strstr(text, "\n[node]\n"));
    assert_non_null(strstr(text, "\n[fleet]\n"));
    assert_non_null(strstr(text, "\n[listener NAME]\n"));
    assert_non_null(strstr(text, "\n[route NAME]\n"));
    assert_non_null(strstr(text, "\n[cluster NAME]\n"));
    assert_non_null(strstr(text, "\n[authz NAME]\n"));
    for (int i = 0; i < ML_K_COUNT; i++) {
        const struct ml_key_def *k = &ml_schema_keys[i];
        const char *off = NULL;
        if ((ml_config_unimplemented(i, &off) && off == NULL) ||
            ml_config_kind_unimplemented(k->kind)) {
            snprintf(want, sizeof(want), "\n;%s =", k->name); /* refused whatever its value */
        } else if (k->dflt != NULL && k->dflt[0] != '\0') {
            snprintf(want, sizeof(want), "\n%s = %s\n", k->name, k->dflt);
        } else if (k->dflt != NULL || (k->kind == ML_KIND_NODE && strcmp(k->name, "id") == 0)) {
            snprintf(want, sizeof(want), "\n%s =", k->name);
        } else {
            snprintf(want, sizeof(want), "\n;%s =", k->name);
        }
        if (strstr(text, want) == NULL) {
            fail_msg("--defaults has no line \"%s\"", want + 1);
        }
    }
    free(text);
}

static void test_defaults_printout_marks_required_keys(void **state)
{
    char *text = defaults_text();

    assert_non_null(strstr(text, ";url =                ; REQUIRED\n"));
    assert_non_null(strstr(text, ";bind =                ; REQUIRED\n"));
    assert_non_null(strstr(text, ";to =                ; REQUIRED\n"));
    free(text);
}

/* ---- config/README.md documents every key --------------------------------------------------- */

static char *read_readme(void)
{
    const char *root = getenv("ML_TEST_SOURCE_DIR");
    char path[4096];
    char *text;
    FILE *f;
    long n;

    if (root != NULL) {
        snprintf(path, sizeof(path), "%s/config/README.md", root);
    } else {
        /* ctest sets ML_TEST_SOURCE_DIR; run by hand, find the tree from this file's path */
        static const char self[] = "tests/unit/config/schema_test.c";
        size_t fn = strlen(__FILE__);
        assert_true(fn >= sizeof(self) - 1 &&
                    strcmp(__FILE__ + fn - (sizeof(self) - 1), self) == 0);
        snprintf(path, sizeof(path), "%.*sconfig/README.md", (int)(fn - (sizeof(self) - 1)),
                 __FILE__);
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s (set ML_TEST_SOURCE_DIR to the source tree)", path);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* The part of the README under "### `[KIND" up to the next heading; NULL when there is none. */
static const char *kind_section(const char *text, const char *kind, size_t *len)
{
    char heading[64];
    const char *start, *end;

    snprintf(heading, sizeof(heading), "\n### `[%s", kind);
    start = strstr(text, heading);
    if (start == NULL) {
        return NULL;
    }
    start += 1;
    end = strstr(start + 1, "\n#");
    *len = end ? (size_t)(end - start) : strlen(start);
    return start;
}

/* true when the section holds a table row "| `key` |". */
static bool has_row(const char *sec, size_t len, const char *key)
{
    char row[64];
    size_t rn = (size_t)snprintf(row, sizeof(row), "\n| `%s` |", key);

    for (const char *p = sec; p + rn <= sec + len; p++) {
        if (memcmp(p, row, rn) == 0) {
            return true;
        }
    }
    return false;
}

static void test_readme_documents_every_key_under_its_kind(void **state)
{
    char *text = read_readme();
    int missing = 0;

    for (int i = 0; i < ML_K_COUNT; i++) {
        const struct ml_key_def *k = &ml_schema_keys[i];
        size_t len;
        const char *sec = kind_section(text, kind_names[k->kind], &len);
        if (sec == NULL) {
            print_error("config/README.md: no \"### `[%s\" heading\n", kind_names[k->kind]);
            missing++;
        } else if (!has_row(sec, len, k->name)) {
            print_error("config/README.md: no row \"| `%s` |\" under [%s]\n", k->name,
                        kind_names[k->kind]);
            missing++;
        }
    }
    free(text);
    assert_int_equal(missing, 0);
}

static void test_readme_documents_no_key_the_table_lacks(void **state)
{
    char *text = read_readme();
    int extra = 0;

    for (int kind = 0; kind < ML_KIND_COUNT; kind++) {
        size_t len;
        const char *sec = kind_section(text, kind_names[kind], &len);
        if (sec == NULL) {
            continue; /* reported by the test above */
        }
        for (const char *p = sec; (p = strstr(p, "\n| `")) != NULL && p < sec + len; p++) {
            char key[64];
            const char *b = p + 4, *e = strchr(b, '`');
            if (e == NULL || (size_t)(e - b) >= sizeof(key)) {
                continue;
            }
            memcpy(key, b, (size_t)(e - b));
            key[e - b] = '\0';
            if (ml_schema_key_find(kind, key) < 0) {
                print_error("config/README.md: [%s] documents \"%s\", not in schema.def\n",
                            kind_names[kind], key);
                extra++;
            }
        }
    }
    free(text);
    assert_int_equal(extra, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_parse_knows_the_six_kinds_by_exact_name),
        cmocka_unit_test(test_only_node_and_fleet_take_no_name),
        cmocka_unit_test(test_kind_maximums_are_the_kconfig_limits),
        cmocka_unit_test(test_every_key_is_found_by_its_kind_and_name),
        cmocka_unit_test(test_key_names_are_lower_snake_case_and_unique_per_kind),
        cmocka_unit_test(test_every_key_has_help_and_a_sane_range),
        cmocka_unit_test(test_required_and_repeatable_keys_have_no_default),
        cmocka_unit_test(test_repeatable_keys_are_the_documented_ones),
        cmocka_unit_test(test_zero_off_is_only_on_durations),
        cmocka_unit_test(test_kconfig_bounds_reach_the_table),
        cmocka_unit_test(test_enum_keys_have_choices_and_their_default_is_one),
        cmocka_unit_test(test_choice_positions_are_the_snapshot_enum_values),
        cmocka_unit_test(test_choice_index_matches_whole_choices_only),
        cmocka_unit_test(test_suggest_names_the_key_within_two_edits),
        cmocka_unit_test(test_suggest_nothing_when_nothing_is_close),
        cmocka_unit_test(test_defaults_printout_has_every_kind_and_key),
        cmocka_unit_test(test_defaults_printout_marks_required_keys),
        cmocka_unit_test(test_readme_documents_every_key_under_its_kind),
        cmocka_unit_test(test_readme_documents_no_key_the_table_lacks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
