/* core/log.c's sinks on a device: log_target = syslog (one RFC 3164 datagram per entry with its
 * level's priority, one line whatever the message holds; an unreachable socket said once on
 * stderr, the entries there instead) and the journal's <N> prefixes when stderr is the journal. */
#include "core/log.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "stderr_capture.h"

static int count(const char *s, const char *what)
{
    int n = 0;

    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what)) {
        n++;
    }
    return n;
}

static int syslog_open(char *path, size_t cap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    snprintf(path, cap, "/tmp/ml-log-syslog-test-%ld.sock", (long)getpid());
    unlink(path);
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setenv(ML_LOG_SYSLOG_PATH_ENV, path, 1);
    return fd;
}

static const char *syslog_recv(int fd)
{
    static char buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    buf[n < 0 ? 0 : n] = '\0';
    return buf;
}

/* "<PRI>Mmm dd hh:mm:ss meshlet[PID]: " → PRI, and *msg past the tag; -1 if not that shape. */
static int parse(const char *d, const char **msg)
{
    char tag[64];
    int pri, at = 0;

    if (sscanf(d, "<%d>%*3s %*d %*d:%*d:%*d %n", &pri, &at) != 1 || at == 0) {
        return -1;
    }
    snprintf(tag, sizeof(tag), "meshlet[%ld]: ", (long)getpid());
    if (strncmp(d + at, tag, strlen(tag)) != 0) {
        return -1;
    }
    *msg = d + at + strlen(tag);
    return pri;
}

static void test_each_level_is_one_datagram_with_its_priority(void **state)
{
    static const struct {
        int level;
        int pri; /* facility daemon (3 << 3) | severity */
    } cases[] = {{ML_LOG_LEVEL_ERR, 27}, {ML_LOG_LEVEL_WRN, 28}, {ML_LOG_LEVEL_INF, 30}};
    char path[108];
    const char *msg, *out;
    int fd = syslog_open(path, sizeof(path));

    ml_log_target_set(ML_LOG_TARGET_SYSLOG);
    capture_start();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ml_log_write(cases[i].level, "c%u: said \"%s\"", 7u, "a\nb");
        assert_int_equal(parse(syslog_recv(fd), &msg), cases[i].pri);
        assert_string_equal(msg, "c7: said \"a\\x0ab\""); /* one line, no level word, no time */
    }
    out = capture_end();
    assert_string_equal(out, ""); /* all of it went to syslog */
    ml_log_target_set(ML_LOG_TARGET_STDERR);
    close(fd);
    unlink(path);
    unsetenv(ML_LOG_SYSLOG_PATH_ENV);
}

static void test_an_unreachable_syslog_is_said_once_and_entries_go_to_stderr(void **state)
{
    char path[108];
    const char *out, *msg;
    int fd;

    setenv(ML_LOG_SYSLOG_PATH_ENV, "/nonexistent/ml-log-test/dev-log", 1);
    ml_log_target_set(ML_LOG_TARGET_SYSLOG);
    capture_start();
    ml_log_write(ML_LOG_LEVEL_WRN, "first");
    ml_log_write(ML_LOG_LEVEL_INF, "second");
    out = capture_end();
    assert_int_equal(count(out, "log_target = syslog: /nonexistent/ml-log-test/dev-log"), 1);
    assert_non_null(strstr(out, " meshlet warn: first\n"));
    assert_non_null(strstr(out, " meshlet info: second\n"));

    /* syslogd is back: entries go there again, and a later outage is said again. */
    fd = syslog_open(path, sizeof(path));
    capture_start();
    ml_log_write(ML_LOG_LEVEL_INF, "third");
    out = capture_end();
    assert_string_equal(out, "");
    assert_int_equal(parse(syslog_recv(fd), &msg), 30);
    assert_string_equal(msg, "third");
    close(fd);
    unlink(path);
    capture_start();
    ml_log_write(ML_LOG_LEVEL_INF, "fourth");
    out = capture_end();
    assert_int_equal(count(out, "log_target = syslog"), 1);
    assert_non_null(strstr(out, " meshlet info: fourth\n"));
    ml_log_target_set(ML_LOG_TARGET_STDERR);
    unsetenv(ML_LOG_SYSLOG_PATH_ENV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_level_is_one_datagram_with_its_priority),
        cmocka_unit_test(test_an_unreachable_syslog_is_said_once_and_entries_go_to_stderr),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
