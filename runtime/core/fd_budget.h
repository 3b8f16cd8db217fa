/* The process's file descriptors, shared out by role. One libwebsockets context serves every
 * socket (listeners, downstream and upstream connections, admin, the fleet client or the
 * controller's server) from one fd table of ML_FD_BUDGET_TOTAL entries (core/loop.c:
 * fd_limit_per_thread). When that table is full libwebsockets stops accepting on every listening
 * socket at once, so one role that runs away (1100 idle admin connections) would lock the data
 * plane out. Each role keeps to its own share instead, and the shares add up to the table:
 *
 * - downstream: `meshlet check` refuses listeners whose max_connections add up to more
 *   (config/validate_listener.c), and the proxy never holds more (proxy/proxy.c);
 * - upstream: the connection pools (balance/) stay within theirs;
 * - admin: the admin endpoint caps its connections within its share (admin/);
 * - other: listening sockets, the fleet WebSocket or `meshlet controller`'s connections,
 *   libwebsockets' own descriptors (its event pipe), stdio, the access log and state files.
 *
 * Other modules include this header for their share; nothing here is a variable: change a share
 * here, keeping the sum. */
#ifndef ML_CORE_FD_BUDGET_H
#define ML_CORE_FD_BUDGET_H

#define ML_FD_BUDGET_DOWNSTREAM 640 /* accepted downstream connections, all listeners together */
#define ML_FD_BUDGET_UPSTREAM 256   /* upstream connections, all clusters together */
#define ML_FD_BUDGET_ADMIN 32       /* admin HTTP connections */
#define ML_FD_BUDGET_OTHER 96       /* listening sockets, fleet/controller, lws, files */

#define ML_FD_BUDGET_TOTAL                                                                         \
    (ML_FD_BUDGET_DOWNSTREAM + ML_FD_BUDGET_UPSTREAM + ML_FD_BUDGET_ADMIN + ML_FD_BUDGET_OTHER)

#endif
