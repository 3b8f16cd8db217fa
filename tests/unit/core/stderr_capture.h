/* What the log tests (log_test.c, log_syslog_test.c) share: stderr caught in a temporary file
 * between capture_start and capture_end, which returns what was written. One capture at a time
 * per test executable. */
#ifndef ML_TEST_STDERR_CAPTURE_H
#define ML_TEST_STDERR_CAPTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

/* What a capture keeps, at most, with its NUL: a test's lines are far shorter. */
#define CAPTURE_MAX 16384

static int saved_fd = -1;
static FILE *capture;

static inline void capture_start(void)
{
    fflush(stderr);
    capture = tmpfile();
    assert_non_null(capture);
    saved_fd = dup(STDERR_FILENO);
    assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);
}

/* stderr back where it was; what was written meanwhile (a static buffer, until the next call). */
static inline const char *capture_end(void)
{
    static char text[CAPTURE_MAX];
    size_t n;

    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    rewind(capture);
    n = fread(text, 1, sizeof(text) - 1, capture);
    text[n] = '\0';
    fclose(capture);
    return text;
}

#endif
