"""A raw HTTP/2 client over a plain socket: frames built with hyperframe (python3-hyperframe,
which python3-h2 uses) and HPACK with python3-hpack, with no state machine of its own, so a test
can send what a well-behaved client never would (DATA after its own RST_STREAM, a lower stream
id) and read exactly what meshlet answers."""

import socket
import time

import pytest

from conftest import scaled

frame = pytest.importorskip("hyperframe.frame")
hpack = pytest.importorskip("hpack")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 7
NO_ERROR, PROTOCOL_ERROR, STREAM_CLOSED, REFUSED_STREAM, CANCEL = 0x0, 0x1, 0x5, 0x7, 0x8


def grpc_message(payload):
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


class RawH2:
    def __init__(self, port, greet=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        self.enc = hpack.Encoder()
        self.buf = b""
        self.closed = False
        if greet:
            self.send(PREFACE, frame.SettingsFrame(0))

    def send(self, *parts):
        self.sock.sendall(b"".join(p if isinstance(p, bytes) else p.serialize() for p in parts))

    def headers(self, sid, path, end_stream=False):
        f = frame.HeadersFrame(sid)
        f.data = self.enc.encode([(":method", "POST"), (":scheme", "http"), (":path", path),
                                  (":authority", "localhost"),
                                  ("content-type", "application/grpc"), ("te", "trailers")])
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    @staticmethod
    def data(sid, payload, end_stream=False):
        f = frame.DataFrame(sid)
        f.data = payload
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    @staticmethod
    def rst(sid, code):
        return frame.RstStreamFrame(sid, error_code=code)

    def request(self, sid, path, payload):
        """A whole unary gRPC request on stream sid (our side ends)."""
        self.send(self.headers(sid, path), self.data(sid, grpc_message(payload), True))

    def read_frames(self, until, timeout=5):
        """Frames received until until(frames) is true, the peer closes, or timeout (seconds).
        SETTINGS are acknowledged as they come."""
        got = []
        deadline = time.monotonic() + scaled(timeout)
        while not until(got) and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            while len(self.buf) >= 9:
                f, length = frame.Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                got.append(f)
                if isinstance(f, frame.SettingsFrame) and "ACK" not in f.flags:
                    self.send(frame.SettingsFrame(0, flags=["ACK"]))
            if until(got):
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.buf += chunk
        return got

    def close(self):
        self.sock.close()


def ended(sid):
    """until(): stream sid ended (a frame with END_STREAM, or RST_STREAM)."""
    return lambda fs: any(f.stream_id == sid and (
        isinstance(f, frame.RstStreamFrame) or "END_STREAM" in getattr(f, "flags", ()))
        for f in fs)


def goaway(fs):
    return next((f for f in fs if isinstance(f, frame.GoAwayFrame)), None)


def rst_on(fs, sid):
    return [f.error_code for f in fs if isinstance(f, frame.RstStreamFrame) and f.stream_id == sid]
