"""The fleet WebSocket over TLS 1.3 (runtime/fleet/README.md "TLS"): libwebsockets 4.3.5's mbedTLS
wrapper capped every lws TLS context at TLS 1.2; firmware/deps/patches/libwebsockets/ lifts the
cap to TLS 1.3 (the minimum stays TLS 1.2) and meshlet initialises PSA crypto, which mbedTLS 3.6's
TLS 1.3 needs, before libwebsockets starts.

Both ends that use lws's TLS are tried against independent peers: the node's fleet client
against a controller written with python3-websockets on Python's ssl (OpenSSL) that allows only
TLS 1.3 (or only 1.2, or only 1.1), and `meshlet controller` serving wss against `openssl
s_client` and a python3-websockets node. Certificates are made here with openssl (P-256). Every
wait is bounded."""

import asyncio
import json
import ssl
import subprocess
import urllib.request
import warnings

import pytest
import websockets

import grpc_peers
from conftest import scaled
from fleet_peers import PyController, fleet_pb2, make_ca, make_leaf
from grpc_peers import channel, unary

PROTOCOL = "meshlet.fleet.v1"
PREFIX = f"/{grpc_peers.SERVICE}/"
WAIT = scaled(10)


# ---- certificates and peers ---------------------------------------------------------------------

@pytest.fixture
def pki(workdir):
    d = workdir / "pki"
    d.mkdir()
    make_ca(d, "ca")
    make_leaf(d, "controller", "ca", "subjectAltName=IP:127.0.0.1")
    make_leaf(d, "gw-1", "ca", "extendedKeyUsage=clientAuth")
    return d


def server_ctx(pki, minimum=None, maximum=None):
    """A server context for the Python controller, limited to the versions given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "controller.crt"), str(pki / "controller.key"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1, on purpose
        if minimum is not None and minimum < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3's default security level refuses TLS 1.1 outright.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    # Python's default, made explicit: a TLS 1.3 server sends two NewSessionTickets right after
    # the handshake, which the node's mbedTLS must take as "no data yet", not as an error.
    ctx.num_tickets = 2
    return ctx


@pytest.fixture
def py_controller(free_port):
    """py_controller(ssl_context) → a started PyController that records, per connection, the TLS
    version its ssl object negotiated (.tls_versions)."""
    started = []

    async def record_version(ctl, ws):
        ctl.tls_versions.append(ws.transport.get_extra_info("ssl_object").version())

    def start(ctx):
        c = PyController(free_port(), ssl_context=ctx, on_connect=record_version)
        c.tls_versions = []
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def data_plane(listen_port, endpoint_port):
    return (f"[listener in]\nbind = 127.0.0.1:{listen_port}\n\n"
            f"[route all]\nlistener = in\nprefix = {PREFIX}\nto = c\n\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{endpoint_port}\n")


def start_node(run_meshlet, free_port, pki, ctl_port, backend):
    """meshlet whose [fleet] dials wss://127.0.0.1:ctl_port with the test CA and a client
    certificate; its local file routes to backend."""
    listen = free_port()
    text = ("[node]\nid = gw-1\n\n"
            f"[fleet]\nurl = wss://127.0.0.1:{ctl_port}/fleet/v1\nca = {pki / 'ca.crt'}\n"
            f"cert = {pki / 'gw-1.crt'}\nkey = {pki / 'gw-1.key'}\n"
            "backoff = 100ms..1s\nreport_interval = 1s\n\n" + data_plane(listen, backend.port))
    m = run_meshlet(text)
    assert m.alive(), m.stderr
    return m, listen


def stats(m):
    port = int(next(line.split(":")[-1] for line in m.config_path.read_text().splitlines()
                    if line.startswith("admin = ")))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=WAIT) as r:
        body = r.read().decode()
    return {k: int(v) for k, v in (line.rsplit(" ", 1) for line in body.splitlines())}


def who(listen):
    with channel(listen) as ch:
        return unary(ch, "Say")(b"x", timeout=WAIT).split(b":")[0].decode()


def s_client(port, pki, *version_args, cert="gw-1"):
    """`openssl s_client -brief` to 127.0.0.1:port verifying against the test CA (and presenting
    cert): (exit code, everything it printed)."""
    argv = ["openssl", "s_client", "-brief", "-connect", f"127.0.0.1:{port}",
            "-CAfile", str(pki / "ca.crt"), "-verify_return_error", *version_args]
    if cert is not None:
        argv += ["-cert", str(pki / f"{cert}.crt"), "-key", str(pki / f"{cert}.key")]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=WAIT)
    return r.returncode, r.stdout + r.stderr


# ---- the node's fleet client ----------------------------------------------------------------------

def test_fleet_client_negotiates_tls13_with_a_tls13_only_controller(run_meshlet, free_port,
                                                                    backends, pki, py_controller):
    """Hello → Push → Ack over TLS 1.3, and the connection stays up past the server's
    NewSessionTickets (a push after them is still answered on the same connection)."""
    a, b = backends("A"), backends("B")
    ctl = py_controller(server_ctx(pki, minimum=ssl.TLSVersion.TLSv1_3))
    m, listen = start_node(run_meshlet, free_port, pki, ctl.port, a)
    hello = ctl.wait_hello(timeout=15)
    assert hello, f"no Hello over TLS 1.3-only wss:\n{m.stderr}"
    assert hello.node_id == "gw-1"
    assert ctl.tls_versions == ["TLSv1.3"], ctl.tls_versions

    answer = ctl.push(data_plane(listen, b.port), version="v-tls13")
    assert answer.WhichOneof("msg") == "ack", answer
    assert answer.ack.version == "v-tls13"
    assert who(listen) == "B"
    # a Status after the push: the same connection still carries traffic both ways
    seen = len(ctl.statuses)
    assert ctl.wait_for(lambda: len(ctl.statuses) > seen, timeout=5), m.stderr
    st = stats(m)
    assert st["fleet_connects_total"] == 1 and st["fleet_disconnects_total"] == 0, st
    assert ctl.connections == 1


def test_fleet_client_still_speaks_tls12_to_a_tls12_only_controller(run_meshlet, free_port,
                                                                    backends, pki,
                                                                    py_controller):
    """The minimum stays TLS 1.2: a controller that cannot do 1.3 is still reached."""
    a, b = backends("A"), backends("B")
    ctl = py_controller(server_ctx(pki, maximum=ssl.TLSVersion.TLSv1_2))
    m, listen = start_node(run_meshlet, free_port, pki, ctl.port, a)
    assert ctl.wait_hello(timeout=15), m.stderr
    assert ctl.tls_versions == ["TLSv1.2"], ctl.tls_versions
    answer = ctl.push(data_plane(listen, b.port), version="v-tls12")
    assert answer.WhichOneof("msg") == "ack", answer
    assert who(listen) == "B"


def test_fleet_client_refuses_a_tls11_only_controller(run_meshlet, free_port, backends, pki,
                                                      py_controller):
    """A controller that offers only TLS 1.1 gets no Hello: each attempt fails in the handshake,
    is counted and logged, and the node keeps serving its local config."""
    a = backends("A")
    ctl = py_controller(server_ctx(pki, minimum=ssl.TLSVersion.TLSv1_1,
                                   maximum=ssl.TLSVersion.TLSv1_1))
    # The control: this controller really speaks TLS 1.1 to a client that offers it.
    rc, out = s_client(ctl.port, pki, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", cert=None)
    assert rc == 0 and "Protocol version: TLSv1.1" in out, out
    m, listen = start_node(run_meshlet, free_port, pki, ctl.port, a)
    assert m.wait_for_stderr("fleet: c2: cannot connect", timeout=15), m.stderr
    st = stats(m)
    assert st["fleet_connects_total"] == 0 and st["fleet_connect_failures_total"] >= 2, st
    assert not ctl.hellos
    assert who(listen) == "A"
    assert m.alive()


# ---- `meshlet controller` serving wss -------------------------------------------------------------

@pytest.fixture
def meshlet_controller(run_meshlet, free_port, workdir, pki):
    """`meshlet controller` with --cert/--key and --ca (client certificates required), serving
    one default config: (Meshlet, port, the config's bytes)."""
    configs = workdir / "configs"
    configs.mkdir()
    ini = data_plane(free_port(), free_port()).encode()
    (configs / "default.ini").write_bytes(ini)
    port = free_port()
    m = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs", configs,
                    "--cert", pki / "controller.crt", "--key", pki / "controller.key",
                    "--ca", pki / "ca.crt")
    assert m.alive(), m.stderr
    return m, port, ini


def node_ctx(pki, **limits):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "gw-1.crt"), str(pki / "gw-1.key"))
    for k, v in limits.items():
        setattr(ctx, k, v)
    return ctx


def push_over(port, ctx):
    """A python3-websockets node says Hello over ctx and returns (the Push it gets, the TLS
    version of the connection)."""
    pb = fleet_pb2()

    async def go():
        ws = await asyncio.wait_for(
            websockets.connect(f"wss://127.0.0.1:{port}/", subprotocols=[PROTOCOL], ssl=ctx,
                               max_size=1 << 20), WAIT)
        try:
            version = ws.transport.get_extra_info("ssl_object").version()
            await ws.send(pb.Envelope(hello=pb.Hello(node_id="gw-1", board="test-board",
                                                     version="0.0.0-test")).SerializeToString())
            env = pb.Envelope.FromString(await asyncio.wait_for(ws.recv(), WAIT))
            return env, version
        finally:
            await ws.close()

    return asyncio.run(go())


def test_meshlet_controller_serves_tls13_and_still_tls12(meshlet_controller, pki):
    m, port, ini = meshlet_controller
    rc, out = s_client(port, pki, "-tls1_3")
    assert rc == 0 and "Protocol version: TLSv1.3" in out, out
    rc, out = s_client(port, pki, "-tls1_2")
    assert rc == 0 and "Protocol version: TLSv1.2" in out, out

    # A whole WebSocket exchange on each: the controller pushes its config after the Hello.
    for limits, want in (({"minimum_version": ssl.TLSVersion.TLSv1_3}, "TLSv1.3"),
                         ({"maximum_version": ssl.TLSVersion.TLSv1_2}, "TLSv1.2")):
        env, version = push_over(port, node_ctx(pki, **limits))
        assert version == want
        assert env.WhichOneof("msg") == "push" and env.push.ini == ini, env
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/fleet", timeout=WAIT,
                                context=node_ctx(pki,
                                                 minimum_version=ssl.TLSVersion.TLSv1_3)) as r:
        assert [n["id"] for n in json.loads(r.read())["nodes"]] == ["gw-1"]
    assert m.alive(), m.stderr


def test_meshlet_controller_refuses_tls11(meshlet_controller, pki):
    """A client that offers only TLS 1.1 fails the handshake; the next good client is served."""
    m, port, ini = meshlet_controller
    rc, out = s_client(port, pki, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert rc != 0 and "Protocol version: TLSv1.1" not in out, out
    env, version = push_over(port, node_ctx(pki, minimum_version=ssl.TLSVersion.TLSv1_3))
    assert version == "TLSv1.3" and env.push.ini == ini, env
    assert m.alive(), m.stderr


def test_node_with_an_untrusted_certificate_gets_nothing_over_tls13(run_meshlet, free_port,
                                                                   backends, pki,
                                                                   meshlet_controller):
    """Under TLS 1.3 the controller refuses a client certificate after the node's side of the
    handshake is done: the node still never connects, gets no push, logs each attempt and keeps
    its local config; the controller still serves a good node afterwards."""
    m_ctl, port, ini = meshlet_controller
    make_ca(pki, "other-ca")
    make_leaf(pki, "stranger", "other-ca", "extendedKeyUsage=clientAuth", cn="gw-1")
    a = backends("A")
    listen = free_port()
    text = ("[node]\nid = gw-1\n\n"
            f"[fleet]\nurl = wss://127.0.0.1:{port}/fleet/v1\nca = {pki / 'ca.crt'}\n"
            f"cert = {pki / 'stranger.crt'}\nkey = {pki / 'stranger.key'}\n"
            "backoff = 100ms..1s\n\n" + data_plane(listen, a.port))
    m = run_meshlet(text)
    assert m.wait_for_stderr("fleet: c2: cannot connect", timeout=15), m.stderr
    first = next(line for line in m.stderr.splitlines() if "fleet: c1: cannot connect" in line)
    # Where the refusal lands depends on timing: in the handshake (the node's certificate
    # write meets the closed socket) or at the first read after it (lws' bare "read failed").
    # Either way the log line names the likely cause.
    assert "client certificate" in first, first
    st = stats(m)
    assert st["fleet_connects_total"] == 0 and st["fleet_pushes_total"] == 0, st
    assert who(listen) == "A"
    env, version = push_over(port, node_ctx(pki, minimum_version=ssl.TLSVersion.TLSv1_3))
    assert version == "TLSv1.3" and env.push.ini == ini, env
