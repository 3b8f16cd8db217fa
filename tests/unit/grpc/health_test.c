/* grpc/health.c: grpc.health.v1 messages, checked against bytes protobuf itself produces
 * (protoc --encode on health.proto gives the same: field 1, varint or length-delimited). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "grpc/health.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static void test_request_for_a_service_is_field_one_in_one_frame(void **state)
{
    static const uint8_t want[] = {0, 0, 0, 0, 5, 0x0a, 3, 'f', 'o', 'o'};
    uint8_t buf[ML_GRPC_HEALTH_FRAME_MAX];

    assert_int_equal(ml_grpc_health_request_encode("foo", buf, sizeof(buf)), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void test_request_for_the_whole_server_is_an_empty_message(void **state)
{
    static const uint8_t want[] = {0, 0, 0, 0, 0};
    uint8_t buf[ML_GRPC_HEALTH_FRAME_MAX];

    assert_int_equal(ml_grpc_health_request_encode("", buf, sizeof(buf)), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void test_request_with_the_longest_name_fits_the_frame_bound(void **state)
{
    char name[ML_GRPC_HEALTH_SERVICE_MAX + 2];
    uint8_t buf[ML_GRPC_HEALTH_FRAME_MAX];

    memset(name, 's', ML_GRPC_HEALTH_SERVICE_MAX);
    name[ML_GRPC_HEALTH_SERVICE_MAX] = '\0';
    assert_int_equal(ml_grpc_health_request_encode(name, buf, sizeof(buf)),
                     5 + 3 + ML_GRPC_HEALTH_SERVICE_MAX);
    name[ML_GRPC_HEALTH_SERVICE_MAX] = 's';
    name[ML_GRPC_HEALTH_SERVICE_MAX + 1] = '\0';
    assert_int_equal(ml_grpc_health_request_encode(name, buf, sizeof(buf)), -ENAMETOOLONG);
    assert_int_equal(ml_grpc_health_request_encode("foo", buf, 6), -ENOBUFS);
}

static void test_responses_decode_to_their_status(void **state)
{
    static const uint8_t serving[] = {0, 0, 0, 0, 2, 0x08, 1};
    static const uint8_t not_serving[] = {0, 0, 0, 0, 2, 0x08, 2};
    static const uint8_t unknown_service[] = {0, 0, 0, 0, 2, 0x08, 3};
    static const uint8_t empty[] = {0, 0, 0, 0, 0}; /* proto3: status UNKNOWN is not sent */

    assert_int_equal(ml_grpc_health_response_decode(serving, sizeof(serving)),
                     ML_GRPC_HEALTH_SERVING);
    assert_int_equal(ml_grpc_health_response_decode(not_serving, sizeof(not_serving)),
                     ML_GRPC_HEALTH_NOT_SERVING);
    assert_int_equal(ml_grpc_health_response_decode(unknown_service, sizeof(unknown_service)),
                     ML_GRPC_HEALTH_SERVICE_UNKNOWN);
    assert_int_equal(ml_grpc_health_response_decode(empty, sizeof(empty)), ML_GRPC_HEALTH_UNKNOWN);
}

static void test_bad_bodies_are_refused(void **state)
{
    static const uint8_t cut[] = {0, 0, 0, 0, 2, 0x08};
    static const uint8_t compressed[] = {1, 0, 0, 0, 2, 0x08, 1};
    static const uint8_t two[] = {0, 0, 0, 0, 2, 0x08, 1, 0, 0, 0, 0, 2, 0x08, 1};
    static const uint8_t garbage[] = {0, 0, 0, 0, 2, 0x0a, 9};

    assert_int_equal(ml_grpc_health_response_decode(cut, 3), -EPROTO);
    assert_int_equal(ml_grpc_health_response_decode(cut, sizeof(cut)), -EPROTO);
    assert_int_equal(ml_grpc_health_response_decode(compressed, sizeof(compressed)), -EPROTO);
    assert_int_equal(ml_grpc_health_response_decode(two, sizeof(two)), -EPROTO);
    assert_int_equal(ml_grpc_health_response_decode(garbage, sizeof(garbage)), -EPROTO);
}

static void test_own_answer_round_trips(void **state)
{
    uint8_t buf[ML_GRPC_HEALTH_FRAME_MAX];
    int n = ml_grpc_health_response_encode(ML_GRPC_HEALTH_NOT_SERVING, buf, sizeof(buf));

    assert_true(n > 0);
    assert_int_equal(ml_grpc_health_response_decode(buf, (size_t)n), ML_GRPC_HEALTH_NOT_SERVING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_for_a_service_is_field_one_in_one_frame),
        cmocka_unit_test(test_request_for_the_whole_server_is_an_empty_message),
        cmocka_unit_test(test_request_with_the_longest_name_fits_the_frame_bound),
        cmocka_unit_test(test_responses_decode_to_their_status),
        cmocka_unit_test(test_bad_bodies_are_refused),
        cmocka_unit_test(test_own_answer_round_trips),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
