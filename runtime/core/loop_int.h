/* core/-private: the loop's insides, for the libwebsockets glue (loop.c, sock.c, timer.c). Nothing
 * outside core/ includes this, so libwebsockets stays behind the core/ seam. */
#ifndef ML_CORE_LOOP_INT_H
#define ML_CORE_LOOP_INT_H

#include "core/list-t.h"
#include "core/loop-t.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdbool.h>

struct ml_timers;

struct ml_loop {
    struct lws_context *lws;
    struct lws_vhost *client_vhost; /* sock.c: the vhost of outgoing connections; made on the
                                       first ml_sock_connect, destroyed with the context */
    struct ml_list deferred;        /* ml_loop_defer's queue (struct ml_defer), FIFO */
    bool in_deferred;               /* ml_loop_run_deferred is running */
    int depth; /* lws callbacks (sock.c, timer.c) being handled, nested; deferred work runs
                  when the outermost returns */
    bool in_turn; /* ml_loop_run is inside lws_service: work deferred by socket readiness
                     waits for the turn's end (sock.c), so that one turn's reads share a send */
    int stop;  /* set by ml_loop_stop (atomic: another worker's thread may set it) */
    bool listen_share; /* more than one loop: listeners bind with SO_REUSEPORT (sock.c) */
    bool follower; /* ml_loop_set_follower: SIGINT/SIGTERM do not stop it, ml_loop_stop does */
    uint32_t timer_step_max_ms; /* timer.c: the longest single wait of ml_timer_arm_at; 0 = its
                                   default (49.7 days). Tests lower it to see the steps. */
    struct ml_timers *timers;   /* timer.c: the pending timers (a heap) and their one lws sul;
                                   made by the first ml_timer_new, freed with the last timer */
    int signal;                 /* SIGINT or SIGTERM ended the last ml_loop_run; 0 = none */
    pthread_mutex_t posts_lock; /* guards posts: the one field other threads touch */
    struct ml_list posts;       /* ml_loop_post's queue (struct ml_loop_post), FIFO */
    struct {
        int sig; /* 0: a free slot */
        unsigned long seen; /* the signal's count when fn last ran (loop.c) */
        ml_loop_signal_fn *fn;
        void *user;
    } watch[ML_LOOP_MAX_SIGNAL_WATCHES]; /* ml_loop_watch_signal */

    uint32_t n_outgoing; /* sock.c: ml_sock_connect sockets not freed yet (<= upstream fd budget) */
    bool outgoing_full;  /* sock.c: n_outgoing reached the budget: said once in the log */
};

#endif
