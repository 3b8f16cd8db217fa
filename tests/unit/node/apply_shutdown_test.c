/* node/apply.c at stop: SIGTERM while a save is in progress. The worker thread saves, then posts
 * its completion (on_saved) to the loop; ml_node_apply_shutdown joins the worker and frees the
 * job. The post must be gone from the loop's queue by then: the drain runs the loop again, and a
 * post left queued would run on_saved on the freed job (a use after free, which ASan shows:
 * build/asan). Saves are held in fsync by store ops that wait for the test. */
#include "node/node_int.h"

#include "config/errors.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"
#include "config/store.h"
#include "core/list.h"
#include "core/loop.h"
#include "core/loop_int.h" /* the post queue, and ->stop to run the loop again */
#include "core/timer.h"
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- a store whose fsync waits until the test lets it go ----------------------------------- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool in_fsync; /* a save is held in fsync */
static bool open_gate;

static int held_fsync(int fd)
{
    pthread_mutex_lock(&gate_lock);
    in_fsync = true;
    pthread_cond_broadcast(&gate_cond);
    while (!open_gate) {
        pthread_cond_wait(&gate_cond, &gate_lock);
    }
    pthread_mutex_unlock(&gate_lock);
    return fsync(fd);
}

static void wait_for_held_save(void)
{
    pthread_mutex_lock(&gate_lock);
    while (!in_fsync) {
        pthread_cond_wait(&gate_cond, &gate_lock);
    }
    pthread_mutex_unlock(&gate_lock);
}

static void let_saves_go(void)
{
    pthread_mutex_lock(&gate_lock);
    open_gate = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static struct ml_store_ops held_ops;

/* ---- a node with a real loop and proxy (no admin, no fleet) -------------------------------- */

static unsigned free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int config_text(char *text, size_t cap, const char *dir, unsigned port)
{
    return snprintf(text, cap,
                    "[node]\nstate_dir = %s\n[listener l]\nbind = 127.0.0.1:%u\n"
                    "[route r]\nlistener = l\nto = c\n[cluster c]\nendpoint = 127.0.0.1:1\n",
                    dir, port);
}

struct fixture {
    char dir[64];
    struct ml_node node;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct ml_config_errors errs;
    char text[512], why[256];
    int n;

    if (f == NULL) {
        return -1;
    }
    strcpy(f->dir, "/tmp/ml-apply-shutdown-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    held_ops = ml_store_ops_posix;
    held_ops.fsync = held_fsync;
    in_fsync = open_gate = false;

    n = config_text(text, sizeof(text), f->dir, free_port());
    ml_config_errors_init(&errs);
    if (ml_config_load_text(text, (size_t)n, NULL, &errs, &f->node.snap) < 0) {
        return -1;
    }
    ml_config_errors_deinit(&errs);
    ml_list_init(&f->node.queue);
    f->node.config_path = "test.ini";
    f->node.state_dir = f->dir;
    f->node.store_ops = &held_ops;
    if ((f->node.loop = ml_loop_new()) == NULL ||
        ml_proxy_new(f->node.loop, f->node.snap, why, sizeof(why), &f->node.proxy) < 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    let_saves_go();
    ml_node_apply_shutdown(&f->node);
    ml_proxy_free(f->node.proxy);
    ml_loop_free(f->node.loop);
    ml_snapshot_unref(f->node.snap);
    ml_config_store_reset(NULL, f->dir);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void stop_loop(void *user)
{
    ml_loop_stop(user);
}

static void spin(struct ml_loop *loop, uint32_t ms)
{
    struct ml_timer *t = ml_timer_new(loop, stop_loop, loop);

    assert_non_null(t);
    loop->stop = 0;
    ml_timer_arm(t, ms);
    assert_int_equal(ml_loop_run(loop), 0);
    ml_timer_free(t);
}

static bool posts_queued(struct ml_loop *loop)
{
    bool yes;

    pthread_mutex_lock(&loop->posts_lock);
    yes = !ml_list_empty(&loop->posts);
    pthread_mutex_unlock(&loop->posts_lock);
    return yes;
}

/* The apply the other test interrupts, run to its end: the worker's post switches the config. */
static void test_held_save_then_commits(void **state)
{
    struct fixture *f = *state;
    char text[512], before[sizeof(f->node.snap->version)];
    int n = config_text(text, sizeof(text), f->dir, free_port());

    snprintf(before, sizeof(before), "%s", f->node.snap->version);
    ml_node_apply(&f->node, ML_APPLY_FILE, text, (size_t)n, NULL, 0, 0);
    wait_for_held_save();
    assert_non_null(f->node.current);
    let_saves_go();
    for (int i = 0; i < 100 && f->node.current != NULL; i++) {
        spin(f->node.loop, 10);
    }
    assert_null(f->node.current);
    assert_int_equal(f->node.applies_total, 1);
    assert_string_not_equal(f->node.snap->version, before);
}

/* SIGTERM during the save: the worker finishes and posts, shutdown joins and frees the job, and
 * the drain runs the loop again. */
static void test_shutdown_after_worker_posted_drops_its_post(void **state)
{
    struct fixture *f = *state;
    char text[512], before[sizeof(f->node.snap->version)];
    int n = config_text(text, sizeof(text), f->dir, free_port());

    snprintf(before, sizeof(before), "%s", f->node.snap->version);
    ml_node_apply(&f->node, ML_APPLY_FILE, text, (size_t)n, NULL, 0, 0);
    wait_for_held_save();
    let_saves_go();
    ml_node_apply_shutdown(&f->node); /* joins: the worker has posted by its return */
    assert_null(f->node.current);
    assert_false(posts_queued(f->node.loop)); /* before the fix: on_saved was still queued */
    spin(f->node.loop, 20);                   /* the drain (before the fix, ASan: UAF here) */
    assert_int_equal(f->node.applies_total, 0);
    assert_string_equal(f->node.snap->version, before); /* the running config stays */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_held_save_then_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_after_worker_posted_drops_its_post, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
