/* config/store.c: the last-known-good config in state_dir. Round trips; torn and garbled files
 * are refused whole; and every syscall of a save failing in turn (write ENOSPC, fsync EIO, rename
 * EIO, the directory fsync EIO, and all the others) returns that error and leaves the previous
 * saved config intact and loadable; every allocation failing in turn is a clean -ENOMEM. */
#include "config/store.h"

#include "core/alloc.h"
#include "meshlet_config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static const char OLD_INI[] = "[node]\nid = edge-1\n\n[listener a]\nbind = 127.0.0.1:15001\n";
static const char NEW_INI[] = "[node]\nid = edge-1\n\n[listener b]\nbind = 127.0.0.1:15002\n";

struct fixture {
    char dir[64];
};

static void path_in(const struct fixture *f, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->dir, name);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    strcpy(f->dir, "/tmp/ml-store-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char p[128];

    ml_alloc_fail_after(-1);
    ml_config_store_reset(NULL, f->dir);
    path_in(f, "config.state", p, sizeof(p)); /* also a garbled one a test wrote */
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static bool exists(const struct fixture *f, const char *name)
{
    char p[128];

    path_in(f, name, p, sizeof(p));
    return access(p, F_OK) == 0;
}

/* Loads and checks the saved config is exactly (version, text). */
static void expect_saved(const struct fixture *f, const char *version, const char *text)
{
    char v[ML_CONFIG_STORE_VERSION_MAX + 1], *t;
    size_t n;

    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), 0);
    assert_string_equal(v, version);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(t, text, n);
    assert_int_equal(t[n], '\0');
    ml_free(t);
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    char v[ML_CONFIG_STORE_VERSION_MAX + 1], vmax[ML_CONFIG_STORE_VERSION_MAX + 2], *t;
    size_t n;

    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -ENOENT);
    assert_null(t);
    assert_int_equal(ml_config_store_save(NULL, f->dir, "v1", OLD_INI, strlen(OLD_INI)), 0);
    expect_saved(f, "v1", OLD_INI);
    assert_int_equal(
        ml_config_store_save(NULL, f->dir, "local-0123456789ab", NEW_INI, strlen(NEW_INI)), 0);
    expect_saved(f, "local-0123456789ab", NEW_INI);
    assert_false(exists(f, ".config.state.tmp"));
    assert_false(exists(f, ".config.state.prev"));

    /* Versions with any bytes but NUL, empty texts, the longest version. */
    assert_int_equal(ml_config_store_save(NULL, f->dir, "a b\nc", "", 0), 0);
    expect_saved(f, "a b\nc", "");
    memset(vmax, 'v', sizeof(vmax) - 1);
    vmax[sizeof(vmax) - 1] = '\0';
    assert_int_equal(ml_config_store_save(NULL, f->dir, vmax, "x", 1), -EINVAL);
    vmax[ML_CONFIG_STORE_VERSION_MAX] = '\0';
    assert_int_equal(ml_config_store_save(NULL, f->dir, vmax, "x", 1), 0);
    expect_saved(f, vmax, "x");

    assert_int_equal(ml_config_store_reset(NULL, f->dir), 0);
    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -ENOENT);
    assert_int_equal(ml_config_store_reset(NULL, f->dir), 0);
    assert_int_equal(ml_config_store_reset(NULL, "/nonexistent/ml-store"), 0);
    assert_int_equal(ml_config_store_save(NULL, "/nonexistent/ml-store", "v", "x", 1), -ENOENT);
}

static void test_largest_config(void **state)
{
    struct fixture *f = *state;
    size_t max = CONFIG_ML_MAX_CONFIG_BYTES;
    char *big = malloc(max + 1), v[ML_CONFIG_STORE_VERSION_MAX + 1], *t;
    size_t n;

    assert_non_null(big);
    memset(big, '#', max + 1);
    assert_int_equal(ml_config_store_save(NULL, f->dir, "v", big, max + 1), -EFBIG);
    assert_int_equal(ml_config_store_save(NULL, f->dir, "v", big, max), 0);
    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), 0);
    assert_int_equal(n, max);
    ml_free(t);
    free(big);
}

static void write_state(const struct fixture *f, const void *data, size_t n)
{
    char p[128];
    int fd;

    path_in(f, "config.state", p, sizeof(p));
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static char *read_state(const struct fixture *f, size_t *n)
{
    char p[128], *buf = malloc(4096);
    FILE *fp;

    path_in(f, "config.state", p, sizeof(p));
    fp = fopen(p, "rb");
    assert_non_null(fp);
    assert_non_null(buf);
    *n = fread(buf, 1, 4096, fp);
    fclose(fp);
    return buf;
}

/* Every prefix of a good file (a torn write), every single flipped byte (garbled), and a byte
 * too many are -EBADMSG with nothing returned. */
static void test_torn_and_garbled(void **state)
{
    struct fixture *f = *state;
    char v[ML_CONFIG_STORE_VERSION_MAX + 1], *t, *good;
    size_t n, len;

    assert_int_equal(ml_config_store_save(NULL, f->dir, "v1", OLD_INI, strlen(OLD_INI)), 0);
    good = read_state(f, &len);
    for (size_t cut = 0; cut < len; cut++) {
        write_state(f, good, cut);
        assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -EBADMSG);
        assert_null(t);
        assert_int_equal(n, 0);
        assert_string_equal(v, "");
    }
    for (size_t i = 0; i < len; i++) {
        good[i] ^= 0x01;
        write_state(f, good, len);
        assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -EBADMSG);
        assert_null(t);
        good[i] ^= 0x01;
    }
    good[len] = '\n';
    write_state(f, good, len + 1);
    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -EBADMSG);
    write_state(f, OLD_INI, strlen(OLD_INI)); /* a plain INI is not a saved state either */
    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -EBADMSG);
    write_state(f, good, len);
    expect_saved(f, "v1", OLD_INI);
    free(good);
}

/* ---- each syscall failing in turn ---------------------------------------------------------- */

static long n_calls;          /* syscalls made through the failing ops */
static long fail_at;          /* the one that fails (0-based); -1 none */
static int fail_errno;        /* its errno */
static const char *fail_only; /* if set, count only this kind of call */
static bool failed;

static bool fail_now(const char *kind, int err)
{
    if (fail_only != NULL && strcmp(fail_only, kind) != 0) {
        return false;
    }
    if (n_calls++ == fail_at) {
        failed = true;
        fail_errno = err;
        errno = err;
        return true;
    }
    return false;
}

static int f_open(const char *p, int flags, mode_t mode)
{
    return fail_now("open", EIO) ? -1 : open(p, flags, mode);
}
static ssize_t f_read(int fd, void *b, size_t n)
{
    return fail_now("read", EIO) ? -1 : read(fd, b, n);
}
static ssize_t f_write(int fd, const void *b, size_t n)
{
    return fail_now("write", ENOSPC) ? -1 : write(fd, b, n);
}
static int f_fsync(int fd)
{
    return fail_now("fsync", EIO) ? -1 : fsync(fd);
}
static int f_close(int fd)
{
    if (fail_now("close", EIO)) {
        close(fd); /* Linux: the fd is gone even when close reports an error */
        return -1;
    }
    return close(fd);
}
static int f_rename(const char *a, const char *b)
{
    return fail_now("rename", EIO) ? -1 : rename(a, b);
}
static int f_link(const char *a, const char *b)
{
    return fail_now("link", EIO) ? -1 : link(a, b);
}
static int f_unlink(const char *p)
{
    return fail_now("unlink", EIO) ? -1 : unlink(p);
}

static const struct ml_store_ops failing = {f_open,  f_read,   f_write, f_fsync,
                                            f_close, f_rename, f_link,  f_unlink};

/* Saves OLD_INI for real, then NEW_INI with call number k (of kind, or of any kind) failing.
 * Returns the save's result; *any is whether a call failed at all. */
static int save_failing(struct fixture *f, const char *kind, long k, bool *any)
{
    int rv;

    assert_int_equal(ml_config_store_save(NULL, f->dir, "old", OLD_INI, strlen(OLD_INI)), 0);
    n_calls = 0;
    fail_at = k;
    fail_only = kind;
    failed = false;
    rv = ml_config_store_save(&failing, f->dir, "new", NEW_INI, strlen(NEW_INI));
    fail_at = -1;
    *any = failed;
    return rv;
}

static void expect_step_fails(struct fixture *f, const char *kind, long k, int err)
{
    bool any;

    assert_int_equal(save_failing(f, kind, k, &any), -err);
    assert_true(any);
    expect_saved(f, "old", OLD_INI);
    assert_false(exists(f, ".config.state.tmp"));
}

static void test_named_steps_fail(void **state)
{
    struct fixture *f = *state;

    expect_step_fails(f, "write", 0, ENOSPC); /* the header */
    expect_step_fails(f, "write", 3, ENOSPC); /* the text */
    expect_step_fails(f, "fsync", 0, EIO);    /* the file */
    expect_step_fails(f, "rename", 0, EIO);
    expect_step_fails(f, "fsync", 1, EIO); /* the directory, after the rename: rolled back */
    expect_step_fails(f, "open", 0, EIO);  /* the temporary file */
    expect_step_fails(f, "open", 1, EIO);  /* the directory */
    expect_step_fails(f, "link", 0, EIO);
    expect_step_fails(f, "close", 0, EIO); /* the file's close reports a lost write */
}

static void test_each_call_fails_in_turn(void **state)
{
    struct fixture *f = *state;
    long k;

    for (k = 0;; k++) {
        bool any;
        int rv = save_failing(f, NULL, k, &any);

        if (!any) {
            assert_int_equal(rv, 0);
            expect_saved(f, "new", NEW_INI);
            break;
        }
        if (rv == 0) {
            /* Only a failure once the new file is durable may be shrugged off (removing the
             * kept previous file, closing the directory). */
            expect_saved(f, "new", NEW_INI);
        } else {
            assert_int_equal(rv, -fail_errno);
            expect_saved(f, "old", OLD_INI);
        }
        assert_false(exists(f, ".config.state.tmp"));
    }
    assert_true(k >= 10);

    /* The very first save failing anywhere leaves nothing behind. */
    for (k = 0;; k++) {
        char v[ML_CONFIG_STORE_VERSION_MAX + 1], *t;
        size_t n;
        int rv;

        ml_config_store_reset(NULL, f->dir);
        n_calls = 0;
        fail_at = k;
        fail_only = NULL;
        failed = false;
        rv = ml_config_store_save(&failing, f->dir, "new", NEW_INI, strlen(NEW_INI));
        fail_at = -1;
        if (!failed) {
            break;
        }
        if (rv < 0) {
            assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -ENOENT);
        } else {
            expect_saved(f, "new", NEW_INI);
        }
    }
}

static void test_load_and_reset_fail(void **state)
{
    struct fixture *f = *state;
    char v[ML_CONFIG_STORE_VERSION_MAX + 1], *t;
    size_t n;
    long k;

    assert_int_equal(ml_config_store_save(NULL, f->dir, "v1", OLD_INI, strlen(OLD_INI)), 0);
    for (k = 0;; k++) {
        int rv;

        n_calls = 0;
        fail_at = k;
        fail_only = NULL;
        failed = false;
        rv = ml_config_store_load(&failing, f->dir, v, &t, &n);
        fail_at = -1;
        if (!failed) {
            assert_int_equal(rv, 0);
            ml_free(t);
            break;
        }
        if (rv < 0) {
            assert_int_equal(rv, -fail_errno);
            assert_null(t);
        } else {
            ml_free(t); /* the close after reading: nothing lost */
        }
    }
    n_calls = 0;
    fail_at = 0;
    fail_only = "unlink";
    assert_int_equal(ml_config_store_reset(&failing, f->dir), -EIO);
    fail_at = -1;
    expect_saved(f, "v1", OLD_INI);
}

static void test_each_allocation_fails(void **state)
{
    struct fixture *f = *state;
    char v[ML_CONFIG_STORE_VERSION_MAX + 1], *t;
    size_t n;
    long k;
    int rv;

    for (k = 0;; k++) {
        ml_alloc_fail_after(k);
        rv = ml_config_store_save(NULL, f->dir, "v1", OLD_INI, strlen(OLD_INI));
        ml_alloc_fail_after(-1);
        if (rv == 0) {
            break;
        }
        assert_int_equal(rv, -ENOMEM);
    }
    for (k = 0;; k++) {
        ml_alloc_fail_after(k);
        rv = ml_config_store_load(NULL, f->dir, v, &t, &n);
        ml_alloc_fail_after(-1);
        if (rv == 0) {
            break;
        }
        assert_int_equal(rv, -ENOMEM);
        assert_null(t);
    }
    assert_true(k >= 1); /* load allocates its buffer */
    assert_string_equal(v, "v1");
    ml_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_largest_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_and_garbled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named_steps_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_call_fails_in_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_and_reset_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_allocation_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
