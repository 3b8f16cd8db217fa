/* A call: one downstream stream bridged to one upstream stream (proxy/call.c). */
#ifndef ML_PROXY_CALL_H
#define ML_PROXY_CALL_H

#include "h2/h2-t.h"
#include "h2/hdrs-t.h"

#include <stdbool.h>

struct ml_proxy;
struct ml_listener;

/* A request arrived on stream down of a connection of listener l: routes it and forwards it, or
 * answers it (gRPC requests with a trailers-only status, others with plain HTTP). Attaches a new
 * call as the stream's owner; when out of memory it does not, and h2 refuses the stream.
 * hdrs: the request headers, whose contents the call keeps. */
void ml_call_start(struct ml_proxy *p, struct ml_listener *l, struct ml_h2_stream *down,
                   struct ml_h2_hdrs *hdrs, bool end_stream);

/* The calls, buffer chunks and field array that finished calls leave on p for the next ones
 * (a warm call path allocates nothing): init with the proxy, free once no call is left. */
void ml_call_spares_init(struct ml_proxy *p);
void ml_call_spares_free(struct ml_proxy *p);

#endif
