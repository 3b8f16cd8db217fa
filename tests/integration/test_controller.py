"""`meshlet controller` (runtime/fleet/README.md), end to end: the tests play the nodes with python3-websockets
and Google's protobuf (fleet_pb2 generated from runtime/fleet/fleet.proto into a temporary
directory with the system protoc), and read GET /fleet with urllib. Every wait is bounded."""

import asyncio
import hashlib
import importlib
import json
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest
import websockets

from conftest import ROOT, scaled
from fleet_peers import make_ca, make_leaf

PROTOCOL = "meshlet.fleet.v1"
WAIT = scaled(5)         # for what must happen (a push after a file change: poll is 500 ms)
QUIET = scaled(1.5)      # for what must not happen

INI = ("[listener main]\nbind = 127.0.0.1:15001\n\n"
       "[cluster greeter]\nendpoint = 127.0.0.1:50051\n\n"
       "[route hello]\nlistener = main\nprefix = /helloworld.Greeter/\nto = greeter\n")


def version_of(data):
    return hashlib.sha256(data).hexdigest()[:16]


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    out = tmp_path_factory.mktemp("fleet_pb2")
    proto_dir = ROOT / "runtime" / "fleet"
    subprocess.run(["/usr/bin/protoc", f"--python_out={out}", f"-I{proto_dir}",
                    str(proto_dir / "fleet.proto")], check=True)
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("fleet_pb2")
    finally:
        sys.path.remove(str(out))


@pytest.fixture
def configs(workdir):
    d = workdir / "configs"
    d.mkdir()
    return d


@pytest.fixture
def controller(run_meshlet, free_port, configs):
    """controller(*extra, port=None) → (Meshlet, port): `meshlet controller` on a free loopback
    port serving `configs`, running (it logged "running") or the test fails."""

    def start(*extra, port=None):
        port = port or free_port()
        m = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs",
                        configs, *extra)
        assert m.alive(), f"controller exited {m.returncode}:\n{m.stderr}"
        return m, port

    return start


def fleet(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/fleet", timeout=WAIT) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        return json.loads(r.read())


def node_of(port, node_id):
    nodes = [n for n in fleet(port)["nodes"] if n["id"] == node_id]
    assert len(nodes) == 1, nodes
    return nodes[0]


def wait_until(check, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


class Node:
    """One fake node: a WebSocket that said Hello."""

    def __init__(self, pb, ws):
        self.pb = pb
        self.ws = ws

    async def send(self, **kw):
        await self.ws.send(self.pb.Envelope(**kw).SerializeToString())

    async def recv(self, timeout=WAIT):
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(data, bytes)
        return self.pb.Envelope.FromString(data)

    async def push(self, timeout=WAIT):
        env = await self.recv(timeout)
        assert env.WhichOneof("msg") == "push", env
        return env.push

    async def no_message(self, seconds=QUIET):
        with pytest.raises(asyncio.TimeoutError):
            await self.recv(seconds)

    async def ack(self, push):
        await self.send(ack=self.pb.Ack(version=push.version, nonce=push.nonce))

    async def close(self):
        await self.ws.close()


async def connect(pb, port, node_id, config_version="", ssl_ctx=None, hello=True):
    scheme = "wss" if ssl_ctx is not None else "ws"
    ws = await asyncio.wait_for(
        websockets.connect(f"{scheme}://127.0.0.1:{port}/", subprotocols=[PROTOCOL], ssl=ssl_ctx,
                           max_size=1 << 20), WAIT)
    n = Node(pb, ws)
    if hello:
        await n.send(hello=pb.Hello(node_id=node_id, board="test-board", version="0.0.0-test",
                                    config_version=config_version,
                                    features=["fleet", "lb.maglev"]))
    return n


def run(coro):
    return asyncio.run(coro)


# ---- pushes, answers and GET /fleet -------------------------------------------------------

def test_hello_gets_default_ini_with_its_sha256_as_version(pb, controller, configs):
    text = INI.encode()
    (configs / "default.ini").write_bytes(text)
    m, port = controller()

    async def go():
        n = await connect(pb, port, "edge-1")
        push = await n.push()
        assert push.version == version_of(text)
        assert push.ini == text
        assert push.nonce > 0
        await n.close()

    run(go())


def test_fleet_json_shows_hello_ack_and_status(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()
    assert fleet(port)["nodes"] == []

    async def go():
        n = await connect(pb, port, "edge-1", config_version="local-0123456789ab")
        push = await n.push()
        await n.ack(push)
        assert wait_until(lambda: node_of(port, "edge-1")["config_version"] == push.version)
        got = node_of(port, "edge-1")
        want = {"id": "edge-1", "board": "test-board", "version": "0.0.0-test",
                "features": ["fleet", "lb.maglev"], "connected": True,
                "config_version": push.version, "last_nack": None, "last_status": None}
        assert {k: got[k] for k in want} == want
        await n.send(status=pb.Status(config_version=push.version, uptime_s=7,
                                      calls_total=1000, calls_failed=3, endpoints_healthy=2,
                                      endpoints_total=3))
        assert wait_until(lambda: node_of(port, "edge-1")["last_status"] is not None)
        assert node_of(port, "edge-1")["last_status"] == {
            "config_version": push.version, "uptime_s": 7, "calls_total": 1000,
            "calls_failed": 3, "endpoints_healthy": 2, "endpoints_total": 3}
        await n.close()

    run(go())
    # Nodes stay listed after they disconnect.
    assert wait_until(lambda: node_of(port, "edge-1")["connected"] is False)


def test_fleet_json_escapes_what_nodes_send(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()
    nasty = 'q"uote\\back\nline\x01\u00e9'

    async def go():
        n = await connect(pb, port, "edge-esc")
        push = await n.push()
        await n.send(nack=pb.Nack(version=push.version, nonce=push.nonce, error=nasty))
        assert wait_until(lambda: node_of(port, "edge-esc")["last_nack"] is not None)
        assert node_of(port, "edge-esc")["last_nack"] == {"version": push.version,
                                                          "transient": False, "error": nasty}
        await n.close()

    run(go())


def test_nacked_version_is_not_pushed_again_until_the_file_changes(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()

    async def go():
        n = await connect(pb, port, "edge-1")
        push = await n.push()
        await n.send(nack=pb.Nack(version=push.version, nonce=push.nonce,
                                  error="push:3: [listener main] bind: address in use"))
        assert wait_until(lambda: node_of(port, "edge-1")["last_nack"] is not None)
        assert node_of(port, "edge-1")["last_nack"] == {
            "version": push.version, "transient": False,
            "error": "push:3: [listener main] bind: address in use"}
        await n.close()

        # Reconnecting (still on its local file) does not bring the nacked version back.
        n = await connect(pb, port, "edge-1")
        await n.no_message()
        # A new version of the file is pushed.
        text2 = (INI + "# second\n").encode()
        (configs / "default.ini").write_bytes(text2)
        push2 = await n.push()
        assert push2.version == version_of(text2) != push.version
        assert push2.nonce > push.nonce
        await n.close()

    run(go())
    assert m.wait_for_stderr("nacked version", timeout=1)


def test_changed_file_is_pushed_to_the_connected_node(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()

    async def go():
        n = await connect(pb, port, "edge-1")
        await n.ack(await n.push())
        await n.no_message()
        text2 = INI.replace("/helloworld.Greeter/", "/helloworld.Greeter2/").encode()
        (configs / "default.ini").write_bytes(text2)
        push2 = await n.push()
        assert push2.version == version_of(text2)
        assert push2.ini == text2
        await n.ack(push2)
        assert wait_until(lambda: node_of(port, "edge-1")["config_version"] == push2.version)
        await n.close()

    run(go())


def test_node_file_wins_over_default_ini(pb, controller, configs):
    default = INI.encode()
    own = (INI + "# only for edge-7\n").encode()
    (configs / "default.ini").write_bytes(default)
    (configs / "edge-7.ini").write_bytes(own)
    m, port = controller()

    async def go():
        a = await connect(pb, port, "edge-7")
        b = await connect(pb, port, "edge-8")
        assert (await a.push()).ini == own
        assert (await b.push()).ini == default
        # edge-8 gets a file of its own: it moves to it; edge-7 is not disturbed.
        own8 = (INI + "# now edge-8's\n").encode()
        (configs / "edge-8.ini").write_bytes(own8)
        push8 = await b.push()
        assert (push8.ini, push8.version) == (own8, version_of(own8))
        await a.no_message(0.5)
        await a.close()
        await b.close()

    run(go())


def test_restarted_controller_does_not_push_what_the_node_runs(pb, controller, configs):
    text = INI.encode()
    (configs / "default.ini").write_bytes(text)
    m, port = controller()

    async def first():
        n = await connect(pb, port, "edge-1")
        push = await n.push()
        await n.ack(push)
        await n.close()
        return push.version

    version = run(first())
    m.send_signal(signal.SIGTERM)
    assert m.wait() == 0
    m2, port2 = controller()

    async def again():
        n = await connect(pb, port2, "edge-1", config_version=version)
        await n.no_message()
        assert node_of(port2, "edge-1")["config_version"] == version
        await n.close()

    run(again())


# ---- what the controller does not check for the node -----------------------------------------

def test_config_that_does_not_check_is_pushed_and_its_nack_shown(pb, controller, configs):
    # The controller says what its own check finds, but the node is the judge: it gets the
    # file, nacks it, and the Nack is what /fleet shows (the node keeps its config).
    bad = "[route r]\nto = nowhere\n"
    (configs / "default.ini").write_text(bad)
    m, port = controller()
    assert m.wait_for_stderr("does not check here, pushed anyway", timeout=WAIT), m.stderr
    assert "to = nowhere" in m.stderr or "nowhere" in m.stderr, m.stderr

    async def go():
        n = await connect(pb, port, "edge-1")
        push = await n.push()
        assert push.ini == bad.encode() and push.version == version_of(bad.encode())
        await n.send(nack=pb.Nack(version=push.version, nonce=push.nonce,
                                  error='push:2: [route r] to: expected a cluster, got "nowhere"'))
        assert wait_until(lambda: node_of(port, "edge-1")["last_nack"] is not None)
        assert node_of(port, "edge-1")["last_nack"]["version"] == push.version
        # fixed: the new version goes out
        (configs / "default.ini").write_text(INI)
        assert (await n.push()).ini == INI.encode()
        await n.close()

    run(go())


def test_unsafe_node_id_is_refused(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()

    async def go():
        for bad in ("../etc/passwd", ".hidden", ""):
            n = await connect(pb, port, bad)
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await n.recv()
            assert n.ws.close_code == 1008

    run(go())
    assert m.wait_for_stderr("not a safe file name", timeout=1)
    assert fleet(port)["nodes"] == []


# ---- bad peers ------------------------------------------------------------------------------

def test_garbage_frame_closes_that_connection_only(pb, controller, configs):
    (configs / "default.ini").write_text(INI)
    m, port = controller()

    async def go():
        good = await connect(pb, port, "edge-good")
        push = await good.push()
        bad = await connect(pb, port, "edge-bad", hello=False)
        await bad.ws.send(b"\xff\xff\xff\xff garbage")
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await bad.recv()
        assert bad.ws.close_code == 1002
        text = await connect(pb, port, "edge-text", hello=False)
        await text.ws.send("a text frame")
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await text.recv()
        big = await connect(pb, port, "edge-big", hello=False)
        await big.ws.send(b"\x00" * (16384 + 1))  # ML_CTL_MAX_NODE_MESSAGE_BYTES + 1
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await big.recv()
        assert big.ws.close_code == 1009
        # The controller still serves the others.
        await good.ack(push)
        assert wait_until(lambda: node_of(port, "edge-good")["config_version"] == push.version)
        late = await connect(pb, port, "edge-late")
        assert (await late.push()).version == push.version
        await good.close()
        await late.close()

    run(go())
    assert m.wait_for_stderr("undecodable envelope", timeout=1)
    assert m.alive()


# ---- TLS ------------------------------------------------------------------------------------

@pytest.fixture
def pki(workdir):
    d = workdir / "pki"
    d.mkdir()
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_leaf(d, "server", "ca", "subjectAltName=IP:127.0.0.1")
    make_leaf(d, "edge-1", "ca", "extendedKeyUsage=clientAuth")
    make_leaf(d, "stranger", "other-ca", "extendedKeyUsage=clientAuth")
    return d


def _client_ctx(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert is not None:
        ctx.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    return ctx


def test_tls_with_client_certificates(pb, controller, configs, pki):
    (configs / "default.ini").write_text(INI)
    m, port = controller("--cert", pki / "server.crt", "--key", pki / "server.key", "--ca",
                         pki / "ca.crt")

    async def go():
        n = await connect(pb, port, "edge-1", ssl_ctx=_client_ctx(pki, "edge-1"))
        assert (await n.push()).ini == INI.encode()
        await n.close()
        # No certificate, or one from another CA: refused in the handshake (under TLS 1.3 the
        # client learns it only at its first read, hence the recv()).
        for cert in (None, "stranger"):
            with pytest.raises((ssl.SSLError, OSError, EOFError,
                                websockets.exceptions.InvalidHandshake,
                                websockets.exceptions.ConnectionClosed, asyncio.TimeoutError)):
                n = await connect(pb, port, f"no-{cert}", ssl_ctx=_client_ctx(pki, cert))
                await n.recv()
        # Plain WebSocket to the TLS port: no.
        with pytest.raises((OSError, EOFError, websockets.exceptions.InvalidHandshake,
                            websockets.exceptions.ConnectionClosed, asyncio.TimeoutError)):
            n = await connect(pb, port, "plain")
            await n.recv()

    run(go())
    assert [n["id"] for n in fleet_tls(port, pki)["nodes"]] == ["edge-1"]


def fleet_tls(port, pki):
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/fleet", timeout=WAIT,
                                context=_client_ctx(pki, "edge-1")) as r:
        return json.loads(r.read())


def test_tls_without_ca_needs_no_client_certificate(pb, controller, configs, pki):
    (configs / "default.ini").write_text(INI)
    m, port = controller("--cert", pki / "server.crt", "--key", pki / "server.key")

    async def go():
        n = await connect(pb, port, "edge-1", ssl_ctx=_client_ctx(pki))
        assert (await n.push()).ini == INI.encode()
        await n.close()

    run(go())


# ---- the command line -----------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    [],
    ["--listen", "127.0.0.1:1"],
    ["--configs", "."],
    ["--listen", "nohost", "--configs", "."],
    ["--listen", "127.0.0.1:0", "--configs", "."],
    ["--listen", "127.0.0.1:99999", "--configs", "."],
    ["--listen", "127.0.0.1:1", "--configs", ".", "--cert", "x"],
    ["--listen", "127.0.0.1:1", "--configs", ".", "--ca", "x"],
    ["--listen", "127.0.0.1:1", "--configs", ".", "--bogus"],
])
def test_bad_arguments_exit_64_with_usage(meshlet, args):
    r = meshlet("controller", *args)
    assert r.returncode == 64, r.stderr  # EX_USAGE
    assert "usage: meshlet controller" in r.stderr


def test_cannot_start_exits_3_with_the_reason(meshlet, workdir, configs, free_port):
    port = free_port()
    r = meshlet("controller", "--listen", f"127.0.0.1:{port}", "--configs", workdir / "missing")
    assert r.returncode == 3 and "missing" in r.stderr, r.stderr
    r = meshlet("controller", "--listen", f"127.0.0.1:{port}", "--configs", configs, "--cert",
                workdir / "no.crt", "--key", workdir / "no.key")
    assert r.returncode == 3 and "no.crt" in r.stderr, r.stderr
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        r = meshlet("controller", "--listen", f"127.0.0.1:{port}", "--configs", configs)
    assert r.returncode == 3 and "in use" in r.stderr, r.stderr
