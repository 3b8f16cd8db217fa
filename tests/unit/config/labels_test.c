/* [node] labels (config/README.md): KEY=VALUE pairs, each part 1..31 of [A-Za-z0-9._-], at most
 * 16, each key once; kept one by one (for the fleet Hello) and as one canonical text (which a
 * push's bootstrap check compares, so a push may repeat them but not change them). Bad input is
 * an error at its line and nothing is loaded. */
#include "config/errors.h"
#include "config/snapshot.h"
#include "node/merge.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Loads text: 0 and *out, or the error and the first error line in why. */
static int load(const char *text, struct ml_snapshot **out, char *why, size_t cap)
{
    struct ml_config_errors errs;
    int rv;

    *out = NULL;
    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, strlen(text), "v", &errs, out);
    why[0] = '\0';
    if (rv != 0) {
        ml_config_errors_join(&errs, "t", why, cap);
    }
    ml_config_errors_deinit(&errs);
    return rv;
}

static void test_labels_are_kept_one_by_one_and_canonical(void **state)
{
    struct ml_snapshot *s;
    char why[1024];

    assert_int_equal(load("[node]\nid = gw-1\nlabels =  region=eu-west.1 ,ring=canary,  hw=rpi_4\n",
                          &s, why, sizeof(why)),
                     0);
    assert_int_equal(s->node.n_labels, 3);
    assert_string_equal(s->node.label[0], "region=eu-west.1");
    assert_string_equal(s->node.label[1], "ring=canary");
    assert_string_equal(s->node.label[2], "hw=rpi_4");
    assert_string_equal(s->node.labels, "region=eu-west.1,ring=canary,hw=rpi_4");
    ml_snapshot_unref(s);

    assert_int_equal(load("[node]\nid = gw-1\n", &s, why, sizeof(why)), 0);
    assert_int_equal(s->node.n_labels, 0);
    assert_null(s->node.labels);
    ml_snapshot_unref(s);
}

static void test_bad_labels_are_refused_at_their_line(void **state)
{
    static const char *const bad[] = {
        "labels = region\n",                               /* no value */
        "labels = =eu\n",                                  /* no key */
        "labels = region=\n",                              /* empty value */
        "labels = reg ion=eu\n",                           /* a space */
        "labels = region=eu/west\n",                       /* a slash: it names a file */
        "labels = region=eu,region=us\n",                  /* a key twice */
        "labels = a=1,,b=2\n",                             /* an empty item */
        "labels = k=0123456789012345678901234567890123\n", /* 34 > 31 */
        "labels = \n",
        "labels = a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1,j=1,k=1,l=1,m=1,n=1,o=1,p=1,q=1\n", /* 17 */
    };
    char text[512], why[1024];
    struct ml_snapshot *s;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "[node]\nid = gw-1\n%s", bad[i]);
        assert_int_not_equal(load(text, &s, why, sizeof(why)), 0);
        assert_null(s);
        if (strstr(why, "t:3: [node] labels: expected KEY=VALUE") == NULL) {
            fail_msg("%s: %s", bad[i], why);
        }
    }
    /* 16 is the bound, and 31 bytes a part */
    assert_int_equal(load("[node]\nid = gw-1\nlabels = a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1,j=1,"
                          "k=1,l=1,m=1,n=1,o=1,p=1\n",
                          &s, why, sizeof(why)),
                     0);
    assert_int_equal(s->node.n_labels, 16);
    ml_snapshot_unref(s);
    assert_int_equal(load("[node]\nid = gw-1\nlabels = k=0123456789012345678901234567890\n", &s,
                          why, sizeof(why)),
                     0);
    ml_snapshot_unref(s);
}

static void test_a_push_may_repeat_labels_but_not_change_them(void **state)
{
    struct ml_snapshot *running, *same, *other;
    char why[2048], *text = NULL;
    size_t n = 0;

    assert_int_equal(load("[node]\nid = gw-1\nadmin = off\nlabels = ring=canary, hw=x\n", &running,
                          why, sizeof(why)),
                     0);
    assert_int_equal(load("[node]\nlabels = ring=canary,hw=x\n", &same, why, sizeof(why)), 0);
    assert_int_equal(load("[node]\nlabels = ring=main\n", &other, why, sizeof(why)), 0);
    assert_int_equal(ml_node_merge_push(running, same, &text, &n, why, sizeof(why)), 0);
    free(text);
    text = NULL;
    assert_int_not_equal(ml_node_merge_push(running, other, &text, &n, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "[node] labels: bootstrap setting"));
    assert_non_null(strstr(why, "running \"ring=canary,hw=x\", got \"ring=main\""));
    ml_snapshot_unref(running);
    ml_snapshot_unref(same);
    ml_snapshot_unref(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_are_kept_one_by_one_and_canonical),
        cmocka_unit_test(test_bad_labels_are_refused_at_their_line),
        cmocka_unit_test(test_a_push_may_repeat_labels_but_not_change_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
