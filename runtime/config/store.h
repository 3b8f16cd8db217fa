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
 * Save: write DIR/.config.state.tmp, fsync it, hard-link the current file to
 * DIR/.config.state.prev, rename the temporary over DIR/config.state, fsync DIR. If the directory
 * fsync fails, the previous file is renamed back (best effort), so a save that returns an error
 * leaves the previous config in place: the caller Nacks and keeps running it, and a restart must
 * not bring up the config that was refused. (Where hard links are not supported, e.g. vfat, that
 * one rollback is not possible; everything else holds.)
 *
 * Every syscall goes through struct ml_store_ops, so tests can make each step fail in turn. The
 * functions block (fsync): call them where blocking is allowed (start-up, or off the loop). */
#ifndef ML_CONFIG_STORE_H
#define ML_CONFIG_STORE_H

#include <stddef.h>
#include <sys/types.h>

/* The longest version kept, in bytes (the fleet protocol's bound, runtime/fleet/fleet.options). */
#define ML_CONFIG_STORE_VERSION_MAX 128

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
};

/* The real syscalls; every function below takes ops == NULL to mean these. */
extern const struct ml_store_ops ml_store_ops_posix;

/* Saves text[0..n) and version (NUL-terminated, at most ML_CONFIG_STORE_VERSION_MAX bytes) in dir
 * (which must exist). Returns 0 once both are durable; -EINVAL (version too long), -EFBIG (n over
 * CONFIG_ML_MAX_CONFIG_BYTES), -ENAMETOOLONG, or the errno of the step that failed (-ENOSPC,
 * -EIO, -EACCES, ...), and then the previous saved config is what load returns. */
int ml_config_store_save(const struct ml_store_ops *ops, const char *dir, const char *version,
                         const char *text, size_t n);

/* Loads the saved config of dir: version into version[ML_CONFIG_STORE_VERSION_MAX + 1], the text
 * into a new NUL-terminated buffer *text_out (freed with ml_free) of *n_out bytes. Returns 0;
 * -ENOENT when nothing is saved; -EBADMSG when the file is torn or garbled (wrong header, sizes or
 * hashes: nothing is returned); -EFBIG when larger than any file save writes; -ENOMEM; or the
 * errno of open/read. */
int ml_config_store_load(const struct ml_store_ops *ops, const char *dir,
                         char version[ML_CONFIG_STORE_VERSION_MAX + 1], char **text_out,
                         size_t *n_out);

/* Removes the saved config (--reset-state): 0 also when there was none; or an errno. */
int ml_config_store_reset(const struct ml_store_ops *ops, const char *dir);

#endif
