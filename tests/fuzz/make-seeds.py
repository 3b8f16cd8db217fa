#!/usr/bin/python3
"""Writes the binary seed corpora of the libFuzzer targets: tests/fuzz/corpus/<name>/.

    /usr/bin/python3 tests/fuzz/make-seeds.py

Deterministic (the same files every run); only the standard library. The seeds are small, hand
built inputs that reach deep quickly; the fuzzer mutates from them. Input layouts are those the
targets' comments describe (tests/fuzz/<name>_fuzz.c).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- HTTP/2 (RFC 9113) and HPACK (RFC 7541), just enough to build frames -------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7FFFFFFF) + payload


def settings(*pairs, ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v)
                                                          for k, v in pairs))


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, never=False):
    """Literal without indexing (or never indexed), literal name, no Huffman."""
    return bytes([0x10 if never else 0x00]) + hpack_int(len(name), 7) + name + \
        hpack_int(len(value), 7) + value


def hpack_indexed_name(index, value):
    """Literal with incremental indexing, indexed name (static table)."""
    return hpack_int(index, 6, 0x40) + hpack_int(len(value), 7) + value


def grpc_request_block(path=b"/helloworld.Greeter/SayHello", extra=()):
    block = bytes([0x83, 0x86])  # :method POST, :scheme http (static table 3, 6)
    block += hpack_indexed_name(4, path)  # :path
    block += hpack_indexed_name(1, b"localhost:15001")  # :authority
    block += hpack_indexed_name(31, b"application/grpc")  # content-type
    block += hpack_literal(b"te", b"trailers")
    block += hpack_literal(b"grpc-timeout", b"1S")
    block += hpack_literal(b"user-agent", b"grpc-c/1.60")
    for name, value in extra:
        block += hpack_literal(name, value)
    return block


def grpc_message(payload, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(payload)) + payload


HELLO = b"\x0a\x05world"  # protobuf: field 1 = "world"


def h2_seeds():
    """Inputs of h2_downstream_fuzz: mode byte, allocation budget byte, client bytes."""
    hello = PREFACE + settings((4, 65535), (3, 100)) + \
        frame(HEADERS, END_HEADERS, 1, grpc_request_block()) + \
        frame(DATA, END_STREAM, 1, grpc_message(HELLO))
    seeds = {}
    seeds["grpc-post"] = bytes([0x00, 0]) + hello
    seeds["grpc-post-trailers-only"] = bytes([0x01, 0]) + hello
    seeds["grpc-post-bytewise"] = bytes([0x10, 0]) + hello
    seeds["grpc-post-refused"] = bytes([0x02, 0]) + hello
    seeds["grpc-post-reset-by-owner"] = bytes([0x03, 0]) + hello
    seeds["grpc-post-on-data-fails"] = bytes([0x08, 0]) + hello
    seeds["grpc-post-alloc-fails-early"] = bytes([0x80, 3]) + hello
    seeds["grpc-post-alloc-fails-late"] = bytes([0x80, 40]) + hello

    # The harness sends the preface; then a whole conversation: two streams, a body in pieces,
    # request trailers, window updates, ping, settings ack, a priority, goaway.
    conv = settings((1, 4096), (2, 0), (4, 1 << 20), (5, 16384), (6, 8192)) + \
        settings(ack=True) + \
        frame(HEADERS, END_HEADERS, 1, grpc_request_block()) + \
        frame(HEADERS, END_HEADERS | PRIO, 3,
              struct.pack(">IB", 1, 15) + grpc_request_block(b"/a.B/C", [(b"x-a", b"1")])) + \
        frame(DATA, 0, 1, grpc_message(HELLO)[:3]) + \
        frame(DATA, PADDED, 1, bytes([4]) + grpc_message(HELLO)[3:] + b"\0" * 4) + \
        frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)) + \
        frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1000)) + \
        frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 200)) + \
        frame(PING, 0, 0, b"12345678") + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1,
              hpack_literal(b"x-trailer", b"t")) + \
        frame(DATA, END_STREAM, 3, b"") + \
        frame(GOAWAY, 0, 0, struct.pack(">II", 3, 0) + b"bye")
    seeds["conversation"] = bytes([0x44, 0]) + conv
    seeds["conversation-late-consume"] = bytes([0x64, 0]) + conv
    seeds["conversation-alloc-fails"] = bytes([0xC0, 25]) + conv

    # CONTINUATION flood: a header block that never ends (and one that ends, huge).
    flood = settings() + frame(HEADERS, 0, 1, grpc_request_block())
    for i in range(60):
        flood += frame(CONTINUATION, 0, 1, hpack_literal(b"x-flood-%d" % i, b"v" * 100))
    seeds["continuation-flood"] = bytes([0x40, 0]) + flood
    ended = settings() + frame(HEADERS, 0, 1, grpc_request_block())
    for i in range(8):
        ended += frame(CONTINUATION, END_HEADERS if i == 7 else 0, 1,
                       hpack_literal(b"x-big-%d" % i, b"w" * 600))
    seeds["continuation-over-header-list-limit"] = bytes([0x40, 0]) + ended
    seeds["continuation-wrong-stream"] = bytes([0x40, 0]) + settings() + \
        frame(HEADERS, 0, 1, grpc_request_block()) + \
        frame(CONTINUATION, END_HEADERS, 3, hpack_literal(b"x", b"y"))

    # Rapid reset (CVE-2023-44487): open and cancel streams back to back.
    rapid = settings()
    for sid in range(1, 200, 2):
        rapid += frame(HEADERS, END_HEADERS, sid, grpc_request_block()) + \
            frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
    seeds["rapid-reset"] = bytes([0x40, 0]) + rapid
    seeds["rapid-reset-trailers-only"] = bytes([0x41, 0]) + rapid
    seeds["more-streams-than-allowed"] = bytes([0x40, 0]) + settings() + b"".join(
        frame(HEADERS, END_HEADERS, sid, grpc_request_block()) for sid in range(1, 60, 2))

    # Frames on closed streams (h2/gate.c): DATA after the client's own RST_STREAM, DATA and
    # HEADERS on a stream closed both ways, a new stream id lower than one already used.
    post = frame(HEADERS, END_HEADERS, 1, grpc_request_block())
    seeds["closed-data-after-client-reset"] = bytes([0x40, 0]) + settings() + post + \
        frame(RST_STREAM, 0, 1, struct.pack(">I", 8)) + \
        frame(DATA, 0, 1, grpc_message(HELLO)) + frame(DATA, 0, 1, grpc_message(HELLO)) + \
        frame(HEADERS, END_HEADERS | END_STREAM, 3, grpc_request_block())
    seeds["closed-both-ways-then-data"] = bytes([0x41, 0]) + settings() + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1, grpc_request_block()) + \
        frame(DATA, 0, 1, grpc_message(HELLO))
    seeds["closed-both-ways-then-headers"] = bytes([0x41, 0]) + settings() + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1, grpc_request_block()) + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1, grpc_request_block())
    seeds["lower-stream-id"] = bytes([0x40, 0]) + settings() + \
        frame(HEADERS, END_HEADERS | END_STREAM, 5, grpc_request_block()) + \
        frame(HEADERS, END_HEADERS | END_STREAM, 3, grpc_request_block())

    # Bad HPACK: an index past both tables, a table size update past SETTINGS, bad Huffman,
    # an integer that overflows, a literal longer than the block.
    bad = {
        "hpack-bad-index": bytes([0xFF, 0xFF, 0xFF, 0x7F]),
        "hpack-table-size-too-large": bytes([0x3F, 0xE1, 0xFF, 0x03]) + bytes([0x83]),
        "hpack-bad-huffman": bytes([0x00, 0x81, 0xFF, 0x83, 0xFF, 0xFF, 0xFF]),
        "hpack-integer-overflow": bytes([0x00, 0x7F]) + b"\xFF" * 10 + b"\x01",
        "hpack-truncated-literal": bytes([0x00, 0x10]) + b"abc",
        "hpack-uppercase-name": hpack_literal(b"X-Upper", b"1"),
        "hpack-connection-header": grpc_request_block(extra=[(b"connection", b"close")]),
        "hpack-te-gzip": grpc_request_block(extra=[(b"te", b"gzip")]),
        "hpack-pseudo-after-regular": hpack_literal(b"x-a", b"1") + bytes([0x83]),
    }
    for name, block in bad.items():
        seeds[name] = bytes([0x40, 0]) + settings() + \
            frame(HEADERS, END_HEADERS | END_STREAM, 1, block)

    # Frame-level abuse.
    seeds["data-on-idle-stream"] = bytes([0x40, 0]) + settings() + frame(DATA, 0, 5, b"x" * 10)
    seeds["data-over-window"] = bytes([0x44, 0]) + settings() + \
        frame(HEADERS, END_HEADERS, 1, grpc_request_block()) + \
        b"".join(frame(DATA, 0, 1, b"d" * 16384) for _ in range(5))
    seeds["settings-bad-length"] = bytes([0x40, 0]) + frame(SETTINGS, 0, 0, b"\0\0\0")
    seeds["window-update-overflow"] = bytes([0x40, 0]) + settings() + \
        frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)) * 2
    seeds["push-promise-from-client"] = bytes([0x40, 0]) + settings() + \
        frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + bytes([0x83]))
    seeds["bad-preface"] = bytes([0x00, 0]) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    return seeds


def h2_upstream_seeds():
    """Inputs of h2_upstream_fuzz: mode byte, allocation budget byte, backend bytes."""
    status_200 = bytes([0x88])  # :status 200 (static table 8)
    resp = status_200 + hpack_indexed_name(31, b"application/grpc")
    trailers = hpack_literal(b"grpc-status", b"0") + hpack_literal(b"grpc-message", b"ok")
    server_settings = settings((3, 100), (4, 65535), (6, 8192))
    ok = server_settings + settings(ack=True) + \
        frame(HEADERS, END_HEADERS, 1, resp) + \
        frame(DATA, 0, 1, grpc_message(HELLO)) + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1, trailers)
    seeds = {}
    seeds["unary-ok"] = bytes([0x00, 0]) + ok
    seeds["unary-ok-with-body"] = bytes([0x04, 0]) + ok
    seeds["unary-ok-bytewise"] = bytes([0x24, 0]) + ok
    seeds["unary-ok-refused-headers"] = bytes([0x08, 0]) + ok
    seeds["unary-ok-late-consume"] = bytes([0x10, 0]) + ok
    seeds["unary-ok-alloc-fails"] = bytes([0x84, 30]) + ok
    seeds["trailers-only"] = bytes([0x00, 0]) + server_settings + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1, resp + trailers)
    seeds["interim-100-then-ok"] = bytes([0x00, 0]) + server_settings + \
        frame(HEADERS, END_HEADERS, 1, hpack_indexed_name(8, b"100")) + ok[len(server_settings):]
    seeds["interim-ending-stream"] = bytes([0x00, 0]) + server_settings + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack_indexed_name(8, b"103"))
    three = server_settings
    for sid in (5, 3, 1):
        three += frame(HEADERS, END_HEADERS, sid, resp) + \
            frame(DATA, END_STREAM, sid, grpc_message(HELLO))
    seeds["three-streams-out-of-order"] = bytes([0x02, 0]) + three
    seeds["slots-refill"] = bytes([0x43, 0]) + settings((3, 2)) + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1, resp + trailers) + \
        frame(RST_STREAM, 0, 3, struct.pack(">I", 7)) + settings((3, 4))
    seeds["rst-stream-refused"] = bytes([0x01, 0]) + server_settings + \
        frame(RST_STREAM, 0, 1, struct.pack(">I", 7)) + frame(RST_STREAM, 0, 3, struct.pack(">I", 8))
    seeds["goaway-last-1"] = bytes([0x02, 0]) + server_settings + \
        frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)) + \
        frame(HEADERS, END_HEADERS | END_STREAM, 1, resp + trailers)
    seeds["goaway-error"] = bytes([0x41, 0]) + server_settings + \
        frame(GOAWAY, 0, 0, struct.pack(">II", 0, 2) + b"internal")
    seeds["push-promise-when-disabled"] = bytes([0x00, 0]) + server_settings + \
        frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + bytes([0x82, 0x86, 0x84]))
    seeds["headers-on-unopened-stream"] = bytes([0x00, 0]) + server_settings + \
        frame(HEADERS, END_HEADERS, 7, resp)
    seeds["bad-hpack"] = bytes([0x00, 0]) + server_settings + \
        frame(HEADERS, END_HEADERS, 1, bytes([0xFF, 0xFF, 0xFF, 0x7F]))
    seeds["response-continuation"] = bytes([0x00, 0]) + server_settings + \
        frame(HEADERS, 0, 1, status_200) + \
        frame(CONTINUATION, END_HEADERS, 1, hpack_indexed_name(31, b"application/grpc")) + \
        frame(DATA, END_STREAM, 1, b"")
    seeds["data-before-headers"] = bytes([0x00, 0]) + server_settings + \
        frame(DATA, END_STREAM, 1, b"xx")
    seeds["window-update-and-ping"] = bytes([0x04, 0]) + server_settings + \
        frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 100)) + frame(PING, 0, 0, b"abcdefgh") + \
        frame(PING, ACK, 0, b"\0" * 8)
    seeds["no-settings-first"] = bytes([0x00, 0]) + frame(HEADERS, END_HEADERS, 1, resp)
    return seeds


# ---- gRPC framing, grpc-timeout ---------------------------------------------------------------

def grpc_message_seeds():
    """Inputs of grpc_message_fuzz: byte 0 even = a content-type value follows, odd = a
    grpc-message text follows, byte 1 = the encode buffer's size (see that file)."""
    return {
        "content-type-grpc": b"\x00\x00application/grpc",
        "content-type-grpc-proto": b"\x00\x00application/grpc+proto",
        "content-type-grpc-web": b"\x00\x00Application/GRPC-web-text",
        "content-type-grpc-params": b"\x00\x00application/grpc;charset=utf-8",
        "content-type-grpcx": b"\x00\x00application/grpcx",
        "content-type-short": b"\x00\x00application/grp",
        "content-type-plain": b"\x00\x00text/plain",
        "message-ascii": b"\x01\x40upstream connect error",
        "message-escapes": b"\x01\x20" + "caf\u00e9 100%\n\x01\x7f".encode(),
        "message-cut-at-escape": b"\x01\x05ab%%%%",
        "message-cap-1": b"\x01\x01abc",
        "message-cap-0": b"\x01\x00abc",
    }


def grpc_timeout_seeds():
    return {name: value for name, value in [
        ("1S", b"1S"), ("max-hours", b"99999999H"), ("ms", b"250m"), ("us", b"100u"),
        ("ns", b"1n"), ("minutes", b"5M"), ("zero", b"0n"), ("nine-digits", b"123456789S"),
        ("no-unit", b"100"), ("sign", b"+1S"), ("space", b" 1S"), ("empty", b""),
        ("bad-unit", b"1x"),
    ]}


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        os.remove(os.path.join(d, old))
    for seed, data in sorted(seeds.items()):
        with open(os.path.join(d, seed), "wb") as f:
            f.write(data)
    print("tests/fuzz/corpus/%s: %d seeds" % (name, len(seeds)))


def main():
    write("h2_downstream", h2_seeds())
    write("h2_upstream", h2_upstream_seeds())
    write("grpc_message", grpc_message_seeds())
    write("grpc_timeout", grpc_timeout_seeds())


if __name__ == "__main__":
    main()
