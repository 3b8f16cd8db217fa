/* meshlet's command line: which job this process does.
 *
 *   meshlet [-c FILE] [--reset-state]     run the node (default FILE: /etc/meshlet/meshlet.ini)
 *   meshlet check [--defaults] FILE       check a config; exit 0 usable, 1 invalid, 2 unreadable
 *   meshlet version                       version, board, features, libraries
 *   meshlet controller ...                the fleet controller (not in this version yet)
 */
#include "admin/admin.h"
#include "config/defaults.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "controller/controller.h"
#include "core/build_info.h"
#include "core/log.h"
#include "core/loop.h"
#include "grpc/pb_version.h"
#include "h2/h2_version.h"
#include "proxy/proxy.h"
#include "tls/tls_version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit codes of CONFIG.md. */
enum {
    EXIT_USABLE = 0,
    EXIT_INVALID = 1,
    EXIT_UNREADABLE = 2,
    EXIT_CANNOT_START = 3,
};

#define DEFAULT_CONFIG_PATH "/etc/meshlet/meshlet.ini"

static void usage(FILE *out)
{
    fprintf(out, "usage: meshlet [-c FILE] [--reset-state]   run the node (default FILE: %s)\n"
                 "       meshlet check [--defaults] FILE     check a config (exit 0 usable, 1 "
                 "invalid, 2 unreadable)\n"
                 "       meshlet version                     version, board, features, libraries\n"
                 "       meshlet controller --listen HOST:PORT --configs DIR [--cert FILE --key "
                 "FILE [--ca FILE]]\n"
                 "                                           the fleet controller\n",
            DEFAULT_CONFIG_PATH);
}

static int cmd_version(void)
{
    printf("meshlet %s\n", ml_build_version());
    printf("board: %s\n", ml_build_board());
    printf("features:");
    for (const char *const *f = ml_build_features(); *f; f++) {
        printf(" %s", *f);
    }
    printf("\nlibraries: %s, %s, %s, %s, inih r%s\n", ml_loop_library_version(),
           ml_tls_library_version(), ml_h2_library_version(), ml_pb_library_version(),
           ML_INIH_VERSION);
    return 0;
}

/* Loads path; on failure prints every error on stderr and returns the exit code. */
static int load_or_report(const char *path, struct ml_snapshot **out)
{
    struct ml_config_errors errs;
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_file(path, &errs, out);
    if (rv < 0) {
        ml_config_errors_print(&errs, path, stderr);
        if (rv == -ENOMEM && ml_config_errors_count(&errs) == 0) {
            fprintf(stderr, "%s: out of memory while checking\n", path);
        }
    }
    ml_config_errors_deinit(&errs);
    if (rv == 0) {
        return EXIT_USABLE;
    }
    return rv == -EINVAL ? EXIT_INVALID : EXIT_UNREADABLE;
}

static int cmd_check(int argc, char **argv)
{
    struct ml_snapshot *snap;
    char summary[160];
    int rv;

    if (argc == 2 && strcmp(argv[1], "--defaults") == 0) {
        ml_config_print_defaults(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: meshlet check FILE | meshlet check --defaults\n");
        return EXIT_UNREADABLE;
    }
    if ((rv = load_or_report(argv[1], &snap)) != EXIT_USABLE) {
        return rv;
    }
    ml_snapshot_summary(snap, summary, sizeof(summary));
    printf("%s: ok, version %s: %s\n", argv[1], snap->version, summary);
    ml_snapshot_unref(snap);
    return EXIT_USABLE;
}

/* state_dir must exist (it is made if missing) and take a file: the node keeps its last good
 * config there. Returns 0 or -errno, with the reason on stderr. */
static int check_state_dir(const char *dir)
{
    char probe[4096];
    int fd;

    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        int e = errno;
        fprintf(stderr, "meshlet: state_dir %s: cannot create it: %s\n", dir, strerror(e));
        return -e;
    }
    snprintf(probe, sizeof(probe), "%s/.meshlet-write-test", dir);
    fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        fprintf(stderr, "meshlet: state_dir %s: not writable: %s\n", dir, strerror(e));
        return -e;
    }
    close(fd);
    unlink(probe);
    return 0;
}

static int cmd_run(const char *path)
{
    struct ml_snapshot *snap;
    struct ml_proxy *proxy;
    struct ml_admin *admin;
    struct ml_loop *loop;
    char summary[160], why[256];
    int rv;

    if ((rv = load_or_report(path, &snap)) != EXIT_USABLE) {
        return rv;
    }
    ml_log_level = snap->node.log_level;
    if (check_state_dir(snap->node.state_dir) < 0) {
        ml_snapshot_unref(snap);
        return EXIT_CANNOT_START;
    }
    if ((loop = ml_loop_new()) == NULL) {
        ml_snapshot_unref(snap);
        return EXIT_CANNOT_START;
    }
    if (ml_proxy_new(loop, snap, why, sizeof(why), &proxy) < 0) {
        fprintf(stderr, "meshlet: %s\n", why);
        ml_loop_free(loop);
        ml_snapshot_unref(snap);
        return EXIT_CANNOT_START;
    }
    if (ml_admin_new(loop, proxy, why, sizeof(why), &admin) < 0) {
        fprintf(stderr, "meshlet: %s\n", why);
        ml_proxy_free(proxy);
        ml_loop_free(loop);
        ml_snapshot_unref(snap);
        return EXIT_CANNOT_START;
    }
    ml_snapshot_summary(snap, summary, sizeof(summary));
    ML_LOG_INF("node %s: running %s (version %s): %s", snap->node.id, path, snap->version, summary);
    rv = ml_loop_run(loop);
    if (rv == 0 && ml_loop_signal(loop) == SIGTERM && snap->node.drain_timeout_ms > 0) {
        /* Drain: GOAWAY everywhere, calls in flight finish (within drain_timeout); a second
         * SIGTERM or SIGINT ends the wait. */
        ml_proxy_drain(proxy, snap->node.drain_timeout_ms);
        rv = ml_loop_run(loop);
    }
    /* Stop: what is left of the connections and calls ends now. */
    ml_admin_free(admin);
    ml_proxy_free(proxy);
    ml_loop_free(loop);
    ml_snapshot_unref(snap);
    ML_LOG_INF("stopped");
    return rv < 0 ? EXIT_CANNOT_START : 0;
}

int main(int argc, char **argv)
{
    const char *config_path = DEFAULT_CONFIG_PATH;

    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        return cmd_version();
    }
    if (argc >= 2 && strcmp(argv[1], "check") == 0) {
        return cmd_check(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "controller") == 0) {
#ifdef CONFIG_ML_CONTROLLER
        return ml_controller_main(argc - 1, argv + 1);
#else
        fprintf(stderr, "meshlet controller: not in this build (CONFIG_ML_CONTROLLER is off)\n");
        return EXIT_UNREADABLE;
#endif
    }
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--reset-state") == 0) {
            /* state_dir holds no pushed config before the fleet client exists: nothing to drop */
        } else {
            fprintf(stderr, "meshlet: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return EXIT_UNREADABLE;
        }
    }
    return cmd_run(config_path);
}
