/* libFuzzer target: the fleet client's real receive handler (fleet/client.c on_receive →
 * on_message) fed through its test hook ml_fleet_client_feed (fleet/client_int.h), as
 * libwebsockets' CLIENT_RECEIVE would feed it: message reassembly, the growing receive buffer
 * and its bound, envelope decoding, the version rule, the Push up to the apply callback, the
 * answers, and the drop and reconnect after a protocol error. No socket: one client per input
 * on a loop that never runs, so it is in memory and deterministic.
 *
 * Whatever the input: no crash, no leak, no read outside it; on_push only ever sees a version of
 * the fleet rule (fleet/token.h) and an INI inside the message; nothing is pushed after a
 * protocol error on the same connection.
 *
 * Input: byte 0 chooses the format.
 *  - bit 7 clear: the rest is one binary message, handed over in 16 KiB pieces like lws.
 *  - bit 7 set: the rest is a sequence of pieces, each [flags][len lo][len hi][len bytes]
 *    (cut at the end of the input). flags: bit 0 first fragment, bit 1 final fragment, bit 2
 *    text (not binary), bit 3 the piece is its bytes repeated to 16 KiB (so that a few records
 *    reach the message bound), bit 4 on_push answers with a Nack (else an Ack), bit 5 on_push
 *    frees the client (the input ends there).
 * Seeds: tests/fuzz/corpus/fleet_client_rx/ (tests/fuzz/fleet_client_rx_seeds.py). */
#include "fleet_fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PIECE 16384 /* lws' receive chunk for the fleet protocol (client.c rx_buffer_size) */

static uint8_t big[PIECE];

static struct ml_fleet_client *client_new(void)
{
    static const char *const features[] = {"fleet"};

    return fleet_fuzz_client_new("ws://127.0.0.1:9/fleet/v1", false, "/fleet/v1", features, 1);
}

/* One piece; false once the client is gone. */
static bool feed(const uint8_t *p, size_t n, bool first, bool final, bool binary)
{
    const struct ml_fleet_client_counters *k = ml_fleet_client_counters(run.c);
    uint64_t pushes = k->pushes;
    int rv = ml_fleet_client_feed(run.c, p, n, first, final, binary);

    if (run.freed) {
        return rv == -ECONNRESET ? false : (__builtin_trap(), false);
    }
    if (rv == -ECONNRESET && k->pushes != pushes) {
        __builtin_trap(); /* a piece that ends the connection pushed nothing */
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&run, 0, sizeof(run));
    if (size == 0) {
        return 0;
    }
    run.c = client_new();
    if (!(data[0] & 0x80)) {
        const uint8_t *msg = data + 1;
        size_t n = size - 1, off = 0;

        do {
            size_t k = n - off < PIECE ? n - off : PIECE;

            if (!feed(msg + off, k, off == 0, off + k == n, true)) {
                return 0;
            }
            off += k;
        } while (off < n);
    } else {
        size_t at = 1;

        while (at + 3 <= size) {
            uint8_t flags = data[at];
            size_t len = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
            const uint8_t *p = data + at + 3;

            at += 3;
            if (len > size - at) {
                len = size - at;
            }
            at += len;
            run.nack = flags & 0x10;
            run.free_it = flags & 0x20;
            if (flags & 0x08) {
                for (size_t i = 0; i < PIECE; i++) {
                    big[i] = len > 0 ? p[i % len] : 0;
                }
                p = big;
                len = PIECE;
            }
            if (!feed(p, len, flags & 0x01, flags & 0x02, !(flags & 0x04))) {
                return 0;
            }
        }
    }
    ml_fleet_client_free(run.c);
    return 0;
}
