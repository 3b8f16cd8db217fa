/* balance/lb_ring_hash.c: the ring's construction (points by weight, sorted),
 * and what it promises: one key to one host, keys spread by weight, a removed host's keys and
 * only those move, tried hosts passed over, a call without a key drawn by weight. The file is
 * included to read the ring itself; its policy object stands in for the library's. */
#include "../../../runtime/balance/lb_ring_hash.c"

#include "lb_hash_fixture.h"

#include "core/alloc.h"

#include <errno.h>

#define N_KEYS 30000

static void test_ring_gives_each_host_points_by_weight_in_hash_order(void **state)
{
    struct fixture f;
    const struct ring *r;
    unsigned points[3] = {0};

    fixture_setup(&f, HEAD "[cluster c]\nlb = ring_hash\nhash = header:x-user\n"
                           "endpoint = 127.0.0.1:50001 weight=1\n"
                           "endpoint = 127.0.0.1:50002 weight=2\n"
                           "endpoint = 127.0.0.1:50003 weight=3\n");
    assert_ptr_equal(f.cl->lb.ops, &ml_lb_ring_hash);
    r = f.cl->lb.priv;
    for (uint32_t i = 0; i < r->n; i++) {
        points[r->points[i].host]++;
        if (i > 0) {
            assert_true(r->points[i - 1].hash <= r->points[i].hash);
        }
    }
    /* the heaviest host has ML_LB_RING_POINTS_PER_HOST, the others 1/3 and 2/3 of it, rounded */
    assert_int_equal(points[2], ML_LB_RING_POINTS_PER_HOST);
    assert_int_equal(points[1], (2 * ML_LB_RING_POINTS_PER_HOST + 1) / 3);
    assert_int_equal(points[0], (ML_LB_RING_POINTS_PER_HOST + 1) / 3);
    assert_int_equal(r->n, points[0] + points[1] + points[2]);
    fixture_teardown(&f);
}

static void test_ring_sends_a_key_to_one_host_and_spreads_keys_by_weight(void **state)
{
    struct fixture f;
    unsigned hits[3] = {0};
    char key[32];

    fixture_setup(&f, HEAD "[cluster c]\nlb = ring_hash\nhash = header:x-user\n"
                           "endpoint = 127.0.0.1:50001 weight=1\n"
                           "endpoint = 127.0.0.1:50002 weight=2\n"
                           "endpoint = 127.0.0.1:50003 weight=3\n");
    for (unsigned i = 0; i < N_KEYS; i++) {
        int h;

        snprintf(key, sizeof(key), "user-%u", i);
        h = fixture_pick(&f, key, NULL);
        assert_true(h >= 0 && h < 3);
        assert_int_equal(fixture_pick(&f, key, NULL), h);
        hits[h]++;
    }
    /* the arcs' lengths vary around the weights' shares (several percent at 256 points) */
    assert_in_range(hits[0], N_KEYS / 6 - N_KEYS / 25, N_KEYS / 6 + N_KEYS / 25);
    assert_in_range(hits[1], N_KEYS / 3 - N_KEYS / 25, N_KEYS / 3 + N_KEYS / 25);
    assert_in_range(hits[2], N_KEYS / 2 - N_KEYS / 25, N_KEYS / 2 + N_KEYS / 25);
    fixture_teardown(&f);
}

/* One of four hosts removed (a hot apply builds the cluster again without it): its keys go to
 * the others, no other key moves; about a quarter of the keys move. */
static void test_ring_removing_one_of_four_hosts_moves_only_its_keys(void **state)
{
    struct fixture four, three;
    unsigned moved = 0;
    char key[32];

    fixture_setup(&four, HEAD "[cluster c]\nlb = ring_hash\nhash = path\n"
                              "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                              "endpoint = 127.0.0.1:50003\nendpoint = 127.0.0.1:50004\n");
    fixture_setup(&three, HEAD "[cluster c]\nlb = ring_hash\nhash = path\n"
                               "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                               "endpoint = 127.0.0.1:50004\n");
    for (unsigned i = 0; i < N_KEYS; i++) {
        const char *before, *after;

        snprintf(key, sizeof(key), "/svc/M?%u", i);
        before = fixture_addr(&four, fixture_pick(&four, key, NULL));
        after = fixture_addr(&three, fixture_pick(&three, key, NULL));
        if (strcmp(before, "127.0.0.1:50003") != 0) {
            assert_string_equal(before, after);
        } else {
            moved++;
        }
    }
    assert_in_range(moved, N_KEYS / 4 - N_KEYS / 25, N_KEYS / 4 + N_KEYS / 25);
    fixture_teardown(&three);
    fixture_teardown(&four);
}

static void test_ring_passes_over_tried_and_unusable_hosts_to_the_next_point(void **state)
{
    struct fixture f;
    struct ml_lb_tried tried = {0};
    unsigned hits[3] = {0};
    char key[32];

    fixture_setup(&f, HEAD "[cluster c]\nlb = ring_hash\nhash = authority\n"
                           "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                           "endpoint = 127.0.0.1:50003\n");
    ml_lb_tried_add(&tried, 0);
    ml_host_state_set(ml_lb_host(&f.cl->lb, 2), ML_HOST_UNHEALTHY, true);
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "svc-%u.example", i);
        hits[fixture_pick(&f, key, &tried)]++;
    }
    assert_int_equal(hits[1], 1000);
    ml_lb_tried_add(&tried, 1);
    assert_int_equal(fixture_pick(&f, "svc-1.example", &tried), -ENOENT);
    /* back in: the key's own host again, the ring did not change */
    ml_host_state_set(ml_lb_host(&f.cl->lb, 2), ML_HOST_UNHEALTHY, false);
    assert_int_equal(fixture_pick(&f, "svc-1.example", &tried), 2);
    fixture_teardown(&f);
}

/* Without a key (no hash =, or the header absent) a call's host is drawn by weight. */
static void test_ring_without_a_key_draws_hosts_by_weight(void **state)
{
    struct fixture f;
    unsigned hits[2] = {0};

    fixture_setup(&f, HEAD "[cluster c]\nlb = ring_hash\n"
                           "endpoint = 127.0.0.1:50001 weight=1\n"
                           "endpoint = 127.0.0.1:50002 weight=3\n");
    for (unsigned i = 0; i < 40000; i++) {
        hits[fixture_pick(&f, "", NULL)]++;
    }
    /* binomial(40000, 1/4): sd 87; 99.9 %: ± 285 */
    assert_in_range(hits[0], 10000 - 285, 10000 + 285);
    fixture_teardown(&f);
}

/* Each allocation failing in turn (the table's among them): -ENOMEM and nothing left behind. */
static void test_ring_each_failing_allocation_in_balance_new_is_enomem(void **state)
{
    const char *text = HEAD "[cluster c]\nlb = ring_hash\nhash = path\n"
                            "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n";
    struct fixture f;
    uint32_t ids = 0;
    struct ml_balance *b = NULL;
    long fail_at;
    int rv;

    fixture_setup(&f, text);
    for (fail_at = 0;; fail_at++) {
        ml_alloc_fail_after(fail_at);
        rv = ml_balance_new(NULL, f.snap, &ids, &b);
        ml_alloc_fail_after(-1);
        if (rv == 0) {
            break;
        }
        assert_int_equal(rv, -ENOMEM);
        assert_null(b);
    }
    assert_true(fail_at >= 4); /* the balance, the clusters, a pool array, the table */
    ml_balance_free(b);
    fixture_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_gives_each_host_points_by_weight_in_hash_order),
        cmocka_unit_test(test_ring_sends_a_key_to_one_host_and_spreads_keys_by_weight),
        cmocka_unit_test(test_ring_removing_one_of_four_hosts_moves_only_its_keys),
        cmocka_unit_test(test_ring_passes_over_tried_and_unusable_hosts_to_the_next_point),
        cmocka_unit_test(test_ring_without_a_key_draws_hosts_by_weight),
        cmocka_unit_test(test_ring_each_failing_allocation_in_balance_new_is_enomem),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
