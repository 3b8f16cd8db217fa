"""TLS to upstream clusters (cluster tls = on | mtls, ca, cert, key, sni, identity), end to end
with real peers: grpcio clients through meshlet (plaintext or TLS listener) to grpcio backends
with grpc.ssl_server_credentials (with and without a required client certificate), and
`openssl s_server` as a backend that does not speak h2. Certificates are made with openssl in
each test's directory (test_tls_listener.Pki). Every refusal is shown with its logged reason,
its counter, and the calls going to the good endpoint."""

import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

import grpc
import pytest

from conftest import scaled
from grpc_peers import bidi, client_stream, server_stream, unary
from test_tls_listener import Pki, tls_channel

CALL_TIMEOUT = scaled(10)
BACKEND_ID = "spiffe://mesh.test/ns/b/sa/greeter"
NODE_ID = "spiffe://mesh.test/ns/gw/sa/node"


# A build without ML_TLS refuses cluster tls: these are skipped there.
pytestmark = pytest.mark.usefixtures("tls_built")


@pytest.fixture
def pki(workdir):
    p = Pki(workdir)
    p.backend = p.issue("backend", "greeter", f"DNS:localhost,URI:{BACKEND_ID}")
    p.node = p.issue("node", "node", f"URI:{NODE_ID}")
    p.client = p.issue("client", "client-cn", "URI:spiffe://mesh.test/ns/a/sa/client")
    return p


def tls_backend(backends, name, pki, cert=None, client_ca=None):
    """A grpcio backend serving TLS with cert (default: pki.backend); client_ca: it requires a
    client certificate chaining to that CA."""
    crt, key = cert or pki.backend
    creds = grpc.ssl_server_credentials(
        [(key.read_bytes(), crt.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None)
    return backends(name, creds=creds)


def cluster(name, ports, pki, mode="on", more=""):
    eps = "".join(f"endpoint = 127.0.0.1:{p}\n" for p in ports)
    text = f"[cluster {name}]\n{eps}tls = {mode}\nca = {pki.ca}\n"
    if mode == "mtls":
        text += f"cert = {pki.node[0]}\nkey = {pki.node[1]}\n"
    return text + more


def start(run_meshlet, free_port, clusters, route_more="", listener=""):
    """meshlet with a listener (plaintext unless listener says) routing every call to cluster
    c → (meshlet, port, admin port)."""
    port, admin = free_port(), free_port()
    text = (f"[node]\nadmin = 127.0.0.1:{admin}\n"
            f"[listener ingress]\nbind = 127.0.0.1:{port}\n{listener}"
            f"[route all]\nlistener = ingress\nto = c\n{route_more}{clusters}")
    m = run_meshlet(text)
    assert m.alive() and "running" in m.stderr, m.stderr
    return m, port, admin


def stats(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats", timeout=CALL_TIMEOUT) as r:
        out = {}
        for line in r.read().decode().splitlines():
            k, _, v = line.rpartition(" ")
            out[k] = v
        return out


def prometheus(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats/prometheus",
                                timeout=CALL_TIMEOUT) as r:
        return r.read().decode()


def tls_stat(admin, name, cluster="c"):
    return int(stats(admin)[f"cluster.{cluster}.upstream_cx_tls_{name}"])


def wait_until(cond, what, timeout=10):
    deadline = time.monotonic() + scaled(timeout)
    while not cond():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.05)


def four_kinds(ch, name="b1"):
    assert unary(ch, "Say")(b"hi", timeout=CALL_TIMEOUT) == f"{name}:hi".encode()
    assert client_stream(ch, "Sum")(iter([b"ab", b"cde"]), timeout=CALL_TIMEOUT) == b"2 5"
    got = list(server_stream(ch, "Repeat")(b"50 20000", timeout=CALL_TIMEOUT))
    assert len(got) == 50 and all(len(m) == 20000 for m in got)
    want = [f"{name}:x".encode(), f"{name}:y".encode()]
    assert list(bidi(ch, "Chat")(iter([b"x", b"y"]), timeout=CALL_TIMEOUT)) == want


def plain_channel(port):
    return grpc.insecure_channel(f"127.0.0.1:{port}")


# ---- served ---------------------------------------------------------------------------------

def test_all_four_call_kinds_to_a_tls_backend(pki, backends, run_meshlet, free_port):
    b = tls_backend(backends, "b1", pki)
    m, port, admin = start(run_meshlet, free_port,
                           cluster("c", [b.port], pki,
                                   more="identity = spiffe://mesh.test/ns/b/*\n"))
    with plain_channel(port) as ch:
        four_kinds(ch)
    assert tls_stat(admin, "handshake") == 1  # one pooled connection carried every call
    assert sum(int(v) for k, v in stats(admin).items()
               if k.startswith("cluster.c.upstream_cx_tls_failed_")) == 0
    assert 'meshlet_upstream_cx_tls_handshake_total{cluster="c"} 1' in prometheus(admin)


def test_tls_on_both_legs_with_mtls_to_a_backend_that_requires_a_client_cert(
        pki, backends, run_meshlet, free_port):
    b = tls_backend(backends, "b1", pki, client_ca=pki.ca)
    listener = (f"tls = mtls\ncert = {pki.backend[0]}\nkey = {pki.backend[1]}\nca = {pki.ca}\n")
    m, port, admin = start(run_meshlet, free_port,
                           cluster("c", [b.port], pki, mode="mtls",
                                   more=f"identity = {BACKEND_ID}\nsni = greeter.mesh.test\n"),
                           listener=listener)
    with tls_channel(port, pki, pki.client) as ch:
        four_kinds(ch)
    assert tls_stat(admin, "handshake") == 1


def test_calls_are_balanced_over_two_tls_backends_per_call(pki, backends, run_meshlet, free_port):
    b1 = tls_backend(backends, "b1", pki)
    b2 = tls_backend(backends, "b2", pki)
    m, port, admin = start(run_meshlet, free_port, cluster("c", [b1.port, b2.port], pki))
    with plain_channel(port) as ch:  # one client connection: the balancing is per call
        got = [unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) for _ in range(10)]
    assert got.count(b"b1:x") == 5 and got.count(b"b2:x") == 5, got
    assert tls_stat(admin, "handshake") == 2


class SniServer:
    """A TLS server offering h2 that records the SNI of each handshake (None: none sent), then
    sends an empty SETTINGS frame and reads until the peer goes."""

    def __init__(self, pki, max_version=None, hang_up=False):
        self.names = []
        self.versions = []
        self.reused = []
        self.errors = []
        self.hang_up = hang_up  # close once the client spoke (its calls fail, it reconnects)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if max_version is not None:
            self.ctx.maximum_version = max_version
        self.ctx.load_cert_chain(str(pki.backend[0]), str(pki.backend[1]))
        self.ctx.set_alpn_protocols(["h2"])
        self.ctx.sni_callback = lambda sock, name, ctx: self.seen.append(name)
        self.seen = []
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.lsock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                continue
            self.seen = []
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.names.append(self.seen[0] if self.seen else None)
                    self.versions.append(tls.version())
                    self.reused.append(tls.session_reused)
                    tls.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                    tls.settimeout(scaled(3))
                    while tls.recv(4096) and not self.hang_up:
                        pass
            except OSError as e:
                self.errors.append(repr(e))

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.lsock.close()


def test_sni_is_sent_as_configured_else_none_for_an_ip_endpoint(pki, run_meshlet, free_port):
    srv = SniServer(pki)
    try:
        for sni, want in (("greeter.mesh.test", "greeter.mesh.test"), (None, None)):
            more = f"sni = {sni}\n" if sni else ""
            m, port, admin = start(run_meshlet, free_port,
                                   cluster("c", [srv.port], pki, more=more))
            with plain_channel(port) as ch, pytest.raises(grpc.RpcError):
                unary(ch, "Say")(b"x", timeout=scaled(1))  # the server never answers calls
            wait_until(lambda: len(srv.names) >= 1, "no handshake reached the server")
            assert srv.names == [want], srv.names
            assert tls_stat(admin, "handshake") == 1  # its SETTINGS confirmed the handshake
            m.kill()
            srv.names.clear()
    finally:
        srv.close()


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_a_reconnect_resumes_the_session(pki, run_meshlet, free_port, version):
    """The server hangs up once meshlet spoke: the next call's connection offers the session
    (ticket) of the first and the server resumes it."""
    srv = SniServer(pki, max_version=getattr(ssl.TLSVersion, version.replace(".", "_")),
                    hang_up=True)
    try:
        m, port, admin = start(run_meshlet, free_port, cluster("c", [srv.port], pki,
                                                               more=f"identity = {BACKEND_ID}\n"))
        for k in (1, 2):
            with plain_channel(port) as ch, pytest.raises(grpc.RpcError):
                unary(ch, "Say")(b"x", timeout=scaled(2))
            wait_until(lambda: len(srv.reused) >= k, lambda: f"no handshake {k}: {srv.errors} {m.stderr}")
        assert srv.versions[:2] == [version, version]
        assert srv.reused[:2] == [False, True], srv.reused
        assert tls_stat(admin, "handshake") >= 2  # the resumed one passed identity too
    finally:
        srv.close()


def test_a_tls12_only_backend_is_served_over_tls12(pki, run_meshlet, free_port):
    srv = SniServer(pki, max_version=ssl.TLSVersion.TLSv1_2)
    try:
        m, port, admin = start(run_meshlet, free_port, cluster("c", [srv.port], pki))
        with plain_channel(port) as ch, pytest.raises(grpc.RpcError):
            unary(ch, "Say")(b"x", timeout=scaled(1))  # the server never answers calls
        wait_until(lambda: len(srv.versions) >= 1, "no handshake reached the server")
        assert srv.versions == ["TLSv1.2"]
        assert tls_stat(admin, "handshake") == 1  # ALPN h2 and its SETTINGS came
    finally:
        srv.close()


def test_connect_timeout_covers_a_handshake_that_never_ends(pki, backends, run_meshlet,
                                                            free_port):
    """An endpoint that accepts TCP and never answers the ClientHello: the connect fails at
    connect_timeout, counted timeout, and the calls go to the good endpoint."""
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody reads
    try:
        refused_case(pki, backends, run_meshlet, free_port, silent.getsockname()[1], "timeout",
                     "TLS handshake (timeout) not done within connect_timeout (300 ms)",
                     more="connect_timeout = 300ms\n", log_reason=False)
    finally:
        silent.close()


# ---- refused: a failed connect, logged and counted by reason; calls go to the good endpoint --

def refused_case(pki, backends, run_meshlet, free_port, bad_port, reason, log_text, mode="on",
                 more="", log_reason=True):
    """A cluster of the bad endpoint and a good TLS backend: every call is answered by the good
    one (the failed connect is retried there, then the bad one backs off); the failure is
    logged with its reason and counted under it."""
    good = tls_backend(backends, "good", pki, client_ca=pki.ca if mode == "mtls" else None)
    m, port, admin = start(run_meshlet, free_port,
                           cluster("c", [bad_port, good.port], pki, mode=mode, more=more),
                           route_more="retries = 2\n")
    with plain_channel(port) as ch:
        got = [unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) for _ in range(6)]
    assert got == [b"good:x"] * 6
    wait_until(lambda: tls_stat(admin, f"failed_{reason}") >= 1,
               lambda: f"no failed_{reason} counted: "
                       f"{ {k: v for k, v in stats(admin).items() if 'tls' in k} }\n{m.stderr}")
    s = stats(admin)
    assert int(s["cluster.c.upstream_cx_failed"]) >= 1
    assert int(s[f"cluster.c.endpoint.127.0.0.1:{bad_port}.cx_failed"]) >= 1
    assert f'meshlet_upstream_cx_tls_failed_{reason}_total{{cluster="c"}}' in prometheus(admin)
    if log_reason:
        wait_until(lambda: "TLS handshake failed (" + reason + ")" in m.stderr,
                   lambda: f"no reason logged: {m.stderr}")
    wait_until(lambda: log_text in m.stderr, lambda: f"not logged: {log_text}: {m.stderr}")
    return m, admin


def test_wrong_ca_fails_the_connect_as_unknown_ca(pki, backends, run_meshlet, free_port, workdir):
    other = Pki(workdir, name="other-ca")
    bad = tls_backend(backends, "bad", pki,
                      cert=other.issue("stranger", "greeter", f"URI:{BACKEND_ID}"))
    refused_case(pki, backends, run_meshlet, free_port, bad.port, "unknown_ca",
                 "server certificate:")


def test_expired_server_cert_fails_the_connect_as_bad_cert(pki, backends, run_meshlet, free_port):
    bad = tls_backend(backends, "bad", pki,
                      cert=pki.issue("expired", "greeter", f"URI:{BACKEND_ID}", expired=True))
    refused_case(pki, backends, run_meshlet, free_port, bad.port, "bad_cert", "expired")


def test_wrong_san_for_identity_fails_the_connect(pki, backends, run_meshlet, free_port):
    bad = tls_backend(backends, "bad", pki,
                      cert=pki.issue("impostor", "greeter", "URI:spiffe://mesh.test/ns/x/sa/evil"))
    refused_case(pki, backends, run_meshlet, free_port, bad.port, "identity",
                 "spiffe://mesh.test/ns/x/sa/evil", more="identity = spiffe://mesh.test/ns/b/*\n")


def test_backend_without_h2_alpn_fails_the_connect(pki, backends, run_meshlet, free_port,
                                                   workdir):
    bad_port = free_port()
    crt, key = pki.backend
    srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{bad_port}", "-cert",
                            str(crt), "-key", str(key), "-alpn", "http/1.1", "-quiet"],
                           cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _listening(bad_port), "openssl s_server did not start")
        # openssl answers a ClientHello without a protocol it has with the fatal alert
        # no_application_protocol: the reason comes from that alert
        refused_case(pki, backends, run_meshlet, free_port, bad_port, "no_alpn_h2",
                     "fatal alert")
    finally:
        srv.kill()
        srv.wait()


def test_backend_that_ignores_alpn_fails_the_connect(pki, backends, run_meshlet, free_port):
    """A TLS server that completes the handshake without selecting any protocol (Python's ssl
    with only http/1.1: no ALPN in its answer): meshlet refuses it itself, with an alert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki.backend[0]), str(pki.backend[1]))
    ctx.set_alpn_protocols(["http/1.1"])
    lsock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(2)
                    tls.recv(1)  # meshlet's alert, or its close
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        refused_case(pki, backends, run_meshlet, free_port, lsock.getsockname()[1], "no_alpn_h2",
                     "the server did not select ALPN h2")
    finally:
        stop.set()
        t.join(timeout=5)
        lsock.close()


def test_mtls_backend_refuses_a_cluster_without_a_client_cert(pki, backends, run_meshlet,
                                                              free_port):
    """tls = on shows no certificate: a backend that requires one refuses the handshake (in TLS
    1.3 after our Finished, so before its first bytes): a failed connect, counted bad_cert. The
    good endpoint here needs no client certificate."""
    bad = tls_backend(backends, "bad", pki, client_ca=pki.ca)
    refused_case(pki, backends, run_meshlet, free_port, bad.port, "bad_cert",
                 "our client certificate")


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# ---- rotation: SIGHUP reads the files again ------------------------------------------------------

def sighup_applied(m, timeout=10):
    before = m.stderr.count("applied version")
    m.send_signal(signal.SIGHUP)
    wait_until(lambda: m.stderr.count("applied version") > before or not m.alive(),
               lambda: m.stderr[-2000:], timeout)
    assert m.alive(), m.stderr[-2000:]


def test_sighup_rotates_ca_for_new_connections_and_pooled_ones_keep_going(
        pki, backends, run_meshlet, free_port, workdir):
    """The cluster's ca is replaced under the same path by one that does not trust the backends,
    and a second endpoint is added: the call in flight and the calls after it go on over the
    connection pooled before, while the new endpoint's connection, made with the new file, is
    refused (unknown_ca). A ca file made unreadable PEM is refused like any bad config."""
    b1 = tls_backend(backends, "b1", pki)
    b2 = tls_backend(backends, "b2", pki)
    ca_path = workdir / "cluster-ca.pem"
    ca_path.write_bytes(pki.ca.read_bytes())
    m, port, admin = start(run_meshlet, free_port,
                           f"[cluster c]\nendpoint = 127.0.0.1:{b1.port}\ntls = on\n"
                           f"ca = {ca_path}\n", route_more="retries = 2\n")
    with plain_channel(port) as ch:
        assert unary(ch, "Say")(b"before", timeout=CALL_TIMEOUT) == b"b1:before"
        call = server_stream(ch, "Repeat")(b"20 1000", timeout=CALL_TIMEOUT)
        first = next(call)  # in flight across the apply
        ca_path.write_bytes(Pki(workdir, name="new-ca").ca.read_bytes())
        text = m.config_path.read_text()
        m.config_path.write_text(text.replace(f"endpoint = 127.0.0.1:{b1.port}\n",
                                              f"endpoint = 127.0.0.1:{b1.port}\n"
                                              f"endpoint = 127.0.0.1:{b2.port}\n"))
        sighup_applied(m)
        assert len(first) == 1000 and len(list(call)) == 19  # it finished
        got = [unary(ch, "Say")(b"after", timeout=CALL_TIMEOUT) for _ in range(4)]
    assert got == [b"b1:after"] * 4  # the pooled connection; b2's new one is refused
    wait_until(lambda: tls_stat(admin, "failed_unknown_ca") >= 1,
               lambda: f"new connection not refused: {m.stderr[-2000:]}")
    assert tls_stat(admin, "handshake") == 1

    ca_path.write_text("not a certificate\n")
    before = m.stderr.count("applied version")
    m.send_signal(signal.SIGHUP)
    wait_until(lambda: str(ca_path) in m.stderr, lambda: m.stderr[-2000:])
    assert m.stderr.count("applied version") == before and m.alive()
    with plain_channel(port) as ch:
        assert unary(ch, "Say")(b"still", timeout=CALL_TIMEOUT) == b"b1:still"


# ---- health checks over TLS ---------------------------------------------------------------------

class TlsHealth:
    """grpc.health.v1.Health/Check on a TLS-only grpcio server: SERVING until told otherwise."""

    def __init__(self, pki):
        from concurrent import futures
        self.checks = 0
        self.serving = True
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {"Check": grpc.unary_unary_rpc_method_handler(self.check, lambda b: b,
                                                          lambda b: b)}),))
        creds = grpc.ssl_server_credentials([(pki.backend[1].read_bytes(),
                                              pki.backend[0].read_bytes())])
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()

    def check(self, request, context):
        self.checks += 1
        return b"\x08\x01" if self.serving else b"\x08\x02"  # SERVING / NOT_SERVING

    def stop(self):
        self.server.stop(0).wait(timeout=5)


def test_grpc_health_checks_of_a_tls_cluster_speak_tls(pki, run_meshlet, free_port):
    h = TlsHealth(pki)
    try:
        m, port, admin = start(run_meshlet, free_port, cluster(
            "c", [h.port], pki, more="health_check = grpc\nhealth_interval = 100ms\n"
                                     "health_timeout = 1s\nunhealthy_threshold = 1\n"))
        wait_until(lambda: h.checks >= 2, "no check reached the TLS-only health server")
        assert f"127.0.0.1:{h.port} is unhealthy" not in m.stderr
        h.serving = False
        assert m.wait_for_stderr(f"endpoint 127.0.0.1:{h.port} is unhealthy: status NOT_SERVING",
                                 timeout=scaled(5)), m.stderr
    finally:
        h.stop()


# ---- meshlet check reads the cluster's files ----------------------------------------------------

def test_check_reads_cluster_cert_key_and_ca_like_a_listener(meshlet, workdir, pki):
    expired = pki.issue("old-node", "node", f"URI:{NODE_ID}", expired=True)
    (workdir / "garbage.pem").write_text("not a certificate\n")

    def check(body):
        path = workdir / "check.ini"
        path.write_text(f"[cluster c]\nendpoint = 127.0.0.1:1\n{body}")
        return meshlet("check", path), path

    r, path = check(f"tls = mtls\nca = {workdir / 'garbage.pem'}\ncert = {expired[0]}\n"
                    f"key = {pki.backend[1]}\n")
    assert r.returncode == 1, r.stderr
    assert f"{path}:4: [cluster c] ca: expected a PEM CA certificate" in r.stderr, r.stderr
    assert f"{path}:5: [cluster c] cert: expected a certificate valid now" in r.stderr, r.stderr
    assert f"{path}:6: [cluster c] key: expected the private key of" in r.stderr, r.stderr
    r, path = check(f"tls = mtls\nca = {pki.ca}\ncert = {pki.node[0]}\nkey = {pki.node[1]}\n"
                    f"identity = spiffe://mesh.test/ns/b/*\nsni = greeter.mesh.test\n")
    assert r.returncode == 0, r.stderr
    assert "[cluster c] ca" not in r.stderr and "[cluster c] cert" not in r.stderr, r.stderr
    # keys that would do nothing are refused where they stand
    r, path = check(f"sni = greeter.mesh.test\nidentity = {BACKEND_ID}\n")
    assert r.returncode == 1
    assert f"{path}:3: [cluster c] sni: expected tls = on|mtls in this section" in r.stderr
    assert f"{path}:4: [cluster c] identity: expected tls = on|mtls in this section" in r.stderr
    r, path = check(f"tls = on\nca = {pki.ca}\ncert = {pki.node[0]}\nkey = {pki.node[1]}\n")
    assert r.returncode == 1
    assert f"{path}:5: [cluster c] cert: expected tls = mtls in this section" in r.stderr
    r, path = check("tls = mtls\n")
    assert r.returncode == 1
    assert f"{path}:3: [cluster c] tls: expected ca = PATH with tls = on|mtls" in r.stderr
    assert f"{path}:3: [cluster c] tls: expected cert = PATH and key = PATH" in r.stderr


def test_turning_tls_on_never_reuses_plaintext_connections(pki, backends, run_meshlet,
                                                           free_port):
    """A hot apply that turns the cluster's tls on: the calls after it must not go on over the
    plaintext connection pooled before (that would be a config asking for TLS and calls sent in
    the clear). The plaintext backend cannot speak TLS: they fail, counted as TLS failures."""
    b = backends("plain")
    m, port, admin = start(run_meshlet, free_port,
                           f"[cluster c]\nendpoint = 127.0.0.1:{b.port}\n")
    with plain_channel(port) as ch:
        assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"plain:x"
        text = m.config_path.read_text()
        m.config_path.write_text(text.replace(f"endpoint = 127.0.0.1:{b.port}\n",
                                              f"endpoint = 127.0.0.1:{b.port}\ntls = on\n"
                                              f"ca = {pki.ca}\n"))
        sighup_applied(m)
        calls = b.calls
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"y", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert b.calls == calls  # nothing reached the backend in the clear
    failed = [int(v) for k, v in stats(admin).items()
              if k.startswith("cluster.c.upstream_cx_tls_failed_")]
    assert sum(failed) >= 1
