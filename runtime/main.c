/* meshlet's command line: which job this process does (config/README.md "Errors and exit codes").
 *
 *   meshlet [-c FILE] [--reset-state]     run the node (default FILE: /etc/meshlet/meshlet.ini)
 *   meshlet check [--defaults] FILE|-     check a config (- reads it from stdin)
 *   meshlet version | --version | -V      version, board, features, libraries
 *   meshlet help | --help | -h            the usage text on stdout
 *   meshlet controller ...                the fleet controller (controller/controller.h)
 *
 * A command line that is not one of these exits EX_USAGE (64) with the usage text on stderr,
 * apart from the codes that speak of the config (1 invalid, 2 unreadable, 3 cannot start).
 */
#include "admin/admin.h"
#include "config/defaults.h"
#include "config/errors.h"
#include "config/lint.h"
#include "config/snapshot.h"
#include "config/stdin.h"
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/* Exit codes of config/README.md. */
enum {
    EXIT_USABLE = 0,
    EXIT_INVALID = 1,
    EXIT_UNREADABLE = 2,
    EXIT_USAGE = EX_USAGE, /* 64: the BSD convention, apart from what the config causes */
};

#define DEFAULT_CONFIG_PATH "/etc/meshlet/meshlet.ini"

/* The FILE of `meshlet check -`, as error lines name it. */
#define STDIN_NAME "-"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: meshlet [-c FILE] [--reset-state]   run the node (default FILE: %s)\n"
            "       meshlet check [--defaults] FILE|-   check a config (- reads stdin): exit 0 "
            "usable,\n"
            "                                           1 invalid, 2 unreadable\n"
            "       meshlet version | --version | -V    version, board, features, libraries\n"
            "       meshlet help | --help | -h          this text\n"
            "       meshlet controller --listen HOST:PORT --configs DIR [--cert FILE --key "
            "FILE [--ca FILE]]\n"
            "                  [--mqtt URL [--mqtt-ca F --mqtt-cert F --mqtt-key F]] "
            "[--admin-token F]\n"
            "                                           the fleet controller (nodes over "
            "WebSockets,\n"
            "                                           or through an MQTT broker)\n"
            "       meshlet fleet status|rollback --controller URL [--ca F [--cert F --key F]]\n"
            "                                           a controller's nodes; roll a version back\n"
            "exit 64: a command line not shown here\n",
            DEFAULT_CONFIG_PATH);
}

/* A command line meshlet does not take: what was wrong, the usage, EX_USAGE. */
static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "meshlet: %s \"%s\"\n", what, arg);
    usage(stderr);
    return EXIT_USAGE;
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

/* Loads path (STDIN_NAME: standard input); on failure prints every error on stderr and returns
 * the exit code. */
static int load_or_report(const char *path, struct ml_snapshot **out)
{
    struct ml_config_errors errs;
    int rv;

    if (strcmp(path, STDIN_NAME) != 0) {
        rv = ml_config_load_file_print(path, stderr, out);
    } else {
        ml_config_errors_init(&errs);
        if ((rv = ml_config_load_fd(STDIN_FILENO, &errs, out)) < 0) {
            ml_config_errors_print(&errs, path, stderr);
            if (rv == -ENOMEM && ml_config_errors_count(&errs) == 0) {
                fprintf(stderr, "%s: out of memory while checking\n", path);
            }
        }
        ml_config_errors_deinit(&errs);
    }
    if (rv == 0) {
        return EXIT_USABLE;
    }
    return rv == -EINVAL ? EXIT_INVALID : EXIT_UNREADABLE;
}

/* Warnings (exit status stays 0) and what this machine cannot give the node (errors: exit 1, as
 * for any error `check` prints), each a FILE:LINE: line on stderr in line order. */
static int report_findings(const struct ml_snapshot *snap, const char *path)
{
    struct ml_config_errors warn, errs;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int rv;

    ml_config_errors_init(&warn);
    ml_config_errors_init(&errs);
    if (snap->node.admin.set && !ml_value_addr_is_loopback(&snap->node.admin)) {
        /* allowed (admin_remote = on, with a token), but worth a look */
        ml_config_errors_add(&warn, snap->node.admin_line,
                             "warning: [node] admin: listens beyond loopback on %s: anyone who "
                             "reaches it can try the token",
                             snap->node.admin.text);
    }
    if (snap->node.workers > 1 && cpus > 0 && snap->node.workers > (unsigned long)cpus) {
        /* allowed (the config may be checked off its board), but loops beyond the cores only
         * take turns on them */
        ml_config_errors_add(&warn, snap->node.workers_line,
                             "warning: [node] workers: %u event loops on %ld online CPUs: more "
                             "than one per core adds switching, not throughput",
                             (unsigned)snap->node.workers, cpus);
    }
    rv = ml_config_lint_unused(snap, &warn);
    rv = rv < 0 ? rv : ml_config_lint_paths(snap, &errs, &warn);
    rv = rv < 0 ? rv : ml_config_lint_certs(snap, &warn);
    rv = rv < 0 ? rv : ml_config_lint_authz(snap, &warn);
    ml_config_errors_sort(&warn);
    ml_config_errors_sort(&errs);
    ml_config_errors_print(&warn, path, stderr);
    ml_config_errors_print(&errs, path, stderr);
    if (rv < 0) {
        fprintf(stderr, "%s: out of memory while checking\n", path);
    }
    rv = rv < 0 || ml_config_errors_count(&errs) > 0 ? EXIT_INVALID : EXIT_USABLE;
    ml_config_errors_deinit(&warn);
    ml_config_errors_deinit(&errs);
    return rv;
}

static int cmd_check(int argc, char **argv)
{
    struct ml_snapshot *snap;
    const char *path;
    char summary[160];
    int rv;

    if (argc == 2 && strcmp(argv[1], "--defaults") == 0) {
        ml_config_print_defaults(stdout);
        return EXIT_USABLE;
    }
    if (argc == 3 && strcmp(argv[1], "--") == 0) {
        path = argv[2]; /* a file whose name starts with '-' */
    } else if (argc == 2 && (argv[1][0] != '-' || strcmp(argv[1], STDIN_NAME) == 0)) {
        path = argv[1];
    } else if (argc < 2) {
        fprintf(stderr, "meshlet check: expected FILE, - or --defaults\n");
        usage(stderr);
        return EXIT_USAGE;
    } else {
        return usage_error("check: unexpected argument", argv[argc == 2 ? 1 : 2]);
    }
    if ((rv = load_or_report(path, &snap)) != EXIT_USABLE) {
        return rv;
    }
    if ((rv = report_findings(snap, path)) == EXIT_USABLE) {
        ml_snapshot_summary(snap, summary, sizeof(summary));
        printf("%s: ok, version %s: %s\n", path, snap->version, summary);
    }
    ml_snapshot_unref(snap);
    return rv;
}

static bool is_any(const char *arg, const char *a, const char *b, const char *c)
{
    return strcmp(arg, a) == 0 || strcmp(arg, b) == 0 || strcmp(arg, c) == 0;
}

int main(int argc, char **argv)
{
    struct ml_node_options run = {.config_path = DEFAULT_CONFIG_PATH};

    if (argc >= 2 && is_any(argv[1], "version", "--version", "-V")) {
        return argc == 2 ? cmd_version() : usage_error("unexpected argument", argv[2]);
    }
    if (argc >= 2 && is_any(argv[1], "help", "--help", "-h")) {
        if (argc != 2) {
            return usage_error("unexpected argument", argv[2]);
        }
        usage(stdout);
        return EXIT_USABLE;
    }
    if (argc >= 2 && strcmp(argv[1], "check") == 0) {
        return cmd_check(argc - 1, argv + 1);
    }
    /* without CONFIG_ML_CONTROLLER: controller/controller_off.c says so and exits EX_USAGE */
    if (argc >= 2 && strcmp(argv[1], "controller") == 0) {
        return ml_controller_main(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "fleet") == 0) {
        return ml_fleet_cli_main(argc - 1, argv + 1);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            run.config_path = argv[++i];
        } else if (strcmp(argv[i], "-c") == 0) {
            return usage_error("expected a FILE after", argv[i]);
        } else if (strcmp(argv[i], "--reset-state") == 0) {
            run.reset_state = true;
        } else {
            return usage_error("unknown argument", argv[i]);
        }
    }
    return ml_node_run(&run);
}
