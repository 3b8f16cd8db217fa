/* balance/lb_least_request.c: lb = least_request draws two hosts by weight and gives the call to
 * the one with fewer active calls per unit of weight. Idle, it spreads calls like lb = random
 * (binomial 99.9 % bounds, seeded); a loaded host loses every draw it is in; weights scale the
 * load compared; tried and unusable hosts are never drawn while another host is left. */
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

struct fixture {
    struct ml_snapshot *snap;
    struct ml_balance *b;
    struct ml_cluster *cl;
};

static void setup(struct fixture *f, const char *text)
{
    uint32_t ids = 0;

    f->snap = load(text);
    assert_int_equal(ml_balance_new(NULL, f->snap, &ids, &f->b), 0);
    f->cl = ml_balance_cluster(f->b, 0);
    assert_ptr_equal(f->cl->lb.ops, &ml_lb_least_request);
}

static void teardown(struct fixture *f)
{
    for (uint32_t h = 0; h < ml_lb_n_hosts(&f->cl->lb); h++) {
        ml_lb_host(&f->cl->lb, h)->counters.active = 0;
    }
    ml_balance_free(f->b);
    ml_snapshot_unref(f->snap);
}

static void assert_binomial(unsigned count, unsigned n, double p)
{
    double mean = n * p, var = n * p * (1 - p), d = count - mean;

    if (d * d > Z_999 * Z_999 * var) {
        fail_msg("%u picks, expected %.0f, variance %.1f", count, mean, var);
    }
}

static void test_least_request_idle_spreads_picks_by_weight(void **state)
{
    struct fixture f;
    struct ml_rand rand;
    struct ml_lb_pick_ctx ctx = {.rand = &rand};
    unsigned hits[3] = {0};

    setup(&f, HEAD "[cluster c]\nlb = least_request\n"
                   "endpoint = 127.0.0.1:50001 weight=1\n"
                   "endpoint = 127.0.0.1:50002 weight=2\n"
                   "endpoint = 127.0.0.1:50003 weight=3\n");
    ml_rand_seed(&rand, 8);
    assert_string_equal(f.cl->lb.ops->name, "least_request");
    for (unsigned i = 0; i < N_PICKS; i++) {
        hits[f.cl->lb.ops->pick(&f.cl->lb, &ctx)]++;
    }
    assert_binomial(hits[0], N_PICKS, 1.0 / 6);
    assert_binomial(hits[1], N_PICKS, 2.0 / 6);
    assert_binomial(hits[2], N_PICKS, 3.0 / 6);
    teardown(&f);
}

/* A host with calls in flight loses every pair it is drawn in while the others are idle: with
 * two hosts or more left it gets no pick at all, and the idle ones share them. */
static void test_least_request_a_busy_host_loses_every_draw(void **state)
{
    struct fixture f;
    struct ml_rand rand;
    struct ml_lb_pick_ctx ctx = {.rand = &rand};
    unsigned hits[3] = {0};

    setup(&f, HEAD "[cluster c]\nlb = least_request\n"
                   "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                   "endpoint = 127.0.0.1:50003\n");
    ml_rand_seed(&rand, 5);
    ml_lb_host(&f.cl->lb, 1)->counters.active = 4;
    for (unsigned i = 0; i < N_PICKS; i++) {
        hits[f.cl->lb.ops->pick(&f.cl->lb, &ctx)]++;
    }
    assert_int_equal(hits[1], 0);
    assert_binomial(hits[0], N_PICKS, 0.5);
    teardown(&f);
}

/* The load compared is active calls per unit of weight: 2 calls on a weight-3 host is less
 * than 1 call on a weight-1 host, so the heavy host wins every pair. */
static void test_least_request_compares_active_calls_per_weight(void **state)
{
    struct fixture f;
    struct ml_rand rand;
    struct ml_lb_pick_ctx ctx = {.rand = &rand};

    setup(&f, HEAD "[cluster c]\nlb = least_request\n"
                   "endpoint = 127.0.0.1:50001 weight=3\n"
                   "endpoint = 127.0.0.1:50002 weight=1\n");
    ml_rand_seed(&rand, 1);
    ml_lb_host(&f.cl->lb, 0)->counters.active = 2;
    ml_lb_host(&f.cl->lb, 1)->counters.active = 1;
    for (unsigned i = 0; i < 1000; i++) {
        assert_int_equal(f.cl->lb.ops->pick(&f.cl->lb, &ctx), 0);
    }
    /* 4 per 3 is more than 1 per 1: now the light host wins */
    ml_lb_host(&f.cl->lb, 0)->counters.active = 4;
    for (unsigned i = 0; i < 1000; i++) {
        assert_int_equal(f.cl->lb.ops->pick(&f.cl->lb, &ctx), 1);
    }
    teardown(&f);
}

static void test_least_request_skips_tried_and_unusable_hosts(void **state)
{
    struct fixture f;
    struct ml_lb_tried tried = {0};
    struct ml_rand rand;
    struct ml_lb_pick_ctx ctx = {.rand = &rand, .tried = &tried};
    unsigned hits[4] = {0};

    setup(&f, HEAD "[cluster c]\nlb = least_request\n"
                   "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                   "endpoint = 127.0.0.1:50003\nendpoint = 127.0.0.1:50004\n");
    ml_rand_seed(&rand, 3);
    ml_lb_tried_add(&tried, 0);
    ml_host_state_set(ml_lb_host(&f.cl->lb, 3), ML_HOST_EJECTED, true);
    /* the tried host is the idle one: it is skipped all the same */
    ml_lb_host(&f.cl->lb, 1)->counters.active = 1;
    ml_lb_host(&f.cl->lb, 2)->counters.active = 1;
    for (unsigned i = 0; i < N_PICKS; i++) {
        hits[f.cl->lb.ops->pick(&f.cl->lb, &ctx)]++;
    }
    assert_int_equal(hits[0], 0);
    assert_int_equal(hits[3], 0);
    assert_binomial(hits[1], N_PICKS, 0.5);
    /* one host left: it is the pick; none left: -ENOENT */
    ml_lb_tried_add(&tried, 1);
    assert_int_equal(f.cl->lb.ops->pick(&f.cl->lb, &ctx), 2);
    ml_lb_tried_add(&tried, 2);
    assert_int_equal(f.cl->lb.ops->pick(&f.cl->lb, &ctx), -ENOENT);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_request_idle_spreads_picks_by_weight),
        cmocka_unit_test(test_least_request_a_busy_host_loses_every_draw),
        cmocka_unit_test(test_least_request_compares_active_calls_per_weight),
        cmocka_unit_test(test_least_request_skips_tried_and_unusable_hosts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
