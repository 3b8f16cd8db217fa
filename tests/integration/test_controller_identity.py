"""`meshlet controller` against nodes that lie or crowd it: node ids tied to client certificates,
the node id rule, answers that count only for the push outstanding on their connection, two
connections with one id, GET /fleet bounded whatever the nodes send, and a cap on connections.
The peers are python3-websockets nodes and raw sockets; helpers and fixtures come from
test_controller.py. Every wait is bounded."""

import asyncio
import socket
import time
import urllib.request

import pytest
import websockets

from conftest import scaled
from fleet_peers import make_ca, make_leaf
from test_controller import (INI, QUIET, WAIT, _client_ctx, configs, connect, controller,  # noqa: F401
                             fleet, node_of, pb, run, wait_until)

# runtime/controller/controller_int.h
MAX_CONNS = 1008           # ML_CTL_MAX_CONNS
NODE_ID_MAX = 64           # ML_CTL_NODE_ID_MAX
ERROR_MAX_BYTES = 1024     # ML_CTL_JSON_ERROR_MAX_BYTES (escaped text)
CUT_MARKER = "\u2026 [cut]"


def stats(port, ssl_ctx=None):
    scheme = "https" if ssl_ctx is not None else "http"
    with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/stats", timeout=WAIT,
                                context=ssl_ctx) as r:
        assert r.status == 200
        return {k: int(v) for k, v in (line.split(" ") for line in r.read().decode().splitlines())}


async def refused(n):
    """The controller closed n's connection: its close code and reason."""
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        await n.recv()
    return n.ws.close_code, n.ws.close_reason


# ---- node ids tied to client certificates -----------------------------------------------------

@pytest.fixture
def pki(workdir):
    d = workdir / "pki"
    d.mkdir()
    make_ca(d, "ca")
    make_leaf(d, "server", "ca", "subjectAltName=IP:127.0.0.1")
    make_leaf(d, "edge-1", "ca", "extendedKeyUsage=clientAuth")
    # A URI SAN names the node; the CN is then not looked at.
    make_leaf(d, "uri", "ca", "extendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:meshlet:gw-7",
              cn="cn-of-gw-7")
    return d


def test_hello_must_name_the_client_certificate(pb, controller, configs, pki):
    (configs / "default.ini").write_text(INI)
    m, port = controller("--cert", pki / "server.crt", "--key", pki / "server.key", "--ca",
                         pki / "ca.crt")

    async def go():
        # The CN names the node.
        n = await connect(pb, port, "edge-1", ssl_ctx=_client_ctx(pki, "edge-1"))
        assert (await n.push()).ini == INI.encode()
        await n.close()
        # edge-1's certificate cannot speak for edge-2.
        n = await connect(pb, port, "edge-2", ssl_ctx=_client_ctx(pki, "edge-1"))
        code, reason = await refused(n)
        assert code == 1008 and "certificate" in reason, reason
        # A URI SAN names the node; its CN does not.
        n = await connect(pb, port, "urn:meshlet:gw-7", ssl_ctx=_client_ctx(pki, "uri"))
        assert (await n.push()).ini == INI.encode()
        await n.close()
        n = await connect(pb, port, "cn-of-gw-7", ssl_ctx=_client_ctx(pki, "uri"))
        code, reason = await refused(n)
        assert code == 1008, reason

    run(go())
    assert m.wait_for_stderr('node id edge-2 refused: the client certificate names another node '
                             '(CN edge-1)', timeout=1), m.stderr
    assert m.wait_for_stderr("(URI SAN urn:meshlet:gw-7)", timeout=1), m.stderr
    ctx = _client_ctx(pki, "edge-1")
    assert sorted(n["id"] for n in fleet_tls(port, ctx)["nodes"]) == ["edge-1",
                                                                      "urn:meshlet:gw-7"]
    assert stats(port, ctx)["controller.hello_refused_identity"] == 2


def fleet_tls(port, ctx):
    import json
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/fleet", timeout=WAIT,
                                context=ctx) as r:
        return json.loads(r.read())


# ---- the node id rule -------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["a" * (NODE_ID_MAX + 1), "edge 1", "edge\x01\x1b[31m", "é-1",
                                 "a/b", "..", ".hidden", "edge;rm", ""])
def test_node_id_outside_the_rule_is_refused(pb, controller, configs, bad):
    (configs / "default.ini").write_text(INI)
    m, port = controller()

    async def go():
        n = await connect(pb, port, bad)
        code, _ = await refused(n)
        assert code == 1008

    run(go())
    assert m.wait_for_stderr("not a safe file name", timeout=1)
    # What the node sent reaches the log escaped: no terminal escape, no control byte.
    assert "\x1b" not in m.stderr and "\x01" not in m.stderr
    assert fleet(port)["nodes"] == []
    assert stats(port)["controller.hello_refused_bad_id"] == 1


def test_node_ids_inside_the_rule_are_served(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()
    ids = ["a" * NODE_ID_MAX, "gw-1.site_a:rack-2", "Z9"]

    async def go():
        for node_id in ids:
            n = await connect(pb, port, node_id)
            assert (await n.push()).ini == INI.encode()
            await n.close()

    run(go())
    assert sorted(n["id"] for n in fleet(port)["nodes"]) == sorted(ids)


# ---- answers count only for the push outstanding on their connection -------------------------

def test_stale_or_forged_answers_are_ignored_and_counted(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()

    async def go():
        a = await connect(pb, port, "edge-a")
        b = await connect(pb, port, "edge-b")
        push = await a.push()
        push_b = await b.push()
        # Wrong nonce, wrong version, and edge-a's answer sent on edge-b's connection.
        await a.send(ack=pb.Ack(version=push.version, nonce=push.nonce + 1))
        await a.send(nack=pb.Nack(version="0123456789abcdef", nonce=push.nonce, error="forged"))
        await a.send(ack=pb.Ack(version="not-pushed", nonce=push.nonce))
        await b.send(nack=pb.Nack(version=push.version, nonce=push.nonce, error="not yours"))
        assert wait_until(lambda: stats(port)["controller.answers_ignored"] == 4)
        for node_id in ("edge-a", "edge-b"):
            got = node_of(port, node_id)
            assert (got["config_version"], got["last_nack"]) == ("", None), got
        # The real answer counts, once.
        await a.ack(push)
        assert wait_until(lambda: node_of(port, "edge-a")["config_version"] == push.version)
        await a.send(nack=pb.Nack(version=push.version, nonce=push.nonce, error="replayed"))
        assert wait_until(lambda: stats(port)["controller.answers_ignored"] == 5)
        assert node_of(port, "edge-a")["last_nack"] is None
        await b.ack(push_b)
        assert wait_until(lambda: node_of(port, "edge-b")["config_version"] == push_b.version)
        await a.close()
        await b.close()

    run(go())
    assert m.wait_for_stderr("ignored: the push outstanding is", timeout=1)


def test_answer_after_reconnect_does_not_count_for_the_new_connection(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()

    async def go():
        a = await connect(pb, port, "edge-1")
        old = await a.push()
        await a.close()
        a = await connect(pb, port, "edge-1")
        new = await a.push()
        assert new.nonce != old.nonce
        # An answer for the push of the earlier connection: stale.
        await a.send(ack=pb.Ack(version=old.version, nonce=old.nonce))
        assert wait_until(lambda: stats(port)["controller.answers_ignored"] == 1)
        assert node_of(port, "edge-1")["config_version"] == ""
        await a.ack(new)
        assert wait_until(lambda: node_of(port, "edge-1")["config_version"] == new.version)
        await a.close()

    run(go())


# ---- two connections with one id --------------------------------------------------------------

def test_two_nodes_with_one_id_do_not_flap(pb, controller, configs):
    """The first connection keeps the id while it is alive: the second is refused every time
    it tries, and neither the record nor the first connection notices."""
    (configs / "default.ini").write_text(INI)
    m, port = controller()
    attempts = 5

    async def hello(board):
        ws = await asyncio.wait_for(
            websockets.connect(f"ws://127.0.0.1:{port}/", subprotocols=["meshlet.fleet.v1"]),
            WAIT)
        await ws.send(pb.Envelope(hello=pb.Hello(node_id="edge-1", board=board,
                                                 version="0.0.0-test")).SerializeToString())
        return ws

    async def go():
        first = await connect(pb, port, "edge-1")
        push = await first.push()
        await first.ack(push)
        assert wait_until(lambda: node_of(port, "edge-1")["config_version"] == push.version)
        for _ in range(attempts):
            ws = await hello("the-twin")
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT)
            assert ws.close_code == 1008 and "in use" in ws.close_reason, ws.close_reason
            got = node_of(port, "edge-1")
            assert (got["board"], got["connected"], got["config_version"]) == (
                "test-board", True, push.version), got
        # The first connection saw nothing: no close, no second push.
        await first.no_message(QUIET)
        assert stats(port)["controller.hello_refused_in_use"] == attempts
        assert m.stderr.count("push version") == 1, m.stderr
        # Once the first is gone, the id is free again.
        await first.close()
        assert wait_until(lambda: node_of(port, "edge-1")["connected"] is False)
        ws = await hello("the-twin")
        env = pb.Envelope.FromString(await asyncio.wait_for(ws.recv(), WAIT))
        assert env.WhichOneof("msg") == "push"
        assert node_of(port, "edge-1")["board"] == "the-twin"
        await ws.close()

    run(go())


# ---- GET /fleet stays bounded -----------------------------------------------------------------

@pytest.mark.timeout(240)
def test_fleet_stays_bounded_with_700_nodes_nacking_4k_of_control_bytes(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()
    nodes = 700
    # 4 KiB of control bytes that each escape to 6 ("\u0001"; not \t \n \r, which take 2):
    # 700 whole errors would pass the 16 MiB cap of GET /fleet.
    control = bytes(b for b in range(1, 32) if b not in b"\t\n\r")
    error = (control * 200)[:4096].decode()
    deadline = time.monotonic() + scaled(150)

    async def one(i):
        n = await connect(pb, port, f"edge-{i:04d}")
        push = await n.push()
        await n.send(nack=pb.Nack(version=push.version, nonce=push.nonce, error=error))
        await n.close()

    async def go():
        batch = 25  # connections at once: far under ML_CTL_MAX_CONNS and any fd limit
        for start in range(0, nodes, batch):
            assert time.monotonic() < deadline, f"only {start} nodes in the time"
            await asyncio.gather(*(one(i) for i in range(start, min(nodes, start + batch))))

    run(go())
    assert wait_until(lambda: sum(n["last_nack"] is not None for n in fleet(port)["nodes"])
                      == nodes, timeout=scaled(20))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/fleet", timeout=WAIT) as r:
        assert r.status == 200
        body = r.read()
    import json
    got = json.loads(body)["nodes"]
    assert len(got) == nodes
    for n in got:
        shown = n["last_nack"]["error"]
        assert shown.endswith(CUT_MARKER), shown[-40:]
        # Whole characters only: a prefix of what the node sent, then the marker.
        assert error.startswith(shown[:-len(CUT_MARKER)])
    # Each record is bounded: 1 KiB of escaped error plus the rest of the record.
    assert len(body) < nodes * 2048, len(body)


# ---- a cap on connections ---------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_idle_sockets_over_the_cap_are_closed_and_counted(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()
    extra = 20
    socks = []
    try:
        for _ in range(MAX_CONNS + extra):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=WAIT))
        # The ones over the cap are closed as they are accepted: their EOF is there at once
        # (well before the idle sockets' own handshake timeout, 10 s).
        time.sleep(min(1.0, WAIT))
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed += 1
        assert closed == extra, closed
        assert m.wait_for_stderr("(ML_CTL_MAX_CONNS)", timeout=1)
    finally:
        for s in socks:
            s.close()
    # The idle ones gone, the controller serves again, and says what it refused.
    assert wait_until(lambda: stats(port)["controller.conns_refused_over_cap"] == extra)

    async def go():
        n = await connect(pb, port, "edge-1")
        assert (await n.push()).ini == INI.encode()
        await n.close()

    run(go())


# ---- a dead first connection does not hold the id for ever ----------------------------------

def _raw_websocket_hello(port, pb, node_id):
    """A WebSocket that says Hello and then never reads: it answers no ping, as a peer gone
    without a FIN (NAT, power) would not. The socket, to close at the end."""
    import base64
    import os
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: meshlet.fleet.v1\r\n\r\n")
              .encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = pb.Envelope(hello=pb.Hello(node_id=node_id, board="silent",
                                         version="0.0.0-test")).SerializeToString()
    assert len(payload) < 126
    mask = os.urandom(4)
    s.sendall(bytes([0x82, 0x80 | len(payload)]) + mask +
              bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return s


@pytest.mark.timeout(150)
def test_silent_first_connection_is_dropped_and_frees_its_id(pb, controller, configs):
    """Pinged after 30 s, closed 60 s after connecting without a pong (ws.c PING_AFTER_S,
    HANGUP_AFTER_S): then the node gets its id back."""
    (configs / "default.ini").write_text(INI)
    m, port = controller()
    silent = _raw_websocket_hello(port, pb, "edge-1")
    try:
        assert wait_until(lambda: [n["board"] for n in fleet(port)["nodes"]] == ["silent"])
        started = time.monotonic()

        async def refused_while_held():
            n = await connect(pb, port, "edge-1")
            code, reason = await refused(n)
            assert code == 1008 and "in use" in reason

        run(refused_while_held())
        assert wait_until(lambda: node_of(port, "edge-1")["connected"] is False,
                          timeout=scaled(100))
        held = time.monotonic() - started
        assert 20 < held < scaled(100), held

        async def served_after():
            n = await connect(pb, port, "edge-1")
            assert (await n.push()).ini == INI.encode()
            await n.close()

        run(served_after())
    finally:
        silent.close()
