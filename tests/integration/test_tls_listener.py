"""TLS on listeners (tls = on | mtls | permissive), end to end with real peers: grpcio clients
with ssl_channel_credentials, `openssl s_client`, nghttp and h2load through meshlet to plain
grpcio backends. Certificates (ECDSA P-256 and RSA) are made with openssl in each test's
directory. Every refusal is shown with its logged reason, its counter, and the next good client
still served."""

import signal
import socket
import subprocess
import time
import urllib.request

import grpc
import pytest

from conftest import scaled
from grpc_peers import bidi, client_stream, server_stream, unary

CALL_TIMEOUT = scaled(10)


def openssl(*args, cwd, input=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                       input=input, timeout=scaled(30))
    assert r.returncode == 0, r.stderr
    return r


class Pki:
    """A CA and certificates signed by it, in dir."""

    def __init__(self, dir, name="ca", rsa=False):
        self.dir = dir
        self.name = name
        self.rsa = rsa
        self.key(f"{name}.key")
        openssl("req", "-x509", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}",
                "-days", "30", "-out", f"{name}.pem", cwd=dir)
        self.ca = dir / f"{name}.pem"

    def key(self, path, rsa=None):
        if rsa if rsa is not None else self.rsa:
            openssl("genrsa", "-out", path, "2048", cwd=self.dir)
        else:
            openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path,
                    cwd=self.dir)

    def issue(self, base, cn, san, rsa=None, expired=False):
        """base.pem/base.key for cn with subjectAltName san; expired: valid only in 2020."""
        d = self.dir
        self.key(f"{base}.key", rsa)
        openssl("req", "-new", "-key", f"{base}.key", "-subj", f"/CN={cn}", "-out",
                f"{base}.csr", cwd=d)
        (d / f"{base}.ext").write_text(f"subjectAltName={san}\n" if san else "\n")
        if not expired:
            openssl("x509", "-req", "-in", f"{base}.csr", "-CA", f"{self.name}.pem", "-CAkey",
                    f"{self.name}.key", "-CAcreateserial", "-days", "30", "-extfile",
                    f"{base}.ext", "-out", f"{base}.pem", cwd=d)
        else:
            # `openssl ca` is the one command that takes a start and end date in the past
            (d / "index.txt").write_text("")
            (d / "serial").write_text("1000\n")
            (d / "ca.cnf").write_text(
                "[ca]\ndefault_ca = x\n[x]\ndatabase = index.txt\nserial = serial\n"
                "new_certs_dir = .\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\n"
                "[p]\ncommonName = supplied\n")
            openssl("ca", "-batch", "-config", "ca.cnf", "-cert", f"{self.name}.pem",
                    "-keyfile", f"{self.name}.key", "-in", f"{base}.csr", "-startdate",
                    "20200101000000Z", "-enddate", "20200102000000Z", "-extfile",
                    f"{base}.ext", "-out", f"{base}.pem", "-notext", cwd=d)
        return d / f"{base}.pem", d / f"{base}.key"


# A build without ML_TLS refuses tls keys: these are skipped there.
pytestmark = pytest.mark.usefixtures("tls_built")


def test_version_lists_tls(meshlet):
    assert " tls " in next(x for x in meshlet("version").stdout.splitlines()
                           if x.startswith("features:")) + " "


@pytest.fixture
def pki(workdir):
    p = Pki(workdir)
    p.server = p.issue("server", "localhost", "DNS:localhost,IP:127.0.0.1")
    p.client = p.issue("client", "client-cn", "URI:spiffe://mesh.test/ns/a/sa/client")
    return p


@pytest.fixture
def tls_meshlet(run_meshlet, free_port, backends):
    """tls_meshlet(pki, mode, cert=None) → (meshlet, port, admin_port): a listener with
    tls = mode in front of one plain grpcio backend."""

    def start(pki, mode, cert=None, extra="", more=""):
        b = backends("b1")
        port, admin = free_port(), free_port()
        crt, key = cert or pki.server
        text = (f"[node]\nadmin = 127.0.0.1:{admin}\n"
                f"[listener ingress]\nbind = 127.0.0.1:{port}\ntls = {mode}\n"
                f"cert = {crt}\nkey = {key}\n{extra}"
                + (f"ca = {pki.ca}\n" if mode == "mtls" else "")
                + f"[route all]\nlistener = ingress\nto = c\n"
                f"[cluster c]\nendpoint = 127.0.0.1:{b.port}\n{more}")
        m = run_meshlet(text)
        assert m.alive() and "running" in m.stderr, m.stderr
        return m, port, admin

    return start


def stats(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats", timeout=CALL_TIMEOUT) as r:
        out = {}
        for line in r.read().decode().splitlines():
            k, _, v = line.rpartition(" ")
            out[k] = v
        return out


def counter(admin, name):
    return int(stats(admin)[f"listener.ingress.downstream_cx_{name}"])


def wait_counter(admin, name, want, timeout=10):
    deadline = time.monotonic() + scaled(timeout)
    while counter(admin, name) < want:
        assert time.monotonic() < deadline, f"{name} stayed below {want}: {stats(admin)}"
        time.sleep(0.05)


def tls_channel(port, pki, client=None):
    creds = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=client[1].read_bytes() if client else None,
        certificate_chain=client[0].read_bytes() if client else None)
    return grpc.secure_channel(f"127.0.0.1:{port}", creds,
                               options=[("grpc.ssl_target_name_override", "localhost")])


def four_kinds(ch):
    assert unary(ch, "Say")(b"hi", timeout=CALL_TIMEOUT) == b"b1:hi"
    assert client_stream(ch, "Sum")(iter([b"ab", b"cde"]), timeout=CALL_TIMEOUT) == b"2 5"
    got = list(server_stream(ch, "Repeat")(b"50 20000", timeout=CALL_TIMEOUT))
    assert len(got) == 50 and all(len(m) == 20000 for m in got)
    assert list(bidi(ch, "Chat")(iter([b"x", b"y"]), timeout=CALL_TIMEOUT)) == [b"b1:x", b"b1:y"]


def s_client(port, *args, input="", cwd=None):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief",
                           *args], capture_output=True, text=True, errors="replace", input=input,
                          cwd=cwd, timeout=scaled(15))


# ---- served ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rsa", [False, True], ids=["ecdsa-p256", "rsa"])
def test_grpcio_all_four_call_kinds_over_tls(pki, tls_meshlet, rsa):
    cert = pki.issue("server-rsa", "localhost", "DNS:localhost", rsa=True) if rsa else None
    m, port, admin = tls_meshlet(pki, "on", cert)
    with tls_channel(port, pki) as ch:
        four_kinds(ch)
    assert counter(admin, "tls_handshake") >= 1


def test_megabytes_both_ways_over_tls_arrive_whole(pki, tls_meshlet):
    """More than the socket takes at once: TLS keeps the rest of a write and sends it when the
    socket drains (the path a full socket takes)."""
    m, port, admin = tls_meshlet(pki, "on")
    with tls_channel(port, pki) as ch:
        got = list(server_stream(ch, "Repeat")(b"200 60000", timeout=CALL_TIMEOUT * 3))
        assert len(got) == 200
        assert all(g == bytes([k % 251]) * 60000 for k, g in enumerate(got))
        msgs = (bytes([k % 7]) * 60000 for k in range(200))
        assert client_stream(ch, "Sum")(msgs, timeout=CALL_TIMEOUT * 3) == b"200 12000000"


def test_mtls_grpcio_with_a_client_certificate(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "mtls")
    with tls_channel(port, pki, pki.client) as ch:
        four_kinds(ch)


def test_mtls_principal_is_what_authz_matches(pki, tls_meshlet):
    """The verified client certificate's URI SAN is the call's principal: [authz] allows one
    workload and denies another of the same CA (PERMISSION_DENIED, no backend reached)."""
    other = pki.issue("other", "other-cn", "URI:spiffe://mesh.test/ns/b/sa/other")
    m, port, admin = tls_meshlet(
        pki, "mtls", more="[authz ingress]\n"
                          "allow = spiffe://mesh.test/ns/a/* -> /meshlet.test.Echo/*\n"
                          "default = deny\n")
    with tls_channel(port, pki, pki.client) as ch:
        assert unary(ch, "Say")(b"me", timeout=CALL_TIMEOUT) == b"b1:me"
    with tls_channel(port, pki, other) as ch:
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"them", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, e.value


def test_openssl_tls13_and_tls12_accepted_with_alpn_h2(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    for version, shown in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
        r = s_client(port, version, "-alpn", "h2", "-CAfile", str(pki.ca))
        assert f"Protocol version: {shown}" in r.stderr, r.stderr
        full = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version,
                               "-alpn", "h2"], capture_output=True, text=True, errors="replace",
                              input="", timeout=scaled(15))
        assert "ALPN protocol: h2" in full.stdout, full.stdout


def test_any_sni_is_answered_with_the_listener_certificate(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    for name in ("localhost", "other.example"):
        r = s_client(port, "-alpn", "h2", "-servername", name, "-CAfile", str(pki.ca))
        assert "CONNECTION ESTABLISHED" in r.stderr, r.stderr
        assert "Peer certificate: CN = localhost" in r.stderr, r.stderr


def test_session_resumption_with_tickets(pki, tls_meshlet, workdir):
    m, port, admin = tls_meshlet(pki, "on")
    sess = workdir / "sess.pem"
    for version in ("-tls1_2", "-tls1_3"):
        # s_client reads a TLS 1.3 ticket only after the handshake: give it a moment (-ign_eof
        # with a short-lived stdin would hang; a sleep in the pipe keeps it open briefly)
        first = subprocess.run(
            f"sleep 0.5 | openssl s_client -connect 127.0.0.1:{port} {version} -alpn h2 "
            f"-sess_out {sess}", shell=True, capture_output=True, text=True, errors="replace",
            timeout=scaled(15))
        assert "New, " in first.stdout, first.stdout + first.stderr
        again = subprocess.run(
            f"sleep 0.5 | openssl s_client -connect 127.0.0.1:{port} {version} -alpn h2 "
            f"-sess_in {sess}", shell=True, capture_output=True, text=True, errors="replace",
            timeout=scaled(15))
        assert "Reused, " in again.stdout, (version, again.stdout + again.stderr)


def test_nghttp_and_h2load_over_tls(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    # a gRPC backend answers a plain GET with a gRPC error, still over HTTP/2 through TLS
    r = subprocess.run(["nghttp", "-v", f"https://127.0.0.1:{port}/meshlet.test.Echo/Say"],
                       capture_output=True, text=True, timeout=scaled(15))
    assert "negotiated protocol: h2" in r.stdout, r.stdout + r.stderr
    assert ":status:" in r.stdout or ":status" in r.stdout, r.stdout
    r = subprocess.run(["h2load", "-n", "20", "-c", "2", "-m", "2",
                        f"https://127.0.0.1:{port}/meshlet.test.Echo/Say"],
                       capture_output=True, text=True, timeout=scaled(30))
    assert "Application protocol: h2" in r.stdout, r.stdout + r.stderr
    assert "20 done" in r.stdout, r.stdout


def test_permissive_serves_plaintext_and_tls_on_one_port(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "permissive")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        assert unary(ch, "Say")(b"plain", timeout=CALL_TIMEOUT) == b"b1:plain"
    with tls_channel(port, pki) as ch:
        assert unary(ch, "Say")(b"tls", timeout=CALL_TIMEOUT) == b"b1:tls"
    assert counter(admin, "tls_handshake") == 1


def sighup_applied(m, timeout=10):
    before = m.stderr.count("applied version")
    m.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + scaled(timeout)
    while m.stderr.count("applied version") == before:
        assert time.monotonic() < deadline and m.alive(), m.stderr[-2000:]
        time.sleep(0.05)


def peer_cn(port, pki):
    r = s_client(port, "-alpn", "h2", "-CAfile", str(pki.ca))
    return next((x for x in r.stderr.splitlines() if x.startswith("Peer certificate:")), "")


def test_certificate_rotated_under_the_same_path_is_used_after_sighup(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    assert peer_cn(port, pki) == "Peer certificate: CN = localhost"
    with tls_channel(port, pki) as ch:
        call = server_stream(ch, "Repeat")(b"20 1000", timeout=CALL_TIMEOUT)
        first = next(call)  # a call in flight across the apply
        # the new certificate and key are written over the old files
        new_crt, new_key = pki.issue("rotated", "rotated.local", "DNS:localhost")
        pki.server[0].write_bytes(new_crt.read_bytes())
        pki.server[1].write_bytes(new_key.read_bytes())
        sighup_applied(m)
        assert len(first) == 1000 and len(list(call)) == 19  # it finished
    assert peer_cn(port, pki) == "Peer certificate: CN = rotated.local"
    with tls_channel(port, pki) as ch:
        assert unary(ch, "Say")(b"after", timeout=CALL_TIMEOUT) == b"b1:after"


def test_tls_listener_added_by_sighup_is_served(pki, run_meshlet, free_port, backends):
    b = backends("b1")
    plain, tls_port = free_port(), free_port()
    tail = (f"[route all]\nlistener = ingress\nto = c\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{b.port}\n")
    m = run_meshlet(f"[listener ingress]\nbind = 127.0.0.1:{plain}\n" + tail)
    assert m.alive(), m.stderr
    crt, key = pki.server
    text = m.config_path.read_text()
    text = text.replace(tail, f"[listener secure]\nbind = 127.0.0.1:{tls_port}\ntls = on\n"
                        f"cert = {crt}\nkey = {key}\n" + tail
                        + "[route sec]\nlistener = secure\nto = c\n")
    m.config_path.write_text(text)
    sighup_applied(m)
    with tls_channel(tls_port, pki) as ch:
        assert unary(ch, "Say")(b"new", timeout=CALL_TIMEOUT) == b"b1:new"


def test_permissive_client_that_sends_nothing_times_out(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "permissive")
    s = socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT)
    wait_counter(admin, "tls_failed_timeout", 1, timeout=30)
    s.settimeout(CALL_TIMEOUT)
    assert s.recv(100) == b""  # closed by meshlet
    s.close()
    assert m.wait_for_stderr("no byte within ML_TLS_HANDSHAKE_TIMEOUT_MS"), m.stderr
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        assert unary(ch, "Say")(b"next", timeout=CALL_TIMEOUT) == b"b1:next"


# ---- refused, counted, and the next client still served -------------------------------------

def refused_then_served(m, admin, reason, log, pki, client=None):
    wait_counter(admin, f"tls_failed_{reason}", 1)
    assert m.wait_for_stderr(f"TLS handshake failed ({reason})"), m.stderr
    assert log in m.stderr, m.stderr
    with tls_channel(m.port, pki, client) as ch:
        assert unary(ch, "Say")(b"next", timeout=CALL_TIMEOUT) == b"b1:next"


def test_only_http11_offered_gets_the_alert(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    m.port = port
    r = s_client(port, "-alpn", "http/1.1")
    assert "no application protocol" in r.stderr, r.stderr
    refused_then_served(m, admin, "no_alpn_h2", "ALPN", pki)


def test_no_alpn_at_all_refused(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    m.port = port
    # the handshake itself succeeds for such a client: the alert follows it, so keep s_client
    # reading for a moment
    r = subprocess.run(f"sleep 0.5 | openssl s_client -connect 127.0.0.1:{port}", shell=True,
                       capture_output=True, text=True, errors="replace", timeout=scaled(15))
    assert "no application protocol" in r.stderr, r.stderr
    refused_then_served(m, admin, "no_alpn_h2", "did not offer ALPN h2", pki)


def test_tls11_only_refused(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    m.port = port
    # OpenSSL 3 keeps TLS 1.1 behind security level 0
    r = s_client(port, "-tls1_1", "-alpn", "h2", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "Protocol version: TLSv1.1" not in r.stderr, r.stderr
    refused_then_served(m, admin, "version", "min/max", pki)


def test_mtls_wrong_ca_refused(pki, tls_meshlet, workdir):
    other = Pki(workdir, name="otherca")
    stranger = other.issue("stranger", "stranger", "URI:spiffe://elsewhere/x")
    m, port, admin = tls_meshlet(pki, "mtls")
    m.port = port
    with tls_channel(port, pki, stranger) as ch:
        with pytest.raises(grpc.RpcError):
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
    refused_then_served(m, admin, "unknown_ca", "client certificate", pki, pki.client)


def test_mtls_expired_client_certificate_refused(pki, tls_meshlet):
    old = pki.issue("old", "old-client", "URI:spiffe://mesh.test/old", expired=True)
    m, port, admin = tls_meshlet(pki, "mtls")
    m.port = port
    with tls_channel(port, pki, old) as ch:
        with pytest.raises(grpc.RpcError):
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
    refused_then_served(m, admin, "bad_cert", "expired", pki, pki.client)


def test_mtls_without_a_client_certificate_refused(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "mtls")
    m.port = port
    with tls_channel(port, pki) as ch:
        with pytest.raises(grpc.RpcError):
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
    refused_then_served(m, admin, "bad_cert", "TLS handshake failed", pki, pki.client)


def test_plaintext_to_an_mtls_listener_refused(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "mtls")
    m.port = port
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        with pytest.raises(grpc.RpcError):
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
    refused_then_served(m, admin, "plaintext", "plaintext to a TLS listener", pki, pki.client)


def test_client_stalling_mid_handshake_times_out(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    m.port = port
    s = socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT)
    # the first 5 bytes of a ClientHello record, then nothing
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00]))
    with tls_channel(port, pki) as ch:  # served while the stalled one waits
        assert unary(ch, "Say")(b"meanwhile", timeout=CALL_TIMEOUT) == b"b1:meanwhile"
    wait_counter(admin, "tls_failed_timeout", 1, timeout=30)
    s.settimeout(CALL_TIMEOUT)
    assert s.recv(100) == b""  # closed by meshlet
    s.close()
    refused_then_served(m, admin, "timeout", "ML_TLS_HANDSHAKE_TIMEOUT_MS", pki)


def test_handshakes_in_progress_count_toward_max_connections(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on", extra="max_connections = 2\n")
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT)
               for _ in range(2)]
    for s in stalled:
        s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00]))  # a ClientHello that never comes
    time.sleep(0.3)
    r = s_client(port, "-alpn", "h2")
    assert "CONNECTION ESTABLISHED" not in r.stderr, r.stderr
    wait_counter(admin, "refused", 1)
    assert m.wait_for_stderr("max_connections (2) reached with TLS handshakes in progress")
    stalled[0].close()  # a slot comes free
    deadline = time.monotonic() + scaled(10)
    while True:
        try:
            with tls_channel(port, pki) as ch:
                assert unary(ch, "Say")(b"room", timeout=CALL_TIMEOUT) == b"b1:room"
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    stalled[1].close()


def test_prometheus_has_the_tls_counters(pki, tls_meshlet):
    m, port, admin = tls_meshlet(pki, "on")
    s_client(port, "-alpn", "http/1.1")
    wait_counter(admin, "tls_failed_no_alpn_h2", 1)
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats/prometheus",
                                timeout=CALL_TIMEOUT) as r:
        text = r.read().decode()
    assert 'meshlet_downstream_cx_tls_failed_no_alpn_h2_total{listener="ingress"} 1' in text


def test_tls_keys_need_cert_key_and_ca(meshlet, workdir, free_port):
    ini = workdir / "bad.ini"
    ini.write_text(f"[node]\nstate_dir = {workdir}/s\n"
                   f"[listener ingress]\nbind = 127.0.0.1:{free_port()}\ntls = mtls\n"
                   f"cert = /nonexistent.pem\nkey = /nonexistent.key\n"
                   f"[route all]\nlistener = ingress\nto = c\n"
                   f"[cluster c]\nendpoint = 127.0.0.1:1\n")
    r = meshlet("check", ini)
    assert r.returncode != 0
    assert "expected ca = PATH with tls = mtls" in r.stdout + r.stderr
