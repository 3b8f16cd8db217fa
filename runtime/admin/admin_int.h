/* admin/: what tests and the fuzzer (tests/fuzz/admin_request_fuzz.c) reach beside admin.h: the
 * endpoint without a listening socket, fed one connected socket at a time. */
#ifndef ML_ADMIN_ADMIN_INT_H
#define ML_ADMIN_ADMIN_INT_H

#include "admin/admin.h"

/* As ml_admin_new, but nothing listens: connections come only through ml_admin_adopt. The
 * [node] admin address still says what Host must name. */
int ml_admin_new_detached(struct ml_loop *loop, struct ml_proxy *proxy, char *why, size_t cap,
                          struct ml_admin **out);
/* Serves the connected stream socket fd as one admin connection. libwebsockets owns fd from then
 * on; when this fails (-EIO) fd is closed. */
int ml_admin_adopt(struct ml_admin *a, int fd);
/* Admin connections open now. */
unsigned int ml_admin_connections(const struct ml_admin *a);

#endif
