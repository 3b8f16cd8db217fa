/* config/store.c: the last-known-good config in state_dir. Round trips; torn and garbled files
 * are refused whole; and every syscall of a save failing in turn (write ENOSPC, fsync EIO, rename
 * EIO, the directory fsync EIO, and all the others) returns that error and leaves the previous
 * saved config intact and loadable; every allocation failing in turn is a clean -ENOMEM. And
 * state_dir is not trusted blindly: links planted there are not followed, a FIFO as config.state
 * is an error at once, temporary names are unique and never reused when taken, and a directory
 * others could change is refused. */
#include "config/store.h"

#include "core/alloc.h"
#include "meshlet_config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
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
    char other[64]; /* outside state_dir: the files a planted link points at */
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
    strcpy(f->other, "/tmp/ml-store-other-XXXXXX");
    if (mkdtemp(f->dir) == NULL || mkdtemp(f->other) == NULL) {
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

    char cmd[160];

    ml_alloc_fail_after(-1);
    ml_config_store_reset(NULL, f->dir);
    path_in(f, "config.state", p, sizeof(p)); /* also a garbled one a test wrote */
    unlink(p);
    rmdir(f->dir);
    /* what the trust tests planted, and their victims */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->dir, f->other);
    if (system(cmd) != 0) {
        print_error("teardown: %s failed\n", cmd);
    }
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

static int f_fstat(int fd, struct stat *st)
{
    return fail_now("fstat", EIO) ? -1 : fstat(fd, st);
}
static int f_mkdir(const char *p, mode_t mode)
{
    return fail_now("mkdir", EIO) ? -1 : mkdir(p, mode);
}
static ssize_t f_getrandom(void *b, size_t n, unsigned int flags)
{
    /* a failing random source is not an error: the save makes a name without it */
    return fail_now("getrandom", EAGAIN) ? -1 : ml_store_ops_posix.getrandom(b, n, flags);
}

static const struct ml_store_ops failing = {
    .open = f_open,
    .read = f_read,
    .write = f_write,
    .fsync = f_fsync,
    .close = f_close,
    .rename = f_rename,
    .link = f_link,
    .unlink = f_unlink,
    .fstat = f_fstat,
    .mkdir = f_mkdir,
    .getrandom = f_getrandom,
};

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

/* ---- state_dir is not trusted blindly -------------------------------------------------------- */

#define PRECIOUS "root's file, not meshlet's\n"

/* A file outside state_dir with PRECIOUS in it; its path in out[128]. */
static void make_victim(const struct fixture *f, const char *name, char *out)
{
    FILE *fp;

    snprintf(out, 128, "%s/%s", f->other, name);
    fp = fopen(out, "w");
    assert_non_null(fp);
    fputs(PRECIOUS, fp);
    fclose(fp);
}

static void expect_untouched(const char *victim)
{
    char buf[128] = "";
    FILE *fp = fopen(victim, "r");
    size_t n;

    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, PRECIOUS);
}

static void plant_link(const struct fixture *f, const char *name, const char *target)
{
    char p[128];

    path_in(f, name, p, sizeof(p));
    assert_int_equal(symlink(target, p), 0);
}

static bool is_regular(const struct fixture *f, const char *name)
{
    char p[128];
    struct stat st;

    path_in(f, name, p, sizeof(p));
    return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Links planted under config.state and every fixed name a save used: load does not read through
 * the link, and a save neither writes nor truncates what any of them points at. */
static void test_symlinks_in_state_dir_are_not_followed(void **state)
{
    struct fixture *f = *state;
    char v[ML_CONFIG_STORE_VERSION_MAX + 1], *t, victim[128], victim_tmp[128], victim_prev[128];
    size_t n;

    make_victim(f, "victim", victim);
    make_victim(f, "victim-tmp", victim_tmp);
    make_victim(f, "victim-prev", victim_prev);
    plant_link(f, "config.state", victim);
    plant_link(f, ".config.state.tmp", victim_tmp);
    plant_link(f, ".config.state.prev", victim_prev);

    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -ELOOP);
    assert_null(t);
    assert_non_null(strstr(ml_config_store_strerror(-ELOOP), "symbolic link"));

    assert_int_equal(ml_config_store_save(NULL, f->dir, "v1", OLD_INI, strlen(OLD_INI)), 0);
    expect_untouched(victim);
    expect_untouched(victim_tmp);
    expect_untouched(victim_prev);
    assert_true(is_regular(f, "config.state")); /* the link is replaced, not written through */
    expect_saved(f, "v1", OLD_INI);

    /* A link planted once a good config is saved: load refuses it, the next save replaces it. */
    assert_int_equal(ml_config_store_reset(NULL, f->dir), 0);
    plant_link(f, "config.state", victim);
    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -ELOOP);
    assert_int_equal(ml_config_store_save(NULL, f->dir, "v2", NEW_INI, strlen(NEW_INI)), 0);
    expect_saved(f, "v2", NEW_INI);
    expect_untouched(victim);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "store_test: a FIFO as config.state blocked the load\n";
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* nothing more to say */
    }
    _exit(1);
}

/* A FIFO as config.state (nobody writes it): load returns at once with -EINVAL instead of waiting
 * for a writer forever; a save replaces the FIFO. Other non-regular files likewise. */
static void test_fifo_or_directory_as_state_is_an_error_at_once(void **state)
{
    struct fixture *f = *state;
    char v[ML_CONFIG_STORE_VERSION_MAX + 1], *t, p[128];
    size_t n;

    path_in(f, "config.state", p, sizeof(p));
    assert_int_equal(mkfifo(p, 0600), 0);
    signal(SIGALRM, on_alarm);
    alarm(10); /* before the fix the open blocks for good: fail instead of hanging */
    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -EINVAL);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    assert_null(t);
    assert_non_null(strstr(ml_config_store_strerror(-EINVAL), "not a regular file"));
    assert_int_equal(ml_config_store_save(NULL, f->dir, "v1", OLD_INI, strlen(OLD_INI)), 0);
    expect_saved(f, "v1", OLD_INI);

    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(ml_config_store_load(NULL, f->dir, v, &t, &n), -EINVAL);
    assert_int_equal(rmdir(p), 0);
}

/* The temporary files save created (open with O_CREAT), recorded by the ops below. */
#define MAX_SEEN 32
static char seen[MAX_SEEN][128];
static int n_seen;
static int fixed_random; /* > 0: so many getrandom calls give all-zero bytes, then real ones */

static int rec_open(const char *p, int flags, mode_t mode)
{
    if ((flags & O_CREAT) && n_seen < MAX_SEEN) {
        snprintf(seen[n_seen++], sizeof(seen[0]), "%s", p);
    }
    return open(p, flags, mode);
}

static ssize_t rec_getrandom(void *b, size_t n, unsigned int flags)
{
    if (fixed_random > 0) {
        fixed_random--;
        memset(b, 0, n);
        return (ssize_t)n;
    }
    return ml_store_ops_posix.getrandom(b, n, flags);
}

static struct ml_store_ops recording(void)
{
    struct ml_store_ops ops = ml_store_ops_posix;

    ops.open = rec_open;
    ops.getrandom = rec_getrandom;
    n_seen = 0;
    fixed_random = 0;
    return ops;
}

/* Only config.state is left in dir. */
static void expect_only_state(const struct fixture *f)
{
    char cmd[160];

    snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s')\" = config.state", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_temporary_names_are_unique_and_never_reused_when_taken(void **state)
{
    struct fixture *f = *state;
    struct ml_store_ops ops = recording();
    char victim[128], taken[128];

    for (int i = 0; i < 20; i++) {
        assert_int_equal(ml_config_store_save(&ops, f->dir, "v", OLD_INI, strlen(OLD_INI)), 0);
    }
    assert_int_equal(n_seen, 20);
    for (int i = 0; i < n_seen; i++) {
        const char *name = strrchr(seen[i], '/') + 1;

        assert_int_equal(strncmp(name, ".config.state.tmp-", 18), 0);
        assert_int_equal(strlen(name), 18 + 8);
        assert_int_equal(strspn(name + 18, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                           "0123456789_-"),
                         8);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(seen[i], seen[j]);
        }
    }
    expect_only_state(f);

    /* The name the all-zero suffix gives, taken by a planted link: never opened. */
    ops = recording();
    fixed_random = 1;
    assert_int_equal(ml_config_store_save(&ops, f->dir, "old", OLD_INI, strlen(OLD_INI)), 0);
    snprintf(taken, sizeof(taken), "%s", seen[0]);
    make_victim(f, "victim", victim);
    assert_int_equal(symlink(victim, taken), 0);

    ops = recording();
    fixed_random = ML_CONFIG_STORE_TMP_TRIES; /* every try the taken name */
    assert_int_equal(ml_config_store_save(&ops, f->dir, "new", NEW_INI, strlen(NEW_INI)), -EEXIST);
    assert_int_equal(n_seen, ML_CONFIG_STORE_TMP_TRIES);
    expect_untouched(victim);
    expect_saved(f, "old", OLD_INI);

    ops = recording();
    fixed_random = 1; /* the taken name once, then another */
    assert_int_equal(ml_config_store_save(&ops, f->dir, "new", NEW_INI, strlen(NEW_INI)), 0);
    assert_int_equal(n_seen, 2);
    assert_string_equal(seen[0], taken);
    assert_string_not_equal(seen[1], taken);
    expect_untouched(victim);
    expect_saved(f, "new", NEW_INI);

    /* Without the kernel's random source the names still differ. */
    for (int i = 0; i < 4; i++) {
        n_calls = 0;
        fail_at = 0;
        fail_only = "getrandom";
        assert_int_equal(ml_config_store_save(&failing, f->dir, "v", OLD_INI, strlen(OLD_INI)), 0);
        fail_at = -1;
    }
    /* the reset removes the planted leftover too (the link, not its target) */
    assert_int_equal(ml_config_store_reset(NULL, f->dir), 0);
    assert_int_equal(access(taken, F_OK), -1);
    expect_untouched(victim);
}

static mode_t mode_of(const char *p)
{
    struct stat st;

    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

static void expect_refused(const char *dir, int err, const char *why_has)
{
    char why[256];

    assert_int_equal(ml_config_store_check_dir(NULL, dir, why, sizeof(why)), err);
    if (strstr(why, why_has) == NULL) {
        fail_msg("why: \"%s\" lacks \"%s\"", why, why_has);
    }
}

static void test_check_dir_refuses_what_others_could_change(void **state)
{
    struct fixture *f = *state;
    char fresh[128], why[256], file[128];
    mode_t old_umask = umask(022);

    /* missing: made, 0700 */
    snprintf(fresh, sizeof(fresh), "%s/fresh", f->dir);
    assert_int_equal(ml_config_store_check_dir(NULL, fresh, why, sizeof(why)), 0);
    assert_int_equal(mode_of(fresh), 0700);
    assert_int_equal(rmdir(fresh), 0);
    umask(old_umask);

    assert_int_equal(chmod(f->dir, 0777), 0);
    expect_refused(f->dir, -EPERM, "writable by group or others (mode 0777)");
    assert_int_equal(chmod(f->dir, 01777), 0); /* sticky: others still plant names */
    expect_refused(f->dir, -EPERM, "mode 1777");
    assert_int_equal(chmod(f->dir, 0720), 0);
    expect_refused(f->dir, -EPERM, "mode 0720");
    assert_int_equal(chmod(f->dir, 0702), 0);
    expect_refused(f->dir, -EPERM, "mode 0702");
    assert_false(exists(f, "config.state")); /* refused: nothing made there */
    assert_int_equal(chmod(f->dir, 0755), 0);
    assert_int_equal(ml_config_store_check_dir(NULL, f->dir, why, sizeof(why)), 0);
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(ml_config_store_check_dir(NULL, f->dir, why, sizeof(why)), 0);

    if (geteuid() == 0) {
        assert_int_equal(chown(f->dir, 65534, 65534), 0);
        expect_refused(f->dir, -EPERM, "owned by uid 65534, not by uid 0");
        assert_int_equal(chown(f->dir, 0, 0), 0);
    } else {
        print_message("(not root: a directory of another owner is not tried)\n");
    }

    snprintf(file, sizeof(file), "%s/plain", f->other);
    make_victim(f, "plain", file);
    expect_refused(file, -ENOTDIR, "not writable: Not a directory");
    expect_untouched(file);
    assert_int_equal(ml_config_store_check_dir(NULL, f->dir, NULL, 0), 0); /* why is optional */
}

/* Leftovers of saves a crash cut short go at start; a planted link goes, not its target; what is
 * not a temporary file stays. */
static void test_check_dir_removes_stale_temporary_files_safely(void **state)
{
    struct fixture *f = *state;
    char victim[128], p[128], why[256];
    int fd;

    assert_int_equal(ml_config_store_save(NULL, f->dir, "v1", OLD_INI, strlen(OLD_INI)), 0);
    make_victim(f, "victim", victim);
    path_in(f, ".config.state.tmp", p, sizeof(p));
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    plant_link(f, ".config.state.tmp-AAAAAAAA", victim);
    path_in(f, ".config.state.tmp-fifo0000", p, sizeof(p));
    assert_int_equal(mkfifo(p, 0600), 0);
    path_in(f, ".config.state.tmp-dir", p, sizeof(p));
    assert_int_equal(mkdir(p, 0700), 0);
    path_in(f, ".config.state.tmpfoo", p, sizeof(p)); /* not one of ours */
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);

    assert_int_equal(ml_config_store_check_dir(NULL, f->dir, why, sizeof(why)), 0);
    assert_false(exists(f, ".config.state.tmp"));
    assert_false(exists(f, ".config.state.tmp-fifo0000"));
    path_in(f, ".config.state.tmp-AAAAAAAA", p, sizeof(p));
    assert_int_equal(access(p, F_OK), -1);
    expect_untouched(victim);
    assert_true(exists(f, ".config.state.tmp-dir"));
    assert_true(exists(f, ".config.state.tmpfoo"));
    expect_saved(f, "v1", OLD_INI);
    path_in(f, ".config.state.tmp-dir", p, sizeof(p));
    assert_int_equal(rmdir(p), 0);
    path_in(f, ".config.state.tmpfoo", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    expect_only_state(f);
}

/* Each step of the check failing in turn: an error with its reason, or (a failure it may shrug
 * off: the random source) success. Only a temporary file whose removal failed may stay, and the
 * next check removes it. */
static void test_check_dir_each_call_fails_in_turn(void **state)
{
    struct fixture *f = *state;
    char why[256], only_tmp[192], empty[160];
    long k;

    snprintf(only_tmp, sizeof(only_tmp),
             "test -z \"$(ls -A '%s' | grep -v '^\\.config\\.state\\.tmp-')\"", f->dir);
    snprintf(empty, sizeof(empty), "test -z \"$(ls -A '%s')\"", f->dir);
    for (k = 0;; k++) {
        int rv;

        n_calls = 0;
        fail_at = k;
        fail_only = NULL;
        failed = false;
        why[0] = '\0';
        rv = ml_config_store_check_dir(&failing, f->dir, why, sizeof(why));
        fail_at = -1;
        if (!failed) {
            assert_int_equal(rv, 0);
            break;
        }
        if (rv < 0) {
            assert_int_equal(rv, -fail_errno);
            assert_true(strlen(why) > 0);
        }
        assert_int_equal(system(only_tmp), 0);
    }
    assert_true(k >= 6); /* mkdir, open, fstat, close, getrandom, open, close, unlink */
    assert_int_equal(system(empty), 0);
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
        cmocka_unit_test_setup_teardown(test_symlinks_in_state_dir_are_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fifo_or_directory_as_state_is_an_error_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_temporary_names_are_unique_and_never_reused_when_taken,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_dir_refuses_what_others_could_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_dir_removes_stale_temporary_files_safely, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_dir_each_call_fails_in_turn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
