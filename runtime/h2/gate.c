/* The gate in front of a server session's nghttp2: input goes to nghttp2 one frame at a time,
 * and each DATA or HEADERS frame header is looked at first, when everything before it has been
 * processed, so the gate sees the streams as nghttp2 does at that frame. nghttp2 keeps no
 * closed streams here (conn.c: no_closed_streams; see h2_int.h for why its own list would not
 * do), so what it would silently drop is answered here as RFC 9113 says:
 *
 * - on a stream the peer reset: stream error STREAM_CLOSED (5.1, 6.1), once; later frames on it
 *   are ignored, as after any RST_STREAM we sent;
 * - on a stream the peer ended (END_STREAM), closed both ways now: connection error
 *   STREAM_CLOSED (5.1; nghttp2 answers half-closed(remote) streams the same way);
 * - a stream id at or below the highest one used that was never opened (or is older than what is
 *   remembered): connection error PROTOCOL_ERROR (5.1.1);
 * - on a stream we reset while the peer's side was open: ignored (5.1: the peer may have sent it
 *   before our RST_STREAM arrived); nghttp2 still counts DATA against the connection window. */
#include "core/log.h"
#include "h2/h2_int.h"

#include <nghttp2/nghttp2.h>
#include <string.h>

#define H2_PREFACE_BYTES 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define H2_FRAME_HEADER_BYTES 9

void ml_h2_gate_init(struct ml_h2_gate *g, bool server)
{
    memset(g, 0, sizeof(*g));
    g->preface_left = server ? H2_PREFACE_BYTES : 0;
}

/* Index of id among the remembered streams, or -1. Their ids ascend from the oldest (a stream is
 * remembered when its id passes every earlier one): a binary search. The walk from the newest it
 * replaces went ~25 entries back for each END_STREAM at 100 streams in flight (~250
 * instructions per call). */
static int seen_find(const struct ml_h2_gate *g, int32_t id)
{
    uint32_t oldest = (g->next + ML_H2_STREAMS_REMEMBERED - g->n_seen) % ML_H2_STREAMS_REMEMBERED;
    uint32_t lo = 0, hi = g->n_seen; /* positions counted from the oldest: [lo, hi) */

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, i = (oldest + mid) % ML_H2_STREAMS_REMEMBERED;

        if (g->seen_id[i] == id) {
            return (int)i;
        }
        if (g->seen_id[i] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

static void seen_add(struct ml_h2_gate *g, int32_t id)
{
    g->seen_id[g->next] = id;
    g->seen_how[g->next] = 0;
    g->next = (g->next + 1) % ML_H2_STREAMS_REMEMBERED;
    if (g->n_seen < ML_H2_STREAMS_REMEMBERED) {
        g->n_seen++;
    }
}

static void seen_mark(struct ml_h2_gate *g, int32_t id, uint8_t how)
{
    int i = seen_find(g, id);

    if (i >= 0) {
        g->seen_how[i] |= how;
    }
}

static bool stream_open(struct ml_h2_conn *c, int32_t id)
{
    nghttp2_stream *st = nghttp2_session_find_stream(c->ng, id);

    return st != NULL && nghttp2_stream_get_state(st) != NGHTTP2_STREAM_STATE_IDLE &&
           nghttp2_stream_get_state(st) != NGHTTP2_STREAM_STATE_CLOSED;
}

static void gate_close(struct ml_h2_conn *c, int32_t id, uint32_t code, const char *why)
{
    ML_LOG_INF("c%u s%d: %s: GOAWAY %s", c->id, id, why,
               code == NGHTTP2_STREAM_CLOSED ? "STREAM_CLOSED" : "PROTOCOL_ERROR");
    /* Best effort: with no memory for the GOAWAY the connection still ends (nothing is fed). */
    nghttp2_session_terminate_session(c->ng, code);
    c->gate.closed = true;
}

/* The frame whose header is g->hd arrives: answer it when its stream is closed. */
static void gate_check(struct ml_h2_conn *c)
{
    struct ml_h2_gate *g = &c->gate;
    const uint8_t *hd = g->hd;
    uint8_t type = hd[3], flags = hd[4];
    int32_t id =
        (int32_t)(((uint32_t)hd[5] << 24 | (uint32_t)hd[6] << 16 | (uint32_t)hd[7] << 8 | hd[8]) &
                  0x7fffffffu);
    bool end = (flags & NGHTTP2_FLAG_END_STREAM) != 0;
    int i;

    if (id == 0 || (id & 1) == 0) {
        return; /* connection frames, and ids a client may not use: nghttp2's rules */
    }
    if (type == NGHTTP2_RST_STREAM) {
        seen_mark(g, id, H2_SEEN_PEER_RESET);
        return;
    }
    if (type != NGHTTP2_DATA && type != NGHTTP2_HEADERS) {
        return; /* PRIORITY, WINDOW_UPDATE, RST_STREAM may follow a close (5.1) */
    }
    if (id > g->max_id) {
        if (type == NGHTTP2_HEADERS) {
            g->max_id = id; /* a new stream: every lower idle id is closed now (5.1.1) */
            seen_add(g, id);
            if (end) {
                seen_mark(g, id, H2_SEEN_PEER_ENDED);
            }
        }
        return; /* DATA on an idle stream: nghttp2's PROTOCOL_ERROR */
    }
    if (stream_open(c, id)) {
        if (end) {
            seen_mark(g, id, H2_SEEN_PEER_ENDED);
        }
        return;
    }
    if ((i = seen_find(g, id)) < 0) {
        gate_close(c, id, NGHTTP2_PROTOCOL_ERROR,
                   type == NGHTTP2_HEADERS ? "new stream id lower than one already used"
                                           : "DATA on a stream never opened or long closed");
        return;
    }
    if (g->seen_how[i] & H2_SEEN_WE_RESET) {
        return;
    }
    if (g->seen_how[i] & H2_SEEN_PEER_RESET) {
        ML_LOG_INF("c%u s%d: %s after the client's RST_STREAM: RST_STREAM STREAM_CLOSED", c->id, id,
                   type == NGHTTP2_DATA ? "DATA" : "HEADERS");
        g->seen_how[i] |= H2_SEEN_WE_RESET;
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_STREAM_CLOSED);
        return;
    }
    if (g->seen_how[i] & H2_SEEN_PEER_ENDED) {
        gate_close(c, id, NGHTTP2_STREAM_CLOSED,
                   type == NGHTTP2_DATA ? "DATA on a closed stream" : "HEADERS on a closed stream");
    }
    /* else we reset it while the client's side was open: ignored (nghttp2 drops it) */
}

static long pass(struct ml_h2_conn *c, const uint8_t *p, size_t n)
{
    nghttp2_ssize rv = nghttp2_session_mem_recv2(c->ng, p, n);

    return rv < 0 ? (long)rv : 0;
}

long ml_h2_gate_recv(struct ml_h2_conn *c, const uint8_t *p, size_t n)
{
    struct ml_h2_gate *g = &c->gate;
    size_t at = 0, take;
    long rv;

    while (at < n && !g->closed) {
        if (g->preface_left > 0 || g->payload_left > 0) {
            uint32_t *left = g->preface_left > 0 ? &g->preface_left : &g->payload_left;

            take = n - at < *left ? n - at : *left;
            if ((rv = pass(c, p + at, take)) < 0) {
                return rv;
            }
            *left -= (uint32_t)take;
            at += take;
            continue;
        }
        take = H2_FRAME_HEADER_BYTES - g->hd_n;
        take = n - at < take ? n - at : take;
        memcpy(g->hd + g->hd_n, p + at, take);
        g->hd_n += (uint8_t)take;
        at += take;
        if (g->hd_n < H2_FRAME_HEADER_BYTES) {
            break; /* the rest of the header comes with the next read */
        }
        g->hd_n = 0;
        gate_check(c);
        if (g->closed) {
            break;
        }
        if ((rv = pass(c, g->hd, H2_FRAME_HEADER_BYTES)) < 0) {
            return rv;
        }
        g->payload_left = (uint32_t)g->hd[0] << 16 | (uint32_t)g->hd[1] << 8 | g->hd[2];
    }
    return (long)n;
}
