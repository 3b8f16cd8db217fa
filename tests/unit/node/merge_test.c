/* node/merge.c: a push made whole with this node's bootstrap, [node] and [fleet], which come from
 * the local file only (runtime/fleet/README.md "Which configuration runs"). The push's own lines
 * keep their numbers (its errors are reported against them), the result checks, and a push that
 * changes a bootstrap key or names another node is refused with lines in the config errors'
 * form. */
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

#define TOKEN_FILE "/tmp/meshlet-merge-test.token"

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

static void same_bootstrap_is_accepted_and_ours_runs(void **state)
{
    char why[256], *text;
    (void)state;
    /* the same values, written otherwise (defaults spelled out, 100ms as 100ms) */
    text = merge(
        "[node]\nid = gw-1\nadmin = off\nlog = info\n[fleet]\nurl = ws://127.0.0.1:9443/fleet\n"
        "insecure = on\n" BODY,
        0, why, sizeof(why));
    assert_non_null(text);
    ml_free(text);
}

static void bootstrap_left_out_is_kept_from_running(void **state)
{
    char why[256], *text;
    (void)state;
    text = merge(BODY, 0, why, sizeof(why));
    assert_non_null(text);
    /* the push's lines come first, unchanged, then ours as they stand */
    assert_memory_equal(text, BODY, strlen(BODY));
    assert_string_equal(text + strlen(BODY), "[node]\nid = gw-1\nadmin = off\n\n"
                                             "[fleet]   ; ours\n"
                                             "url = ws://127.0.0.1:9443/fleet\n"
                                             "insecure = on\n"
                                             "backoff = 100ms..2s\n"
                                             "\n");
    ml_free(text);
}

static void push_node_lines_are_blanked_and_keep_their_numbers(void **state)
{
    char why[256], *text;
    (void)state;
    text = merge("[node]\nadmin = off\n\n" BODY, 0, why, sizeof(why));
    assert_non_null(text);
    assert_memory_equal(text, ";\n;\n;\n" BODY, 6 + strlen(BODY));
    ml_free(text);
}

static void node_header_on_the_last_line(void **state)
{
    char why[256], *text;
    (void)state;
    text = merge(BODY "[node]", 0, why, sizeof(why));
    assert_non_null(text);
    assert_non_null(strstr(text, "50052\n;\n[node]\nid = gw-1\n"));
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
    assert_non_null(strstr(text, "127.0.0.1:50052\n[node]\nid = gw-1\n"));
    ml_free(text);
}

/* The parser skips every blank before a header's '[' ("\r", "\v", "\f" too), so the push's
 * [node] ends at "\r[cluster c]": the cluster must survive the merge (a fuzz find: the merge
 * once read headers its own way, blanked the cluster, and the merged text failed). */
static void push_section_after_node_starts_with_a_carriage_return(void **state)
{
    char why[256], *text;
    (void)state;
    text = merge("[node]\nid = gw-1\n\r[cluster c]\nendpoint = 127.0.0.1:50052\n"
                 "[listener in]\nbind = 127.0.0.1:15001\n[route all]\nlistener = in\nto = c\n",
                 0, why, sizeof(why));
    assert_non_null(text);
    assert_non_null(strstr(text, ";\n;\n\r[cluster c]\nendpoint = 127.0.0.1:50052\n"));
    ml_free(text);
}

static void another_node_is_refused(void **state)
{
    char why[256];
    (void)state;
    assert_null(merge("\n[node]\nid = gw-2\n" BODY, -EPERM, why, sizeof(why)));
    assert_string_equal(why, "push:3: [node] id: expected this node's id \"gw-1\", got \"gw-2\"");
}

/* issue 7: a push could open the admin endpoint to the network, move the access log or state
 * anywhere, repoint the fleet client or downgrade it to ws://. */
static void changed_bootstrap_is_refused_key_by_key_with_its_line(void **state)
{
    char why[1024];
    FILE *f = fopen(TOKEN_FILE, "w");
    (void)state;
    /* admin_remote = on needs a token file that `meshlet check` can read */
    assert_non_null(f);
    fputs("a-token-for-the-merge-test\n", f);
    fclose(f);
    assert_null(merge("[node]\nadmin = 0.0.0.0:15000\nadmin_remote = on\n"
                      "admin_token = " TOKEN_FILE "\n"
                      "access_log = /etc/cron.d/x\nstate_dir = /tmp/elsewhere\n" BODY,
                      -EPERM, why, sizeof(why)));
    assert_string_equal(
        why, "push:2: [node] admin: bootstrap setting, set only in the local file; running "
             "\"off\", got \"0.0.0.0:15000\"\n"
             "push:3: [node] admin_remote: bootstrap setting, set only in the local file; "
             "running \"off\", got \"on\"\n"
             "push:4: [node] admin_token: bootstrap setting, set only in the local file; "
             "running \"\", got \"" TOKEN_FILE "\"\n"
             "push:5: [node] access_log: bootstrap setting, set only in the local file; running "
             "\"stderr\", got \"/etc/cron.d/x\"\n"
             "push:6: [node] state_dir: bootstrap setting, set only in the local file; running "
             "\"/var/lib/meshlet\", got \"/tmp/elsewhere\"");
    assert_null(merge("[fleet]\nurl = ws://10.0.0.9:1/x\ninsecure = on\nbackoff = 100ms..2s\n" BODY,
                      -EPERM, why, sizeof(why)));
    assert_string_equal(why, "push:2: [fleet] url: bootstrap setting, set only in the local "
                             "file; running \"ws://127.0.0.1:9443/fleet\", got "
                             "\"ws://10.0.0.9:1/x\"");
    assert_null(merge("[node]\nlog = debug\n" BODY, -EPERM, why, sizeof(why)));
    assert_non_null(strstr(why, "push:2: [node] log: bootstrap setting"));
}

static void fleet_pushed_to_a_node_without_one_is_refused(void **state)
{
    struct ml_snapshot *running = load("[node]\nid = gw-1\n" BODY);
    struct ml_snapshot *pushed = load("[fleet]\nurl = ws://10.0.0.9:1/x\ninsecure = on\n" BODY);
    char why[512], *text = NULL;
    size_t n;
    (void)state;
    assert_int_equal(ml_node_merge_push(running, pushed, &text, &n, why, sizeof(why)), -EPERM);
    assert_null(text);
    assert_string_equal(why, "push:2: [fleet] url: bootstrap setting, set only in the local "
                             "file; running \"(no [fleet])\", got \"ws://10.0.0.9:1/x\"\n"
                             "push:3: [fleet] insecure: bootstrap setting, set only in the local "
                             "file; running \"(no [fleet])\", got \"on\"");
    ml_snapshot_unref(pushed);
    ml_snapshot_unref(running);
}

static void no_bootstrap_anywhere_runs_as_it_is(void **state)
{
    struct ml_snapshot *running = load(BODY), *pushed = load(BODY);
    char why[64], *text = NULL;
    size_t n;
    (void)state;
    assert_int_equal(ml_node_merge_push(running, pushed, &text, &n, why, sizeof(why)), 0);
    assert_null(text);
    ml_snapshot_unref(pushed);
    ml_snapshot_unref(running);
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
        cmocka_unit_test(same_bootstrap_is_accepted_and_ours_runs),
        cmocka_unit_test(bootstrap_left_out_is_kept_from_running),
        cmocka_unit_test(push_node_lines_are_blanked_and_keep_their_numbers),
        cmocka_unit_test(node_header_on_the_last_line),
        cmocka_unit_test(push_without_final_newline),
        cmocka_unit_test(push_section_after_node_starts_with_a_carriage_return),
        cmocka_unit_test(another_node_is_refused),
        cmocka_unit_test(changed_bootstrap_is_refused_key_by_key_with_its_line),
        cmocka_unit_test(fleet_pushed_to_a_node_without_one_is_refused),
        cmocka_unit_test(no_bootstrap_anywhere_runs_as_it_is),
        cmocka_unit_test(every_allocation_failing_is_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
