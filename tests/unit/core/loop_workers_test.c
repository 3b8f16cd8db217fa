/* core/loop.c with several loops ([node] workers): a watched signal runs the watch of every loop
 * that watches it, once per arrival, whichever loop looks first (one loop taking the signal from
 * the others would leave a worker's access log unreopened after SIGUSR1); a follower loop is not
 * ended by SIGTERM, only by ml_loop_stop, which another thread may call. */
#include "core/loop.h"

#include "core/loop_int.h" /* ->stop, to run a loop again */
#include "core/timer.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void stop_loop(void *user)
{
    ml_loop_stop(user);
}

/* Runs the loop for ms (signal watches run each time lws_service returns). */
static void spin(struct ml_loop *loop, uint32_t ms)
{
    struct ml_timer *t = ml_timer_new(loop, stop_loop, loop);

    assert_non_null(t);
    loop->stop = 0;
    ml_timer_arm(t, ms);
    assert_int_equal(ml_loop_run(loop), 0);
    ml_timer_free(t);
}

static void count_signal(void *user, int sig)
{
    (void)sig;
    (*(int *)user)++;
}

static void test_every_watching_loop_sees_each_signal_once(void **state)
{
    struct ml_loop *a = ml_loop_new(), *b = ml_loop_new();
    int seen_a = 0, seen_b = 0;

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ml_loop_watch_signal(a, SIGUSR1, count_signal, &seen_a), 0);
    assert_int_equal(ml_loop_watch_signal(b, SIGUSR1, count_signal, &seen_b), 0);
    raise(SIGUSR1);
    spin(a, 20);
    spin(b, 20);
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_b, 1); /* a looked first and b still saw it */
    spin(a, 20);
    spin(b, 20);
    assert_int_equal(seen_a + seen_b, 2); /* once per arrival */
    raise(SIGUSR1);
    raise(SIGUSR1);
    spin(b, 20);
    spin(a, 20);
    assert_true(seen_a >= 2 && seen_b >= 2);
    /* b unwatches: a still watches, so the disposition stays ours (no default: no death) */
    ml_loop_unwatch_signal(b, SIGUSR1);
    raise(SIGUSR1);
    spin(a, 20);
    assert_true(seen_a >= 3);
    ml_loop_unwatch_signal(a, SIGUSR1);
    ml_loop_free(b);
    ml_loop_free(a);
}

static void *stop_later(void *arg)
{
    usleep(50 * 1000);
    ml_loop_stop(arg);
    return NULL;
}

static void test_a_follower_is_stopped_by_ml_loop_stop_not_by_sigterm(void **state)
{
    struct ml_loop *main_loop = ml_loop_new(), *follower = ml_loop_new();
    pthread_t t;

    (void)state;
    assert_non_null(main_loop);
    assert_non_null(follower);
    ml_loop_set_follower(follower);
    raise(SIGTERM); /* the handler only sets a flag: the main loop takes it */
    assert_int_equal(pthread_create(&t, NULL, stop_later, follower), 0);
    assert_int_equal(ml_loop_run(follower), 0); /* returns only once the thread stops it */
    assert_int_equal(ml_loop_signal(follower), 0);
    pthread_join(t, NULL);
    assert_int_equal(ml_loop_pending_signal(), SIGTERM);
    assert_int_equal(ml_loop_run(main_loop), 0);
    assert_int_equal(ml_loop_signal(main_loop), SIGTERM);
    assert_int_equal(ml_loop_pending_signal(), 0); /* taken */
    ml_loop_free(follower);
    ml_loop_free(main_loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_watching_loop_sees_each_signal_once),
        cmocka_unit_test(test_a_follower_is_stopped_by_ml_loop_stop_not_by_sigterm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
