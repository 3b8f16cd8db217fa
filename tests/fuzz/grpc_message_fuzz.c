/* libFuzzer target: what runtime/grpc/message.c does with outside bytes, each checked against a
 * plain reference written here: ml_grpc_is_content_type (the peer's content-type decides whether
 * a call is answered in gRPC) and ml_grpc_message_encode (upstream and local error text becomes
 * a grpc-message value).
 *
 * Input: byte 0 even = the rest is a content-type value; odd = the rest (up to its first NUL)
 * is a message to encode into a buffer of byte 1's value in bytes. In memory, deterministic. */
#include "core/slice-t.h"
#include "grpc/message.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool ref_is_content_type(const uint8_t *p, size_t n)
{
    static const char prefix[] = "application/grpc";
    const size_t k = sizeof(prefix) - 1;

    if (n < k) {
        return false;
    }
    for (size_t i = 0; i < k; i++) {
        if (tolower(p[i]) != prefix[i]) {
            return false;
        }
    }
    return n == k || p[k] == '+' || p[k] == ';' || p[k] == '-';
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The encoded text must fit, be printable ASCII without a bare '%', and decode to a prefix of
 * msg that stops only where the next piece would not have fitted. */
static void check_encode(const char *msg, size_t cap)
{
    char *buf = malloc(cap + 1), *out;
    size_t n, decoded = 0, len = strlen(msg);

    if (buf == NULL) {
        return;
    }
    buf[cap] = 'G'; /* a guard byte past cap: must survive */
    out = ml_grpc_message_encode(msg, buf, cap);
    if (out != buf || buf[cap] != 'G') {
        __builtin_trap();
    }
    if (cap == 0) {
        free(buf);
        return;
    }
    n = strlen(buf);
    if (n + 1 > cap) {
        __builtin_trap();
    }
    for (size_t i = 0; i < n; decoded++) {
        unsigned char c = (unsigned char)buf[i];
        int hi, lo;

        if (c < 0x20 || c > 0x7e) {
            __builtin_trap();
        }
        if (c != '%') {
            if (decoded >= len || (unsigned char)msg[decoded] != c) {
                __builtin_trap();
            }
            i++;
            continue;
        }
        if (i + 2 >= n + 1 || (hi = hexval(buf[i + 1])) < 0 || (lo = hexval(buf[i + 2])) < 0 ||
            decoded >= len || (unsigned char)msg[decoded] != (unsigned)(hi * 16 + lo)) {
            __builtin_trap();
        }
        /* Escaped only when it has to be. */
        if (msg[decoded] != '%' && (unsigned char)msg[decoded] >= 0x20 &&
            (unsigned char)msg[decoded] <= 0x7e) {
            __builtin_trap();
        }
        i += 3;
    }
    if (decoded < len) {
        /* Cut: the next piece (1 or 3 bytes) would not have fitted with the NUL. */
        unsigned char c = (unsigned char)msg[decoded];
        size_t piece = (c >= 0x20 && c <= 0x7e && c != '%') ? 1 : 3;

        if (n + piece + 1 <= cap) {
            __builtin_trap();
        }
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    if ((data[0] & 1) == 0) {
        /* A copy of exactly the value: reading past it shows under ASan. */
        uint8_t *p = malloc(size - 2 + 1);

        if (p == NULL) {
            return 0;
        }
        memcpy(p, data + 2, size - 2);
        if (ml_grpc_is_content_type((struct ml_slice){p, size - 2}) !=
            ref_is_content_type(p, size - 2)) {
            __builtin_trap();
        }
        free(p);
    } else {
        char *msg = malloc(size - 2 + 1);

        if (msg == NULL) {
            return 0;
        }
        memcpy(msg, data + 2, size - 2);
        msg[size - 2] = '\0';
        check_encode(msg, data[1]);
        free(msg);
    }
    return 0;
}
