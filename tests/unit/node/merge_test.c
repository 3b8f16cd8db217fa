/* node/merge.c: a push made whole with this node's [node] id and [fleet] (runtime/fleet/README.md
 * "Which configuration runs"). What is added keeps the push's own lines where they were (its errors
 * are reported against them), the result checks, and a push naming another node is refused with a
 * line in the config errors' form. */
#include "node/merge.h"

#include "config/errors.h"
#include "config/snapshot.h"
#include "core/alloc.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define BODY                                                                                       \
    "[listener in]\nbind = 127.0.0.1:15001\n\n"                                                    \
    "[route all]\nlistener = in\nto = c\n\n"                                                       \
    "[cluster c]\nendpoint = 127.0.0.1:50052\n"

static const char RUNNING[] = "[node]\nid = gw-1\nadmin = off\n\n"
                              "[fleet]   ; ours\n"
                              "url = ws://127.0.0.1:9443/fleet\n"
                              "insecure = on\n"
                              "backoff = 100ms..2s\n"
                              "\n" BODY;

static struct ml_snapshot *load(const char *text)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, strlen(text), "v", &errs, &s);
    if (rv != 0) {
        ml_config_errors_print(&errs, "test", stderr);
    }
    ml_config_errors_deinit(&errs);
    assert_int_equal(rv, 0);
    return s;
}

/* Merges push into RUNNING; returns the merged text (or NULL: unchanged) and checks it loads
 * with our id and [fleet]. */
static char *merge(const char *push, int want_rv, char *why, size_t cap)
{
    struct ml_snapshot *running = load(RUNNING), *pushed = load(push), *whole;
    char *text = NULL;
    size_t n = 0;

    assert_int_equal(ml_node_merge_push(running, pushed, &text, &n, why, cap), want_rv);
    if (text != NULL) {
        assert_int_equal(strlen(text), n);
        whole = load(text);
        assert_string_equal(whole->node.id, "gw-1");
        assert_true(whole->fleet.present);
        assert_string_equal(whole->fleet.url, "ws://127.0.0.1:9443/fleet");
        ml_snapshot_unref(whole);
    }
    ml_snapshot_unref(pushed);
    ml_snapshot_unref(running);
    return text;
}

static void whole_push_is_kept_as_is(void **state)
{
    char why[256];
    (void)state;
    assert_null(merge("[node]\nid = gw-1\n[fleet]\nurl = ws://10.0.0.1:1/x\ninsecure = on\n" BODY,
                      0, why, sizeof(why)));
}

static void id_and_fleet_are_appended(void **state)
{
    char why[256], *text;
    (void)state;
    text = merge(BODY, 0, why, sizeof(why));
    assert_non_null(text);
    /* the push's lines come first, unchanged, then ours */
    assert_memory_equal(text, BODY, strlen(BODY));
    assert_string_equal(text + strlen(BODY), "[node]\nid = gw-1\n"
                                             "[fleet]   ; ours\n"
                                             "url = ws://127.0.0.1:9443/fleet\n"
                                             "insecure = on\n"
                                             "backoff = 100ms..2s\n"
                                             "\n");
    ml_free(text);
}

static void id_goes_under_the_push_node_header(void **state)
{
    char why[256], *text;
    (void)state;
    text = merge("[node]\nadmin = off\n" BODY, 0, why, sizeof(why));
    assert_non_null(text);
    assert_memory_equal(text, "[node]\nid = gw-1\nadmin = off\n", 29);
    ml_free(text);
}

static void node_header_on_the_last_line(void **state)
{
    char why[256], *text;
    (void)state;
    text = merge(BODY "[node]", 0, why, sizeof(why));
    assert_non_null(text);
    assert_non_null(strstr(text, "[node]\nid = gw-1\n"));
    ml_free(text);
}

static void push_without_final_newline(void **state)
{
    char why[256], *text;
    (void)state;
    text = merge("[listener in]\nbind = 127.0.0.1:15001\n[route all]\nlistener = in\nto = c\n"
                 "[cluster c]\nendpoint = 127.0.0.1:50052",
                 0, why, sizeof(why));
    assert_non_null(text);
    assert_non_null(strstr(text, "127.0.0.1:50052\n[node]\nid = gw-1\n[fleet]"));
    ml_free(text);
}

static void another_node_is_refused(void **state)
{
    char why[256];
    (void)state;
    assert_null(merge("\n[node]\nid = gw-2\n" BODY, -EPERM, why, sizeof(why)));
    assert_string_equal(why,
                        "push:3: [node] id: expected this node's id \"gw-1\", got \"gw-2\"");
}

static void every_allocation_failing_is_enomem(void **state)
{
    struct ml_snapshot *running = load(RUNNING), *pushed = load(BODY);
    char why[64], *text = NULL;
    size_t n;
    (void)state;
    ml_alloc_fail_after(0);
    assert_int_equal(ml_node_merge_push(running, pushed, &text, &n, why, sizeof(why)), -ENOMEM);
    ml_alloc_fail_after(-1);
    assert_null(text);
    ml_snapshot_unref(pushed);
    ml_snapshot_unref(running);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_push_is_kept_as_is),
        cmocka_unit_test(id_and_fleet_are_appended),
        cmocka_unit_test(id_goes_under_the_push_node_header),
        cmocka_unit_test(node_header_on_the_last_line),
        cmocka_unit_test(push_without_final_newline),
        cmocka_unit_test(another_node_is_refused),
        cmocka_unit_test(every_allocation_failing_is_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
