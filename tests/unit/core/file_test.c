/* core/file.c: reading a whole config file, bounded, and saying why it could not be read. */
#include "core/file.h"

#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    strcpy(f->dir, "/tmp/ml-file-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/meshlet.ini", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    ml_alloc_fail_after(-1);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void test_reads_a_whole_file_nul_terminated(void **state)
{
    struct fixture *f = *state;
    char *buf;
    size_t n;

    write_file(f->path, "[node]\nlog = info\n", 18);
    assert_int_equal(ml_file_read_all(f->path, 1024, &buf, &n), 0);
    assert_int_equal(n, 18);
    assert_string_equal(buf, "[node]\nlog = info\n");
    free(buf);
}

static void test_keeps_bytes_after_a_nul(void **state)
{
    struct fixture *f = *state;
    char *buf;
    size_t n;

    write_file(f->path, "a\0b", 3); /* judging the bytes is the caller's job */
    assert_int_equal(ml_file_read_all(f->path, 1024, &buf, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "a\0b\0", 4);
    free(buf);
}

static void test_an_empty_file_is_an_empty_string(void **state)
{
    struct fixture *f = *state;
    char *buf;
    size_t n = 99;

    write_file(f->path, "", 0);
    assert_int_equal(ml_file_read_all(f->path, 1024, &buf, &n), 0);
    assert_non_null(buf);
    assert_int_equal(n, 0);
    assert_string_equal(buf, "");
    free(buf);
}

static void test_exactly_the_maximum_is_read(void **state)
{
    struct fixture *f = *state;
    char data[4096], *buf;
    size_t n;

    memset(data, ';', sizeof(data));
    write_file(f->path, data, sizeof(data));
    assert_int_equal(ml_file_read_all(f->path, sizeof(data), &buf, &n), 0);
    assert_int_equal(n, sizeof(data));
    assert_int_equal(buf[n], '\0');
    free(buf);
}

static void test_one_byte_past_the_maximum_is_too_big(void **state)
{
    struct fixture *f = *state;
    char data[4097], *buf = (char *)1;
    size_t n;

    memset(data, ';', sizeof(data));
    write_file(f->path, data, sizeof(data));
    assert_int_equal(ml_file_read_all(f->path, 4096, &buf, &n), -EFBIG);
    assert_null(buf);
    assert_int_equal(n, 4097); /* the size found, for the message */
}

static void test_a_missing_file_is_enoent(void **state)
{
    struct fixture *f = *state;
    char *buf = (char *)1;
    size_t n = 5;

    assert_int_equal(ml_file_read_all(f->path, 1024, &buf, &n), -ENOENT);
    assert_null(buf);
    assert_int_equal(n, 0);
}

static void test_a_directory_is_eisdir(void **state)
{
    struct fixture *f = *state;
    char *buf;
    size_t n;

    assert_int_equal(ml_file_read_all(f->dir, 1024, &buf, &n), -EISDIR);
    assert_null(buf);
}

static void test_a_fifo_is_not_a_regular_file_and_does_not_block(void **state)
{
    struct fixture *f = *state;
    char *buf;
    size_t n;

    assert_int_equal(mkfifo(f->path, 0600), 0);
    assert_int_equal(ml_file_read_all(f->path, 1024, &buf, &n), -EINVAL);
    assert_null(buf);
}

static void test_a_device_is_not_a_regular_file(void **state)
{
    char *buf;
    size_t n;

    assert_int_equal(ml_file_read_all("/dev/null", 1024, &buf, &n), -EINVAL);
    assert_null(buf);
}

static void test_an_unreadable_file_is_eacces(void **state)
{
    struct fixture *f = *state;
    char *buf;
    size_t n;

    write_file(f->path, "x", 1);
    chmod(f->path, 0);
    if (access(f->path, R_OK) == 0) {
        skip(); /* root reads anything */
    }
    assert_int_equal(ml_file_read_all(f->path, 1024, &buf, &n), -EACCES);
    assert_null(buf);
}

static void test_out_of_memory_is_enomem_and_leaks_nothing(void **state)
{
    struct fixture *f = *state;
    char *buf = (char *)1;
    size_t n;

    write_file(f->path, "[node]\n", 7);
    ml_alloc_fail_after(0);
    assert_int_equal(ml_file_read_all(f->path, 1024, &buf, &n), -ENOMEM);
    ml_alloc_fail_after(-1);
    assert_null(buf);
    /* and the descriptor was closed: the same call works afterwards */
    assert_int_equal(ml_file_read_all(f->path, 1024, &buf, &n), 0);
    free(buf);
}

static void test_no_descriptor_leaks_on_any_path(void **state)
{
    struct fixture *f = *state;
    char *buf;
    size_t n;
    int before, after;

    write_file(f->path, "0123456789", 10);
    before = dup(0);
    close(before);
    for (int i = 0; i < 50; i++) {
        if (ml_file_read_all(f->path, 1024, &buf, &n) == 0) {
            free(buf);
        }
        ml_file_read_all(f->path, 5, &buf, &n);   /* too big */
        ml_file_read_all(f->dir, 1024, &buf, &n); /* a directory */
    }
    after = dup(0);
    close(after);
    assert_int_equal(after, before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_reads_a_whole_file_nul_terminated),
        T(test_keeps_bytes_after_a_nul),
        T(test_an_empty_file_is_an_empty_string),
        T(test_exactly_the_maximum_is_read),
        T(test_one_byte_past_the_maximum_is_too_big),
        T(test_a_missing_file_is_enoent),
        T(test_a_directory_is_eisdir),
        T(test_a_fifo_is_not_a_regular_file_and_does_not_block),
        T(test_a_device_is_not_a_regular_file),
        T(test_an_unreadable_file_is_eacces),
        T(test_out_of_memory_is_enomem_and_leaks_nothing),
        T(test_no_descriptor_leaks_on_any_path),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
