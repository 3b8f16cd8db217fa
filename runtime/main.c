/* meshlet's command line: which job this process does.
 *
 *   meshlet [-c FILE] [--reset-state]     run the node (default FILE: /etc/meshlet/meshlet.ini)
 *   meshlet check [--defaults] FILE       check a config; exit 0 usable, 1 invalid, 2 unreadable
 *   meshlet version                       version, board, features, libraries
 *   meshlet controller ...                the fleet controller (controller/controller.h)
 */
#include "admin/admin.h"
#include "config/defaults.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "config/value.h"
#include "controller/controller.h"
#include "core/build_info.h"
#include "core/log.h"
#include "core/loop.h"
#include "grpc/pb_version.h"
#include "h2/h2_version.h"
#include "node/node.h"
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

/* Exit codes of config/README.md. */
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
    int rv = ml_config_load_file_print(path, stderr, out);

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
    if (snap->node.admin.set && !ml_value_addr_is_loopback(&snap->node.admin)) {
        /* allowed (admin_remote = on, with a token), but worth a look: exit status stays 0 */
        fprintf(stderr,
                "%s:%d: warning: [node] admin: listens beyond loopback on %s: anyone who reaches "
                "it can try the token\n",
                argv[1], snap->node.admin_line, snap->node.admin.text);
    }
    ml_snapshot_summary(snap, summary, sizeof(summary));
    printf("%s: ok, version %s: %s\n", argv[1], snap->version, summary);
    ml_snapshot_unref(snap);
    return EXIT_USABLE;
}

int main(int argc, char **argv)
{
    struct ml_node_options run = {.config_path = DEFAULT_CONFIG_PATH};

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
    if (argc >= 2 && strcmp(argv[1], "fleet") == 0) {
#ifdef CONFIG_ML_CONTROLLER
        return ml_fleet_cli_main(argc - 1, argv + 1);
#else
        fprintf(stderr, "meshlet fleet: not in this build (CONFIG_ML_CONTROLLER is off)\n");
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
            run.config_path = argv[++i];
        } else if (strcmp(argv[i], "--reset-state") == 0) {
            run.reset_state = true;
        } else {
            fprintf(stderr, "meshlet: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return EXIT_UNREADABLE;
        }
    }
    return ml_node_run(&run);
}
