/* The last-known-good configuration in state_dir (runtime/fleet/README.md "Which configuration
 * runs"): the INI text of the last config applied successfully, with its version, kept so that a
 * node that restarts (or loses power at any instant) runs either the old or the new one, never a
 * torn one.
 *
 * One file, DIR/config.state: a header line, the version, '\n', the text:
 *
 *     meshlet-state 1 <version bytes> <text bytes> <sha256(version) hex> <sha256(text) hex>\n
 *
 * One file so that one rename() replaces text and version together: two files could pair a new
 * text with an old version after a crash between two renames. The hashes catch a file garbled
 * underneath us (a filesystem that did not keep its promises, a hand edit); load never returns a
 * half config.
 *
 * Save: write a new temporary file DIR/.config.state.tmp-XXXXXXXX (a random suffix, created with
 * O_CREAT | O_EXCL, so nothing that is already there is followed or truncated), fsync it,
 * hard-link the current file to DIR/.config.state.prev, rename the temporary over
 * DIR/config.state, fsync DIR. If the directory
 * fsync fails, the previous file is renamed back (best effort), so a save that returns an error
 * leaves the previous config in place: the caller Nacks and keeps running it, and a restart must
 * not bring up the config that was refused. (Where hard links are not supported, e.g. vfat, that
 * one rollback is not possible; everything else holds.)
 *
 * state_dir is not trusted blindly: root writes there, so a link an unprivileged user plants must
 * not redirect a write, and a FIFO must not hang the start. ml_config_store_check_dir refuses a
 * directory another user owns or group/others may write; config.state is opened with O_NOFOLLOW
 * and O_NONBLOCK and read only when it is a regular file.
 *
 * Every file syscall goes through struct ml_store_ops, so tests can make each step fail in turn
 * (only the listing of stale temporary files reads the directory directly). The functions block
 * (fsync): call them where blocking is allowed (start-up, or off the loop). */
#ifndef ML_CONFIG_STORE_H
#define ML_CONFIG_STORE_H

#include <stddef.h>
#include <sys/types.h>

/* The longest version kept, in bytes (the fleet protocol's bound, runtime/fleet/fleet.options). */
#define ML_CONFIG_STORE_VERSION_MAX 128

/* Names tried for a new temporary file before a save gives up with -EEXIST: each is a fresh
 * random suffix, so only files planted under every one of them (or a broken random source) stop
 * a save. */
#define ML_CONFIG_STORE_TMP_TRIES 16

struct stat;

/* POSIX semantics: -1 and errno on failure. */
struct ml_store_ops {
    int (*open)(const char *path, int flags, mode_t mode);
    ssize_t (*read)(int fd, void *buf, size_t n);
    ssize_t (*write)(int fd, const void *buf, size_t n);
    int (*fsync)(int fd);
    int (*close)(int fd);
    int (*rename)(const char *from, const char *to);
    int (*link)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*fstat)(int fd, struct stat *st);
    int (*mkdir)(const char *path, mode_t mode);
    /* getrandom(2): the temporary files' suffixes. On failure a suffix is made from the time,
     * the pid and a counter instead: O_EXCL keeps a save safe either way. */
    ssize_t (*getrandom)(void *buf, size_t n, unsigned int flags);
};

/* The real syscalls; every function below takes ops == NULL to mean these. */
extern const struct ml_store_ops ml_store_ops_posix;

/* Makes dir fit to keep the saved config, at start: creates it (mode 0700) when missing; refuses
 * it when it is not a directory, when its owner is not the effective uid, or when group or others
 * may write it (they could plant links or FIFOs, or replace the saved config); checks a file can
 * be made there (a temporary one, removed); removes the temporary files of saves a crash cut
 * short (unlink: a planted link goes, what it points at stays). Returns 0; or -EPERM (owner,
 * mode), -ENOTDIR, or the errno of the step that failed, with the reason (one line, no dir
 * prefix) in why[0..cap). */
int ml_config_store_check_dir(const struct ml_store_ops *ops, const char *dir, char *why,
                              size_t cap);

/* Saves text[0..n) and version (NUL-terminated, at most ML_CONFIG_STORE_VERSION_MAX bytes) in dir
 * (which must exist). Returns 0 once both are durable; -EINVAL (version too long), -EFBIG (n over
 * CONFIG_ML_MAX_CONFIG_BYTES), -ENAMETOOLONG, -EEXIST (no free temporary name in
 * ML_CONFIG_STORE_TMP_TRIES), or the errno of the step that failed (-ENOSPC, -EIO, -EACCES, ...),
 * and then the previous saved config is what load returns. A symbolic link or FIFO as
 * config.state is replaced, never followed or opened. */
int ml_config_store_save(const struct ml_store_ops *ops, const char *dir, const char *version,
                         const char *text, size_t n);

/* Loads the saved config of dir: version into version[ML_CONFIG_STORE_VERSION_MAX + 1], the text
 * into a new NUL-terminated buffer *text_out (freed with ml_free) of *n_out bytes. Returns 0;
 * -ENOENT when nothing is saved; -EBADMSG when the file is torn or garbled (wrong header, sizes or
 * hashes: nothing is returned); -EFBIG when larger than any file save writes; -ELOOP when
 * config.state is a symbolic link (not followed); -EINVAL when it is not a regular file (a FIFO,
 * a device, a directory: not read, so a FIFO does not block); -ENOMEM; or the errno of
 * open/read. */
int ml_config_store_load(const struct ml_store_ops *ops, const char *dir,
                         char version[ML_CONFIG_STORE_VERSION_MAX + 1], char **text_out,
                         size_t *n_out);

/* Removes the saved config (--reset-state) and any temporary file: 0 also when there was none;
 * or an errno. */
int ml_config_store_reset(const struct ml_store_ops *ops, const char *dir);

/* Why load returned rv, for a log line: the store's own reasons (-EBADMSG, -ELOOP,
 * -EINVAL) in words, else strerror. Static storage. */
const char *ml_config_store_strerror(int rv);

#endif
