/* core/bearer.c: the token file rule and the constant-time compare shared by the node's admin
 * endpoint ([node] admin_token) and `meshlet controller --admin-token`. */
#include "core/bearer.h"

#include "core/alloc.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/ml-bearer-test-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/token", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static void write_file(const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

static int read_token(const char *text, char **out, size_t *n)
{
    write_file(text, strlen(text));
    *out = NULL;
    *n = 0;
    return ml_bearer_token_read(path, out, n);
}

static void test_token_with_newline_is_read_without_it(void **state)
{
    char *t;
    size_t n;

    (void)state;
    assert_int_equal(read_token("0123456789abcdef-token\r\n", &t, &n), 0);
    assert_int_equal(n, 22);
    assert_string_equal(t, "0123456789abcdef-token");
    ml_free(t);
    assert_int_equal(read_token("0123456789abcdef", &t, &n), 0);
    assert_int_equal(n, 16);
    ml_free(t);
}

static void test_bad_tokens_are_refused(void **state)
{
    char big[ML_BEARER_TOKEN_MAX_BYTES + 8];
    char *t;
    size_t n;

    (void)state;
    assert_int_equal(read_token("short\n", &t, &n), -EINVAL);
    assert_null(t);
    assert_int_equal(read_token("0123456789 abcdef\n", &t, &n), -EINVAL);
    assert_int_equal(read_token("0123456789abcdef\n\n", &t, &n), -EINVAL);
    assert_int_equal(read_token("", &t, &n), -EINVAL);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(read_token(big, &t, &n), -EFBIG);
    unlink(path);
    assert_int_equal(ml_bearer_token_read(path, &t, &n), -ENOENT);
}

static void test_compare(void **state)
{
    static const char tok[] = "0123456789abcdef";

    (void)state;
    assert_true(ml_bearer_matches("Bearer 0123456789abcdef", tok, 16));
    assert_true(ml_bearer_matches("bearer  0123456789abcdef", tok, 16));
    assert_false(ml_bearer_matches("Bearer 0123456789abcdeF", tok, 16));
    assert_false(ml_bearer_matches("Bearer 0123456789abcde", tok, 16));
    assert_false(ml_bearer_matches("Bearer 0123456789abcdef0", tok, 16));
    assert_false(ml_bearer_matches("Basic 0123456789abcdef", tok, 16));
    assert_false(ml_bearer_matches(NULL, tok, 16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token_with_newline_is_read_without_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_tokens_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
