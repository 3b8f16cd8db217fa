/* The last-known-good config in state_dir: see store.h for the file format and the steps. */
#include "config/store.h"

#include "core/alloc.h"
#include "core/sha256.h"
#include "meshlet_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_FILE "config.state"
/* Temporary files are TMP_PREFIX "-" and TMP_SUFFIX_CHARS random characters; TMP_PREFIX alone is
 * the fixed name older builds used, removed as stale like the others. */
#define TMP_PREFIX ".config.state.tmp"
#define TMP_SUFFIX_CHARS 8
#define PREV_FILE ".config.state.prev"
#define MAGIC "meshlet-state 1 "
#define HEX ML_SHA256_BYTES * 2
/* MAGIC, two sizes of up to 20 digits, two hashes, three spaces and '\n'. */
#define HEADER_MAX (sizeof(MAGIC) - 1 + 20 + 1 + 20 + 1 + HEX + 1 + HEX + 1)
#define FILE_MAX (HEADER_MAX + ML_CONFIG_STORE_VERSION_MAX + 1 + CONFIG_ML_MAX_CONFIG_BYTES)

static int sys_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int sys_fstat(int fd, struct stat *st)
{
    return fstat(fd, st);
}

static int sys_mkdir(const char *path, mode_t mode)
{
    return mkdir(path, mode);
}

static ssize_t sys_getrandom(void *buf, size_t n, unsigned int flags)
{
    return getrandom(buf, n, flags);
}

const struct ml_store_ops ml_store_ops_posix = {
    .open = sys_open,
    .read = read,
    .write = write,
    .fsync = fsync,
    .close = close,
    .rename = rename,
    .link = link,
    .unlink = unlink,
    .fstat = sys_fstat,
    .mkdir = sys_mkdir,
    .getrandom = sys_getrandom,
};

static int path_of(char *buf, const char *dir, const char *name)
{
    int k = snprintf(buf, PATH_MAX, "%s/%s", dir, name);

    return k < 0 || k >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int write_all(const struct ml_store_ops *ops, int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t k = ops->write(fd, c, n);

        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (k == 0) {
            return -EIO;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Makes dir's entries (a rename, an unlink) durable. */
static int sync_dir(const struct ml_store_ops *ops, const char *dir)
{
    int fd = ops->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    int rv = 0;

    if (fd < 0) {
        return -errno;
    }
    if (ops->fsync(fd) < 0) {
        rv = -errno;
    }
    ops->close(fd); /* nothing was written through it: nothing to lose */
    return rv;
}

static int unlink_if_there(const struct ml_store_ops *ops, const char *path)
{
    return ops->unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* splitmix64: spreads the fallback's few changing bits over the whole suffix. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* n random bytes for try number `try` of a temporary name. Without the kernel's random source
 * (no entropy yet at early boot: GRND_NONBLOCK fails), the time, the pid and the try number:
 * unpredictable enough for a name, and O_EXCL keeps the save safe even when guessed. */
static void random_bytes(const struct ml_store_ops *ops, uint8_t *b, size_t n, int try)
{
    struct timespec ts;
    uint64_t x;

    if (ops->getrandom(b, n, GRND_NONBLOCK) == (ssize_t)n) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    x = mix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
        mix64(((uint64_t)getpid() << 16) ^ (uint64_t)try);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            x = mix64(x);
        }
        b[i] = (uint8_t)(x >> (8 * (i % 8)));
    }
}

/* Creates a new temporary file in dir, path[PATH_MAX] its name, *fd_out open for writing.
 * O_EXCL | O_NOFOLLOW: a name that exists (a planted link, a FIFO, a leftover) is never opened;
 * another random name is tried instead. */
static int create_tmp(const struct ml_store_ops *ops, const char *dir, char *path, int *fd_out)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    char name[sizeof(TMP_PREFIX) + 1 + TMP_SUFFIX_CHARS];
    uint8_t r[TMP_SUFFIX_CHARS];
    int rv, fd;

    for (int try = 0; try < ML_CONFIG_STORE_TMP_TRIES; try++) {
        random_bytes(ops, r, sizeof(r), try);
        memcpy(name, TMP_PREFIX "-", sizeof(TMP_PREFIX));
        for (size_t i = 0; i < TMP_SUFFIX_CHARS; i++) {
            name[sizeof(TMP_PREFIX) + i] = chars[r[i] % (sizeof(chars) - 1)]; /* 64: no bias */
        }
        name[sizeof(name) - 1] = '\0';
        if ((rv = path_of(path, dir, name)) < 0) {
            return rv;
        }
        fd = ops->open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *fd_out = fd;
            return 0;
        }
        if (errno != EEXIST) {
            return -errno;
        }
    }
    return -EEXIST;
}

/* true for the names of temporary files: TMP_PREFIX, alone or with a suffix. */
static bool is_tmp_name(const char *name)
{
    size_t n = sizeof(TMP_PREFIX) - 1;

    return strncmp(name, TMP_PREFIX, n) == 0 && (name[n] == '\0' || name[n] == '-');
}

/* Removes the temporary files a crash left in dir, best effort (a name that cannot be removed
 * only takes room). unlink removes a link itself, never what it points at; a directory there is
 * left alone (unlink fails). */
static void remove_stale_tmp(const struct ml_store_ops *ops, const char *dir)
{
    char path[PATH_MAX];
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (is_tmp_name(e->d_name) && path_of(path, dir, e->d_name) == 0) {
            ops->unlink(path);
        }
    }
    closedir(d);
}

/* why = "what: strerror(e)". */
static void why_errno(char *why, size_t cap, const char *what, int e)
{
    if (cap > 0) {
        snprintf(why, cap, "%s: %s", what, strerror(e));
    }
}

int ml_config_store_check_dir(const struct ml_store_ops *ops, const char *dir, char *why,
                              size_t cap)
{
    char tmp[PATH_MAX];
    struct stat st;
    int fd, rv;

    if (ops == NULL) {
        ops = &ml_store_ops_posix;
    }
    if (cap > 0) {
        why[0] = '\0';
    }
    /* 0700: the saved config is nobody else's business, and nobody else's to change. */
    if (ops->mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rv = -errno;
        why_errno(why, cap, "cannot create it", -rv);
        return rv;
    }
    if ((fd = ops->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)) < 0) {
        rv = -errno;
        why_errno(why, cap, "not writable", -rv);
        return rv;
    }
    rv = ops->fstat(fd, &st) < 0 ? -errno : 0;
    ops->close(fd); /* only read through */
    if (rv < 0) {
        why_errno(why, cap, "cannot stat it", -rv);
        return rv;
    }
    if (st.st_uid != geteuid()) {
        if (cap > 0) {
            snprintf(why, cap,
                     "owned by uid %u, not by uid %u that meshlet runs as: refused (its owner "
                     "could replace the saved config or plant links)",
                     (unsigned)st.st_uid, (unsigned)geteuid());
        }
        return -EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        if (cap > 0) {
            snprintf(why, cap,
                     "writable by group or others (mode %04o): refused (they could replace the "
                     "saved config or plant links and FIFOs); chmod go-w it",
                     (unsigned)(st.st_mode & 07777));
        }
        return -EPERM;
    }
    remove_stale_tmp(ops, dir);
    if ((rv = create_tmp(ops, dir, tmp, &fd)) < 0) {
        why_errno(why, cap, "not writable", -rv);
        return rv;
    }
    ops->close(fd);
    if (ops->unlink(tmp) < 0) {
        rv = -errno;
        why_errno(why, cap, "cannot remove a file made there", -rv);
        return rv;
    }
    return 0;
}

int ml_config_store_save(const struct ml_store_ops *ops, const char *dir, const char *version,
                         const char *text, size_t n)
{
    char final[PATH_MAX], tmp[PATH_MAX], prev[PATH_MAX];
    char header[HEADER_MAX + 1], vhex[HEX + 1], thex[HEX + 1];
    size_t vlen = strlen(version);
    bool have_prev = false;
    int fd, k, rv;

    if (ops == NULL) {
        ops = &ml_store_ops_posix;
    }
    if (vlen > ML_CONFIG_STORE_VERSION_MAX) {
        return -EINVAL;
    }
    if (n > CONFIG_ML_MAX_CONFIG_BYTES) {
        return -EFBIG;
    }
    if ((rv = path_of(final, dir, STATE_FILE)) < 0 || (rv = path_of(prev, dir, PREV_FILE)) < 0) {
        return rv;
    }
    ml_sha256_hex(version, vlen, vhex, HEX);
    ml_sha256_hex(text, n, thex, HEX);
    k = snprintf(header, sizeof(header), MAGIC "%zu %zu %s %s\n", vlen, n, vhex, thex);
    if (k < 0 || (size_t)k >= sizeof(header)) {
        return -EINVAL; /* cannot happen: HEADER_MAX is the longest header */
    }

    if ((rv = create_tmp(ops, dir, tmp, &fd)) < 0) {
        return rv;
    }
    if ((rv = write_all(ops, fd, header, (size_t)k)) < 0 ||
        (rv = write_all(ops, fd, version, vlen)) < 0 || (rv = write_all(ops, fd, "\n", 1)) < 0 ||
        (rv = write_all(ops, fd, text, n)) < 0) {
        goto fail_fd;
    }
    if (ops->fsync(fd) < 0) {
        rv = -errno;
        goto fail_fd;
    }
    if (ops->close(fd) < 0) { /* the fd is gone either way (Linux) */
        rv = -errno;
        goto fail_tmp;
    }

    /* Keep the current file under a second name until the new one is durable, to put it back if
     * the directory fsync fails. */
    if ((rv = unlink_if_there(ops, prev)) < 0) {
        goto fail_tmp;
    }
    if (ops->link(final, prev) == 0) {
        have_prev = true;
    } else if (errno != ENOENT && errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS) {
        rv = -errno; /* ENOENT: nothing saved yet; the others: no hard links here */
        goto fail_tmp;
    }

    if (ops->rename(tmp, final) < 0) {
        rv = -errno;
        goto fail_prev;
    }
    if ((rv = sync_dir(ops, dir)) < 0) {
        goto fail_renamed;
    }
    if (have_prev) {
        ops->unlink(prev); /* a leftover is harmless: load never reads it, save replaces it */
    }
    return 0;

fail_renamed:
    /* The new file may or may not be durable; make the old one current again. */
    if (have_prev) {
        ops->rename(prev, final);
    } else {
        ops->unlink(final);
    }
    sync_dir(ops, dir);
    return rv;
fail_fd:
    ops->close(fd);
fail_tmp:
    ops->unlink(tmp);
    return rv;
fail_prev:
    ops->unlink(tmp);
    if (have_prev) {
        ops->unlink(prev);
    }
    return rv;
}

/* Reads all of fd into buf[0..cap); *n_out = bytes read. -EFBIG if there is more than cap. */
static int read_all(const struct ml_store_ops *ops, int fd, char *buf, size_t cap, size_t *n_out)
{
    size_t n = 0;

    for (;;) {
        char extra;
        ssize_t k = n < cap ? ops->read(fd, buf + n, cap - n) : ops->read(fd, &extra, 1);

        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (k == 0) {
            *n_out = n;
            return 0;
        }
        if (n == cap) {
            return -EFBIG;
        }
        n += (size_t)k;
    }
}

/* A decimal size at *p up to the next ' ', at most max. */
static bool parse_size(const char **p, const char *end, size_t max, size_t *out)
{
    size_t v = 0;
    const char *s = *p;

    if (s >= end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end && s[1] != ' ')) {
        return false;
    }
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (size_t)(*s - '0');
        if (v > max) {
            return false;
        }
    }
    if (s >= end || *s != ' ') {
        return false;
    }
    *p = s + 1;
    *out = v;
    return true;
}

/* The file buf[0..n) → version and text offsets, or false when it is not one save wrote. */
static bool parse(const char *buf, size_t n, size_t *voff, size_t *vlen, size_t *toff, size_t *tlen)
{
    const char *p = buf, *nl;
    char hex[HEX + 1];

    nl = memchr(buf, '\n', n < HEADER_MAX ? n : HEADER_MAX);
    if (nl == NULL || (size_t)(nl - buf) < sizeof(MAGIC) - 1 ||
        memcmp(buf, MAGIC, sizeof(MAGIC) - 1) != 0) {
        return false;
    }
    p += sizeof(MAGIC) - 1;
    if (!parse_size(&p, nl, ML_CONFIG_STORE_VERSION_MAX, vlen) ||
        !parse_size(&p, nl, CONFIG_ML_MAX_CONFIG_BYTES, tlen)) {
        return false;
    }
    /* Then exactly "<hex> <hex>\n", and exactly the bytes announced. */
    if (nl - p != HEX + 1 + HEX || p[HEX] != ' ') {
        return false;
    }
    *voff = (size_t)(nl + 1 - buf);
    *toff = *voff + *vlen + 1;
    if (n != *toff + *tlen || buf[*toff - 1] != '\n' || memchr(buf + *voff, '\0', *vlen)) {
        return false;
    }
    ml_sha256_hex(buf + *voff, *vlen, hex, HEX);
    if (memcmp(hex, p, HEX) != 0) {
        return false;
    }
    ml_sha256_hex(buf + *toff, *tlen, hex, HEX);
    return memcmp(hex, p + HEX + 1, HEX) == 0;
}

int ml_config_store_load(const struct ml_store_ops *ops, const char *dir,
                         char version[ML_CONFIG_STORE_VERSION_MAX + 1], char **text_out,
                         size_t *n_out)
{
    char path[PATH_MAX], *buf;
    size_t n = 0, voff, vlen, toff, tlen;
    struct stat st;
    int fd, rv;

    *text_out = NULL;
    *n_out = 0;
    version[0] = '\0';
    if (ops == NULL) {
        ops = &ml_store_ops_posix;
    }
    if ((rv = path_of(path, dir, STATE_FILE)) < 0) {
        return rv;
    }
    /* O_NOFOLLOW: a link is not read through (-ELOOP); O_NONBLOCK: opening a FIFO returns at
     * once, and fstat then refuses anything but a regular file before a read could block. */
    if ((fd = ops->open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0)) < 0) {
        return -errno;
    }
    if (ops->fstat(fd, &st) < 0) {
        rv = -errno;
        goto fail_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        rv = -EINVAL;
        goto fail_fd;
    }
    if ((buf = ml_malloc(FILE_MAX + 1)) == NULL) {
        rv = -ENOMEM;
        goto fail_fd;
    }
    if ((rv = read_all(ops, fd, buf, FILE_MAX, &n)) < 0) {
        goto fail_buf;
    }
    ops->close(fd);
    if (!parse(buf, n, &voff, &vlen, &toff, &tlen)) {
        ml_free(buf);
        return -EBADMSG;
    }
    memcpy(version, buf + voff, vlen);
    version[vlen] = '\0';
    memmove(buf, buf + toff, tlen);
    buf[tlen] = '\0';
    *text_out = buf;
    *n_out = tlen;
    return 0;

fail_buf:
    ml_free(buf);
fail_fd:
    ops->close(fd);
    return rv;
}

int ml_config_store_reset(const struct ml_store_ops *ops, const char *dir)
{
    static const char *const names[] = {STATE_FILE, PREV_FILE};
    char path[PATH_MAX];
    int rv;

    if (ops == NULL) {
        ops = &ml_store_ops_posix;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((rv = path_of(path, dir, names[i])) < 0 || (rv = unlink_if_there(ops, path)) < 0) {
            return rv;
        }
    }
    remove_stale_tmp(ops, dir);
    rv = sync_dir(ops, dir);
    return rv == -ENOENT ? 0 : rv;
}

const char *ml_config_store_strerror(int rv)
{
    switch (rv) {
    case -EBADMSG:
        return "torn or garbled";
    case -ELOOP:
        return STATE_FILE " is a symbolic link: not followed";
    case -EINVAL:
        return STATE_FILE " is not a regular file (a FIFO, a device, a directory): not read";
    default:
        return strerror(-rv);
    }
}
