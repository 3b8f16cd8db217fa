"""The soak's hostile side (tests/soak/soak.py drives it): clients that misbehave on meshlet's gRPC
listener and admin port. Bounded: at most MAX_SILENT connections held at a time, each for at most
SILENT_HOLD seconds, one action every 0.1 s. What meshlet does to them (refuse, reset, GOAWAY) is
its right; only the well-behaved side's calls are judged."""

import random
import socket
import time

import h2.config
import h2.connection
import h2.exceptions

MAX_SILENT = 16
SILENT_HOLD = 20.0
RESET_BURST = 50
GRPC_PATH = "/meshlet.test.Echo/Say"


def rapid_reset(port):
    """HTTP/2: a burst of gRPC requests, each cancelled at once with RST_STREAM."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        c.initiate_connection()
        s.sendall(c.data_to_send())
        headers = [(":method", "POST"), (":scheme", "http"), (":path", GRPC_PATH),
                   (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                   ("te", "trailers")]
        try:
            for _ in range(RESET_BURST):
                sid = c.get_next_available_stream_id()
                c.send_headers(sid, headers)
                c.reset_stream(sid, error_code=8)  # CANCEL
                s.sendall(c.data_to_send())
            s.settimeout(0.2)
            while s.recv(65536):  # whatever meshlet answers (GOAWAY is fine)
                pass
        except (OSError, h2.exceptions.ProtocolError):
            pass


def frame(ftype, flags, stream, payload):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            stream.to_bytes(4, "big") + payload)


def control_flood(port, rnd):
    """HTTP/2 with raw frames: a PING flood, or HEADERS without END_HEADERS followed by many
    CONTINUATION frames of garbage (never ending the block)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")
        if rnd.random() < 0.5:
            out += b"".join(frame(6, 0, 0, k.to_bytes(8, "big")) for k in range(500))
        else:
            out += frame(1, 0, 1, rnd.randbytes(100))  # HEADERS, no END_HEADERS
            out += b"".join(frame(9, 0, 1, rnd.randbytes(1000)) for _ in range(200))
        try:
            s.sendall(out)
            s.settimeout(0.2)
            while s.recv(65536):
                pass
        except OSError:
            pass


def hostile(listen_port, admin_port, stop, st):
    rnd = random.Random(7)
    silent = []  # (socket, opened at)
    try:
        while not stop.wait(0.1):
            now = time.monotonic()
            while silent and (len(silent) >= MAX_SILENT or now - silent[0][1] > SILENT_HOLD):
                silent.pop(0)[0].close()
            port = rnd.choice((listen_port, listen_port, admin_port))
            kind = rnd.choice(("silent", "garbage", "half-preface", "reset", "reset", "flood"))
            try:
                if kind == "silent":
                    silent.append((socket.create_connection(("127.0.0.1", port), timeout=5), now))
                elif kind == "garbage":
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        s.sendall(rnd.randbytes(rnd.randint(1, 4096)))
                        if rnd.random() < 0.5:  # abortive close (RST) half the time
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
                elif kind == "half-preface":
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"PRI * HTTP/2.0\r\n\r\nS")
                    silent.append((s, now))
                elif kind == "flood":
                    control_flood(listen_port, rnd)
                else:
                    rapid_reset(listen_port)
                st.add("hostile_" + kind)
            except OSError:  # refused or reset by meshlet: its right; counted only
                st.add("hostile_refused")
    finally:
        for s, _ in silent:
            s.close()
