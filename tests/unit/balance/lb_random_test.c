/* balance/lb_random.c: lb = random draws each pick independently, host i with probability
 * weight_i / the weights of the hosts the pick may take. The source is seeded, so every run
 * draws the same sequence; the bounds are still the binomial 99.9 % intervals, so that any
 * other seed would pass as well (almost always). */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "balance/host.h"
#include "balance/lb.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "core/rand.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "balance_fixture.h"

/* Picks per distribution test: enough for the 99.9 % interval to be about 1 % of each count. */
#define N_PICKS 60000
/* z of a two-sided 99.9 % normal interval. */
#define Z_999 3.29

#define HEAD                                                                                       \
    "[listener l]\nbind = 127.0.0.1:15001\n"                                                       \
    "[route r]\nlistener = l\nto = c\n"

/* count lies in the 99.9 % interval of a binomial(n, p). */
static void assert_binomial(unsigned count, unsigned n, double p)
{
    double mean = n * p, var = n * p * (1 - p), d = count - mean;

    /* |d| <= z·sd, squared (no libm in the link) */
    if (d * d > Z_999 * Z_999 * var) {
        fail_msg("%u picks, expected %.0f, sd %.1f", count, mean, var);
    }
}

static void test_random_spreads_picks_by_weight_within_binomial_bounds(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nlb = random\n"
                                      "endpoint = 127.0.0.1:50001 weight=1\n"
                                      "endpoint = 127.0.0.1:50002 weight=2\n"
                                      "endpoint = 127.0.0.1:50003 weight=3\n");
    struct ml_rand rand;
    struct ml_lb_pick_ctx ctx = {.rand = &rand};
    unsigned hits[3] = {0};
    uint32_t ids = 0;
    struct ml_balance *b;
    struct ml_cluster *cl;

    ml_rand_seed(&rand, 8);
    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    assert_ptr_equal(cl->lb.ops, &ml_lb_random);
    assert_string_equal(cl->lb.ops->name, "random");
    for (unsigned i = 0; i < N_PICKS; i++) {
        int h = cl->lb.ops->pick(&cl->lb, &ctx);

        assert_true(h >= 0 && h < 3);
        hits[h]++;
    }
    assert_binomial(hits[0], N_PICKS, 1.0 / 6);
    assert_binomial(hits[1], N_PICKS, 2.0 / 6);
    assert_binomial(hits[2], N_PICKS, 3.0 / 6);
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_random_with_the_same_seed_picks_the_same_sequence(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nlb = random\n"
                                      "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                                      "endpoint = 127.0.0.1:50003\nendpoint = 127.0.0.1:50004\n");
    struct ml_rand r1, r2;
    struct ml_lb_pick_ctx c1 = {.rand = &r1}, c2 = {.rand = &r2};
    uint32_t ids = 0;
    struct ml_balance *b;
    struct ml_cluster *cl;

    ml_rand_seed(&r1, 12345);
    ml_rand_seed(&r2, 12345);
    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    for (unsigned i = 0; i < 1000; i++) {
        assert_int_equal(cl->lb.ops->pick(&cl->lb, &c1), cl->lb.ops->pick(&cl->lb, &c2));
    }
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

/* Hosts the call tried and hosts not usable are never drawn while another one is; the rest
 * share the picks by their weights. */
static void test_random_skips_tried_and_unusable_hosts(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nlb = random\n"
                                      "endpoint = 127.0.0.1:50001 weight=5\n"
                                      "endpoint = 127.0.0.1:50002 weight=1\n"
                                      "endpoint = 127.0.0.1:50003 weight=1\n"
                                      "endpoint = 127.0.0.1:50004 weight=1\n");
    struct ml_lb_tried tried = {0};
    struct ml_rand rand;
    struct ml_lb_pick_ctx ctx = {.rand = &rand, .tried = &tried};
    unsigned hits[4] = {0};
    uint32_t ids = 0;
    struct ml_balance *b;
    struct ml_cluster *cl;

    ml_rand_seed(&rand, 99);
    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    ml_lb_tried_add(&tried, 0);
    ml_host_state_set(ml_lb_host(&cl->lb, 3), ML_HOST_EJECTED, true);
    for (unsigned i = 0; i < N_PICKS; i++) {
        hits[cl->lb.ops->pick(&cl->lb, &ctx)]++;
    }
    assert_int_equal(hits[0], 0);
    assert_int_equal(hits[3], 0);
    assert_binomial(hits[1], N_PICKS, 0.5);
    /* nothing left: the policy says so, ml_cluster_pick then forgets the tried set */
    ml_lb_tried_add(&tried, 1);
    ml_lb_tried_add(&tried, 2);
    assert_int_equal(cl->lb.ops->pick(&cl->lb, &ctx), -ENOENT);
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_spreads_picks_by_weight_within_binomial_bounds),
        cmocka_unit_test(test_random_with_the_same_seed_picks_the_same_sequence),
        cmocka_unit_test(test_random_skips_tried_and_unusable_hosts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
