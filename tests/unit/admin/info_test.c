/* admin/info.c: /server_info's JSON and the info and process metrics, alone. */
#include "admin/info.h"

#include "core/build_info.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static struct ml_admin_node_info refused(void)
{
    return (struct ml_admin_node_info){
        .id = "gw-\"1\"",
        .config_version = "local-0123456789ab",
        .config_source = "file",
        .uptime_ms = 61000,
        .last_apply = ML_ADMIN_APPLY_REFUSED,
        .last_apply_source = "push",
        .last_apply_version = "v7",
        .last_apply_error = "push:3: [cluster a] endpoint: \"x\\y\"\npush:4: tab\there",
        .last_apply_unix_ms = 1796648109590,
    };
}

static void test_server_info_escapes_what_it_quotes(void **state)
{
    struct ml_admin_node_info ni = refused();
    char out[4096];
    long n = ml_admin_render_server_info(&ni, out, sizeof(out));

    assert_true(n > 0 && (size_t)n == strlen(out) && out[n - 1] == '\n');
    assert_non_null(strstr(out, "{\"id\":\"gw-\\\"1\\\"\",\"version\":\""));
    assert_non_null(strstr(out, "\"config\":{\"version\":\"local-0123456789ab\",\"source\":"
                                "\"file\"}"));
    assert_non_null(strstr(out, "\"last_apply\":{\"result\":\"refused\",\"source\":\"push\","
                                "\"version\":\"v7\",\"time\":\"2026-12-07T12:55:09.590Z\","
                                "\"error\":\"push:3: [cluster a] endpoint: \\\"x\\\\y\\\"\\npush:4:"
                                " tab\\u0009here\"}}\n"));
    assert_non_null(strstr(out, "\"uptime_ms\":61000"));
}

static void test_server_info_before_any_apply(void **state)
{
    struct ml_admin_node_info ni = {.id = "n", .config_version = "v", .config_source = "fleet"};
    char out[4096];

    assert_true(ml_admin_render_server_info(&ni, out, sizeof(out)) > 0);
    assert_non_null(strstr(out, "\"last_apply\":{\"result\":\"none\"}}\n"));
}

static void test_too_small_a_buffer_is_enobufs(void **state)
{
    struct ml_admin_node_info ni = refused();
    char out[64];

    assert_int_equal(ml_admin_render_server_info(&ni, out, sizeof(out)), -ENOBUFS);
    assert_int_equal(ml_admin_render_info_metrics(&ni, out, sizeof(out)), -ENOBUFS);
    assert_int_equal(ml_admin_render_info_metrics(&ni, out, 0), -ENOBUFS);
}

static void test_info_metrics_carry_build_and_config_as_labels(void **state)
{
    struct ml_admin_node_info ni = refused();
    char out[4096], want[256];

    ni.config_version = "v\"2\"";
    assert_true(ml_admin_render_info_metrics(&ni, out, sizeof(out)) > 0);
    snprintf(want, sizeof(want), "\nmeshlet_build_info{version=\"%s\",board=\"%s\",features=\"",
             ml_build_version(), ml_build_board());
    assert_non_null(strstr(out, want));
    assert_non_null(
        strstr(out, "\nmeshlet_config_info{version=\"v\\\"2\\\"\",source=\"file\"} 1\n"));
    assert_non_null(strstr(out, "\n# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(out, "\n# TYPE process_start_time_seconds gauge\n"));
}

static void test_the_process_is_read_from_proc(void **state)
{
    struct ml_admin_process p;
    struct rlimit lim;
    int fd = dup(0);

    ml_admin_process_read(&p);
    /* qemu-user emulates /proc/self/stat with rss 0 (ML_TEST_EMULATED: tests/CMakeLists.txt) */
    if (getenv("ML_TEST_EMULATED") == NULL || strcmp(getenv("ML_TEST_EMULATED"), "1") != 0) {
        assert_true(p.rss_bytes > 0);
    }
    assert_true(p.open_fds >= 3);
    assert_true(p.start_unix_ms / 1000 <= (uint64_t)time(NULL) + 1);
    assert_true(p.start_unix_ms / 1000 + 3600 > (uint64_t)time(NULL));
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &lim), 0);
    assert_int_equal(p.max_fds, lim.rlim_cur == RLIM_INFINITY ? 0 : lim.rlim_cur);
    {
        struct ml_admin_process q;
        int fd2 = dup(0);

        ml_admin_process_read(&q);
        assert_int_equal(q.open_fds, p.open_fds + 1); /* counts the fds open now */
        close(fd2);
    }
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_info_escapes_what_it_quotes),
        cmocka_unit_test(test_server_info_before_any_apply),
        cmocka_unit_test(test_too_small_a_buffer_is_enobufs),
        cmocka_unit_test(test_info_metrics_carry_build_and_config_as_labels),
        cmocka_unit_test(test_the_process_is_read_from_proc),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
