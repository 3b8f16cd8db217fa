/* core/loop.c, posts: work another thread hands to the loop runs there exactly once; a post
 * cancelled before the loop takes it never runs (its owner may free it at once), and cancelling a
 * post that is not queued is a no-op. */
#include "core/loop.h"

#include "core/list.h"
#include "core/loop_int.h" /* the post queue, and ->stop to run the loop again */
#include "core/timer.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void count(void *user)
{
    (*(int *)user)++;
}

static void stop_loop(void *user)
{
    ml_loop_stop(user);
}

/* Runs the loop for ms (posts run each time lws_service returns). */
static void spin(struct ml_loop *loop, uint32_t ms)
{
    struct ml_timer *t = ml_timer_new(loop, stop_loop, loop);

    assert_non_null(t);
    loop->stop = 0;
    ml_timer_arm(t, ms);
    assert_int_equal(ml_loop_run(loop), 0);
    ml_timer_free(t);
}

struct poster {
    struct ml_loop *loop;
    struct ml_loop_post *post;
};

static void *post_from_thread(void *arg)
{
    struct poster *p = arg;

    ml_loop_post(p->loop, p->post);
    return NULL;
}

static void test_post_from_another_thread_runs_once_on_the_loop(void **state)
{
    struct ml_loop *loop = ml_loop_new();
    int runs = 0;
    struct ml_loop_post post = {.fn = count, .user = &runs};
    struct poster p = {loop, &post};
    pthread_t th;

    (void)state;
    assert_non_null(loop);
    assert_int_equal(pthread_create(&th, NULL, post_from_thread, &p), 0);
    pthread_join(th, NULL);
    assert_int_equal(runs, 0); /* only the loop runs it */
    spin(loop, 20);
    assert_int_equal(runs, 1);
    spin(loop, 20);
    assert_int_equal(runs, 1);
    ml_loop_post_cancel(loop, &post); /* taken and run already: a no-op */
    ml_loop_free(loop);
}

/* The shape of a shutdown: the worker posted, then was joined; its owner cancels and frees the
 * post before the loop runs again (a drain). */
static void test_cancelled_post_never_runs(void **state)
{
    struct ml_loop *loop = ml_loop_new();
    int runs = 0, other_runs = 0;
    struct ml_loop_post *post = calloc(1, sizeof(*post));
    struct ml_loop_post other = {.fn = count, .user = &other_runs};
    struct poster p = {loop, post};
    pthread_t th;

    (void)state;
    assert_non_null(loop);
    assert_non_null(post);
    post->fn = count;
    post->user = &runs;
    ml_loop_post_cancel(loop, post); /* never posted: a no-op */
    assert_int_equal(pthread_create(&th, NULL, post_from_thread, &p), 0);
    pthread_join(th, NULL);
    ml_loop_post(loop, &other); /* queued behind it: stays queued */
    ml_loop_post_cancel(loop, post);
    ml_loop_post_cancel(loop, post); /* twice: a no-op */
    free(post);                      /* under ASan a run after this is a use after free */
    spin(loop, 20);
    assert_int_equal(runs, 0);
    assert_int_equal(other_runs, 1);
    assert_true(ml_list_empty(&loop->posts));
    ml_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_from_another_thread_runs_once_on_the_loop),
        cmocka_unit_test(test_cancelled_post_never_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
