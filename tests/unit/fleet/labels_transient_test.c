/* fleet.proto's additions: Hello.labels (field 6) and Nack.transient (field 4) round trip
 * through envelope.c, are bounded (16 labels of 63 bytes), and an older message without them
 * decodes as "no labels" and "not transient". */
#include "fleet/envelope.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static uint8_t buf[8192];
static meshlet_fleet_v1_Envelope env;

static void test_hello_labels_round_trip_and_are_bounded(void **state)
{
    static const char *const labels[] = {"ring=canary", "region=eu-west.1"};
    const char *many[ML_FLEET_LABELS_MAX + 1];
    char long_label[ML_FLEET_LABEL_MAX + 2];
    struct ml_fleet_hello h = {"gw-1", "host", "0.1.0", "", NULL, 0, labels, 2};
    size_t n;

    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), 0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.msg.hello.labels_count, 2);
    assert_string_equal(env.msg.hello.labels[1], "region=eu-west.1");

    for (size_t i = 0; i <= ML_FLEET_LABELS_MAX; i++) {
        many[i] = "k=v";
    }
    h.labels = many;
    h.n_labels = ML_FLEET_LABELS_MAX;
    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), 0);
    h.n_labels = ML_FLEET_LABELS_MAX + 1;
    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), -EINVAL);

    memset(long_label, 'a', sizeof(long_label) - 1);
    long_label[sizeof(long_label) - 1] = '\0';
    many[0] = long_label;
    h.n_labels = 1;
    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), -EINVAL);
    long_label[ML_FLEET_LABEL_MAX] = '\0';
    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), 0);
}

static void test_nack_transient_round_trips_and_defaults_to_false(void **state)
{
    size_t n;

    assert_int_equal(ml_fleet_nack_encode_transient("v1", 9, "push: bind: in use", 18, true, buf,
                                                    sizeof(buf), &n),
                     0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_nack_tag);
    assert_true(env.msg.nack.transient);
    assert_string_equal(env.msg.nack.error, "push: bind: in use");

    assert_int_equal(ml_fleet_nack_encode("v1", 9, "push:1: bad", 11, buf, sizeof(buf), &n), 0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_false(env.msg.nack.transient);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_labels_round_trip_and_are_bounded),
        cmocka_unit_test(test_nack_transient_round_trips_and_defaults_to_false),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
