"""A fleet controller written with Debian's python3-websockets and python3-protobuf, from the
repository's runtime/fleet/fleet.proto: the independent peer of meshlet's fleet client
(runtime/fleet/README.md), for the tests. It runs an asyncio loop in a thread; the test talks to it with
plain blocking calls, every wait bounded."""

import asyncio
import hashlib
import importlib
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from conftest import ROOT, scaled

SUBPROTOCOL = "meshlet.fleet.v1"

_pb = None


def fleet_pb2():
    """The Python classes of fleet.proto, compiled once per test session with the system protoc
    (into a temporary directory, never the tree)."""
    global _pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="meshlet-fleet-pb-")
        proto_dir = ROOT / "runtime" / "fleet"
        subprocess.run(["/usr/bin/protoc", f"--python_out={out}", f"-I{proto_dir}",
                        str(proto_dir / "fleet.proto")], check=True)
        sys.path.insert(0, out)
        _pb = importlib.import_module("fleet_pb2")
    return _pb


def content_version(text):
    """What `meshlet controller` calls a file's version: its SHA-256's first 16 hex digits."""
    if isinstance(text, str):
        text = text.encode()
    return hashlib.sha256(text).hexdigest()[:16]


class PyController:
    """One WebSocket server on 127.0.0.1:port. Records every envelope a node sends; push() sends
    a Push to the connected node and returns its answer (an Ack or Nack message)."""

    def __init__(self, port, ssl_context=None, on_connect=None):
        self.pb = fleet_pb2()
        self.port = port
        self.ssl_context = ssl_context
        self.on_connect = on_connect  # async fn(controller, ws) run first for each connection
        self.hellos = []
        self.statuses = []
        self.answers = []  # Ack / Nack envelopes
        self.connections = 0
        self.connect_times = []
        self._ws = None
        self._cond = threading.Condition()
        self._nonce = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(scaled(5)):
            raise RuntimeError("python controller did not start")

    # ---- the asyncio side ----

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self):
        import websockets
        self._stop = asyncio.Event()
        async with websockets.serve(self._handle, "127.0.0.1", self.port,
                                    subprotocols=[SUBPROTOCOL], ssl=self.ssl_context,
                                    max_size=1 << 20):
            self._ready.set()
            await self._stop.wait()

    async def _handle(self, ws, path=None):
        with self._cond:
            self.connections += 1
            self.connect_times.append(time.monotonic())
            self._cond.notify_all()
        if self.on_connect is not None:
            if await self.on_connect(self, ws) is False:
                return
        with self._cond:
            self._ws = ws
        try:
            async for msg in ws:
                env = self.pb.Envelope()
                env.ParseFromString(msg)
                kind = env.WhichOneof("msg")
                with self._cond:
                    if kind == "hello":
                        self.hellos.append(env.hello)
                    elif kind == "status":
                        self.statuses.append(env.status)
                    elif kind in ("ack", "nack"):
                        self.answers.append(env)
                    self._cond.notify_all()
        except Exception:  # a node that goes away mid-message: the next connection counts
            pass
        finally:
            with self._cond:
                if self._ws is ws:
                    self._ws = None
                self._cond.notify_all()

    # ---- the test's side ----

    def wait_for(self, predicate, timeout=10):
        """Waits until predicate() (called under the lock) is true; returns its value or None."""
        deadline = time.monotonic() + scaled(timeout)
        with self._cond:
            while True:
                v = predicate()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))

    def wait_hello(self, count=1, timeout=10):
        return self.wait_for(lambda: len(self.hellos) >= count and self.hellos[count - 1],
                             timeout)

    def send_raw(self, data):
        """Sends data (bytes: a binary frame, str: a text frame) on the node's connection."""
        ws = self.wait_for(lambda: self._ws)
        assert ws is not None, "no node connected"
        asyncio.run_coroutine_threadsafe(ws.send(data), self._loop).result(scaled(5))

    def push(self, ini, version=None, timeout=10):
        """Pushes ini; returns the node's answer envelope (its oneof is "ack" or "nack")."""
        if isinstance(ini, str):
            ini = ini.encode()
        version = version or content_version(ini)
        with self._cond:
            self._nonce += 1
            nonce = self._nonce
        env = self.pb.Envelope()
        env.push.version = version
        env.push.nonce = nonce
        env.push.ini = ini
        self.send_raw(env.SerializeToString())

        def answered():
            for a in self.answers:
                m = getattr(a, a.WhichOneof("msg"))
                if m.nonce == nonce:
                    return a
            return None
        a = self.wait_for(answered, timeout)
        assert a is not None, f"no answer to the push of {version} within {timeout}s"
        return a

    def close_node(self):
        ws = self.wait_for(lambda: self._ws)
        if ws is not None:
            asyncio.run_coroutine_threadsafe(ws.close(), self._loop).result(scaled(5))

    def stop(self):
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(scaled(5))


def fleet_section(port, backoff="100ms..1s", report_interval="1s"):
    return (f"[fleet]\nurl = ws://127.0.0.1:{port}/fleet/v1\ninsecure = on\n"
            f"backoff = {backoff}\nreport_interval = {report_interval}\n")


# ---- certificates (openssl), for the TLS tests -------------------------------------------------

def _openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)


def make_ca(d, name):
    """d/NAME.key and d/NAME.crt: a self-signed P-256 CA, valid 2 days."""
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}")


def make_leaf(d, name, ca, ext, cn=None):
    """d/NAME.key and d/NAME.crt signed by CA (made with make_ca); ext: openssl extension lines
    (e.g. "subjectAltName=IP:127.0.0.1" or "extendedKeyUsage=clientAuth")."""
    (d / f"{name}.ext").write_text(ext + "\n")
    _openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn or name}")
    _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
