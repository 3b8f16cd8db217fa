"""Bare HTTP/2 servers (python3-h2) for the peers grpcio cannot play: one that answers with
GOAWAY, one that never finishes, one that is not gRPC at all. One thread per connection; a
subclass answers each h2 event in on_event()."""

import socket
import threading

import pytest


class H2Server:
    """Listens on 127.0.0.1 (a port the kernel picks) until close()."""

    conn_timeout = 15  # seconds a connection may stay silent before the server drops it

    def __init__(self):
        self.h2 = pytest.importorskip("h2.connection")
        self.h2config = pytest.importorskip("h2.config")
        self.events = pytest.importorskip("h2.events")
        self.errors = (OSError, pytest.importorskip("h2.exceptions").ProtocolError)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def on_connect(self):
        """Per-connection state handed to on_event (called once per accepted connection)."""
        return None

    def on_event(self, c, ev, sock, state):
        """Answer one h2 event on H2Connection c; what c queues is sent after it returns."""

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        c = self.h2.H2Connection(self.h2config.H2Configuration(client_side=False))
        c.initiate_connection()
        conn.sendall(c.data_to_send())
        conn.settimeout(self.conn_timeout)
        state = self.on_connect()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                for ev in c.receive_data(data):
                    self.on_event(c, ev, conn, state)
                conn.sendall(c.data_to_send())
        except self.errors:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop = True
        self.sock.close()
