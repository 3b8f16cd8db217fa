/* balance/lb_maglev.c: the lookup table's construction (every entry filled, shares by weight,
 * rebuilt over the usable hosts) and what it promises: one key to one host, about 1/N of the
 * table moves when one of N hosts goes, tried hosts passed over, a call without a key drawn by
 * weight. The file is included to read the table itself; its policy object stands in for the
 * library's. */
#include "../../../runtime/balance/lb_maglev.c"

#include "lb_hash_fixture.h"

#include "core/alloc.h"

#include <errno.h>

#define N_KEYS 30000

static void count_entries(const struct maglev *m, unsigned *counts, uint32_t n)
{
    memset(counts, 0, n * sizeof(counts[0]));
    for (uint32_t i = 0; i < ML_LB_MAGLEV_SIZE; i++) {
        assert_true(m->table[i] < n); /* filled, with a host of the cluster */
        counts[m->table[i]]++;
    }
}

/* Equal weights: each host owns the same number of entries, give or take one. */
static void test_maglev_table_is_full_and_equal_hosts_share_it_evenly(void **state)
{
    struct fixture f;
    unsigned counts[5];

    fixture_setup(&f, HEAD "[cluster c]\nlb = maglev\nhash = header:x-user\n"
                           "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                           "endpoint = 127.0.0.1:50003\nendpoint = 127.0.0.1:50004\n"
                           "endpoint = 127.0.0.1:50005\n");
    assert_ptr_equal(f.cl->lb.ops, &ml_lb_maglev);
    count_entries(f.cl->lb.priv, counts, 5);
    for (unsigned h = 0; h < 5; h++) {
        assert_in_range(counts[h], ML_LB_MAGLEV_SIZE / 5, ML_LB_MAGLEV_SIZE / 5 + 1);
    }
    fixture_teardown(&f);
}

/* Weights 1:2:3: each host's entries are its weight's share, within one turn of the heaviest. */
static void test_maglev_table_shares_entries_by_weight(void **state)
{
    struct fixture f;
    unsigned counts[3];

    fixture_setup(&f, HEAD "[cluster c]\nlb = maglev\nhash = header:x-user\n"
                           "endpoint = 127.0.0.1:50001 weight=1\n"
                           "endpoint = 127.0.0.1:50002 weight=2\n"
                           "endpoint = 127.0.0.1:50003 weight=3\n");
    count_entries(f.cl->lb.priv, counts, 3);
    assert_in_range(counts[0], ML_LB_MAGLEV_SIZE / 6 - 2, ML_LB_MAGLEV_SIZE / 6 + 2);
    assert_in_range(counts[1], ML_LB_MAGLEV_SIZE / 3 - 2, ML_LB_MAGLEV_SIZE / 3 + 2);
    assert_in_range(counts[2], ML_LB_MAGLEV_SIZE / 2 - 2, ML_LB_MAGLEV_SIZE / 2 + 2);
    fixture_teardown(&f);
}

/* One of four hosts removed by a hot apply: its quarter of the table goes to the others, and of
 * the rest only a few entries change hands (Maglev trades a little disruption for balance). */
static void test_maglev_removing_one_of_four_hosts_moves_about_a_quarter(void **state)
{
    struct fixture four, three;
    unsigned moved = 0, moved_keys = 0;
    const struct maglev *a, *b;
    char key[32];

    fixture_setup(&four, HEAD "[cluster c]\nlb = maglev\nhash = path\n"
                              "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                              "endpoint = 127.0.0.1:50003\nendpoint = 127.0.0.1:50004\n");
    fixture_setup(&three, HEAD "[cluster c]\nlb = maglev\nhash = path\n"
                               "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                               "endpoint = 127.0.0.1:50004\n");
    a = four.cl->lb.priv;
    b = three.cl->lb.priv;
    for (uint32_t i = 0; i < ML_LB_MAGLEV_SIZE; i++) {
        moved += strcmp(fixture_addr(&four, a->table[i]), fixture_addr(&three, b->table[i])) != 0;
    }
    /* a quarter at least (the removed host's), not much more */
    assert_in_range(moved, ML_LB_MAGLEV_SIZE / 4, ML_LB_MAGLEV_SIZE * 3 / 10);
    for (unsigned i = 0; i < N_KEYS; i++) {
        snprintf(key, sizeof(key), "/svc/M?%u", i);
        moved_keys += strcmp(fixture_addr(&four, fixture_pick(&four, key, NULL)),
                             fixture_addr(&three, fixture_pick(&three, key, NULL))) != 0;
    }
    assert_in_range(moved_keys, N_KEYS / 4 - N_KEYS / 25, N_KEYS * 3 / 10 + N_KEYS / 25);
    fixture_teardown(&three);
    fixture_teardown(&four);
}

/* An ejected host leaves the table (rebuilt over the usable hosts); back, the table is the one
 * it was. */
static void test_maglev_rebuilds_the_table_when_a_host_is_ejected_and_back(void **state)
{
    struct fixture f;
    struct maglev *m;
    uint8_t before[ML_LB_MAGLEV_SIZE];
    unsigned counts[3];

    fixture_setup(&f, HEAD "[cluster c]\nlb = maglev\nhash = path\n"
                           "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                           "endpoint = 127.0.0.1:50003\n");
    m = f.cl->lb.priv;
    memcpy(before, m->table, sizeof(before));
    ml_host_state_set(ml_lb_host(&f.cl->lb, 1), ML_HOST_EJECTED, true);
    count_entries(m, counts, 3);
    assert_int_equal(counts[1], 0);
    assert_in_range(counts[0], ML_LB_MAGLEV_SIZE / 2, ML_LB_MAGLEV_SIZE / 2 + 1);
    ml_host_state_set(ml_lb_host(&f.cl->lb, 1), ML_HOST_EJECTED, false);
    assert_memory_equal(m->table, before, sizeof(before));
    fixture_teardown(&f);
}

static void test_maglev_sends_a_key_to_one_host_and_passes_over_tried_ones(void **state)
{
    struct fixture f;
    struct ml_lb_tried tried = {0};
    char key[32];

    fixture_setup(&f, HEAD "[cluster c]\nlb = maglev\nhash = header:x-user\n"
                           "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                           "endpoint = 127.0.0.1:50003\n");
    for (unsigned i = 0; i < 1000; i++) {
        int h;

        snprintf(key, sizeof(key), "user-%u", i);
        h = fixture_pick(&f, key, NULL);
        assert_int_equal(fixture_pick(&f, key, NULL), h);
        memset(&tried, 0, sizeof(tried));
        ml_lb_tried_add(&tried, (uint32_t)h);
        assert_int_not_equal(fixture_pick(&f, key, &tried), h);
    }
    ml_lb_tried_add(&tried, 0);
    ml_lb_tried_add(&tried, 1);
    ml_lb_tried_add(&tried, 2);
    assert_int_equal(fixture_pick(&f, "user-1", &tried), -ENOENT);
    fixture_teardown(&f);
}

static void test_maglev_without_a_key_draws_hosts_by_weight(void **state)
{
    struct fixture f;
    unsigned hits[2] = {0};

    fixture_setup(&f, HEAD "[cluster c]\nlb = maglev\n"
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
static void test_maglev_each_failing_allocation_in_balance_new_is_enomem(void **state)
{
    const char *text = HEAD "[cluster c]\nlb = maglev\nhash = path\n"
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
        cmocka_unit_test(test_maglev_table_is_full_and_equal_hosts_share_it_evenly),
        cmocka_unit_test(test_maglev_table_shares_entries_by_weight),
        cmocka_unit_test(test_maglev_removing_one_of_four_hosts_moves_about_a_quarter),
        cmocka_unit_test(test_maglev_rebuilds_the_table_when_a_host_is_ejected_and_back),
        cmocka_unit_test(test_maglev_sends_a_key_to_one_host_and_passes_over_tried_ones),
        cmocka_unit_test(test_maglev_without_a_key_draws_hosts_by_weight),
        cmocka_unit_test(test_maglev_each_failing_allocation_in_balance_new_is_enomem),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
