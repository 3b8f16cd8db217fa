"""The admin endpoint against hostile or careless clients (issue 7): request framing, the
admin_token, Origin and Host checks, the connection cap and the idle timeout. Requests are made
over raw sockets, so that each test says exactly which bytes go to a real meshlet; every wait is
bounded."""

import re
import signal
import socket
import time
from pathlib import Path

import pytest

from conftest import scaled

TOKEN = "s3cret-admin-token-0123456789abcdef"
# Kconfig defaults of the host build (ML_ADMIN_MAX_CONNECTIONS, ML_ADMIN_IDLE_TIMEOUT_S)
MAX_CONNECTIONS = 8
IDLE_TIMEOUT_S = 5


# ---- helpers ------------------------------------------------------------------------------------

def admin_port(m):
    found = re.search(r"^admin\s*=\s*127\.0\.0\.1:(\d+)\s*$", Path(m.config_path).read_text(), re.M)
    return int(found.group(1))


def exchange(port, data, more=b"", timeout=5):
    """Sends data (then more, which the server may refuse to take), reads until the server
    closes or stops answering: the bytes received."""
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(timeout))
    out = b""
    try:
        s.sendall(data)
        try:
            if more:
                s.sendall(more)
        except OSError:
            pass  # closed on us after its answer: what the answer says is what counts
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def request(port, method="GET", path="/healthz", headers=None, body=b"", host=True,
            close=True, version="HTTP/1.1"):
    """(status, headers dict with lower-case names, body bytes) of one HTTP/1.1 request."""
    lines = [f"{method} {path} {version}"]
    if host is True:
        lines.append(f"Host: 127.0.0.1:{port}")
    elif host:
        lines.append(f"Host: {host}")
    for name, value in (headers or []):
        lines.append(f"{name}: {value}")
    if close:
        lines.append("Connection: close")
    raw = exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return parse(raw)


def parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    first, *rest = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", first)
    assert m, f"not an HTTP answer: {raw[:200]!r}"
    headers = {}
    for line in rest:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(m.group(1)), headers, body


def running_config(port, token=None):
    hdrs = [("Authorization", f"Bearer {token}")] if token else []
    status, _, body = request(port, path="/config", headers=hdrs)
    assert status == 200, body
    return body.decode()


def stat(port, name, token=None):
    hdrs = [("Authorization", f"Bearer {token}")] if token else []
    status, _, body = request(port, path="/stats", headers=hdrs)
    assert status == 200, body
    m = re.search(rf"^{re.escape(name)} (\d+)$", body.decode(), re.M)
    assert m, f"{name} not in /stats:\n{body.decode()}"
    return int(m.group(1))


def wait_until(fn, timeout=10):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.05)
    return fn()


@pytest.fixture
def node(run_meshlet):
    """node(extra [node] lines) → (meshlet, admin port)."""
    def start(extra=""):
        m = run_meshlet(f"[node]\n{extra}\n")
        assert m.alive(), f"meshlet exited {m.returncode}:\n{m.stderr}"
        return m, admin_port(m)
    return start


@pytest.fixture
def token_file(workdir):
    path = workdir / "admin.token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


# ---- framing of POST /config ------------------------------------------------------------------

def post_head(port, length_lines):
    return ("POST /config HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n" + "".join(f"{h}\r\n" for h in length_lines) +
            "\r\n").encode()


def test_body_longer_than_content_length_is_400_and_the_node_keeps_serving(node):
    m, port = node()
    before = running_config(port)
    # announces 10 bytes, sends 100 KiB: the old code copied it all into an 11-byte buffer
    raw = exchange(port, post_head(port, ["Content-Length: 10"]) + b"[node]\n" + b"x" * 1000,
                   more=b"y" * (100 * 1024))
    status, _, body = parse(raw)
    assert status == 400, raw[:300]
    assert b"Content-Length" in body
    assert m.alive(), m.stderr
    assert request(port)[0] == 200
    assert running_config(port) == before
    assert stat(port, "config_applies_total") == 0


def test_several_oversized_bodies_in_a_row_leave_the_node_serving(node):
    m, port = node()
    for n in (1, 11, 4096, 40000):
        raw = exchange(port, post_head(port, ["Content-Length: 1"]) + b"#" * (n + 1))
        assert parse(raw)[0] == 400, raw[:200]
    assert m.alive(), m.stderr
    assert request(port)[0] == 200


def test_exact_body_still_applies(node):
    m, port = node()
    text = f"[node]\nstate_dir = {Path(m.config_path).parent / 'state'}\n" \
           f"admin = 127.0.0.1:{port}\n"
    status, _, body = request(port, "POST", "/config", body=text.encode(),
                              headers=[("Content-Length", str(len(text)))])
    assert status == 200, body
    assert body.startswith(b"version: local-")


@pytest.mark.parametrize("lines", [
    ["Content-Length: 10", "Content-Length: 10"],
    ["Content-Length: 10", "Content-Length: 12"],
    ["Content-Length: 10", "Transfer-Encoding: chunked"],
    ["Transfer-Encoding: chunked"],
    ["Content-Length: ten"],
    ["Content-Length: -1"],
    ["Content-Length: +10"],
    ["Content-Length: 0x0a"],
    ["Content-Length: 1e1"],
    ["Content-Length: 99999999999999999999999"],
], ids=["double-same", "double-different", "cl-and-te", "te-only", "word", "negative",
        "plus", "hex", "exponent", "too-many-digits"])
def test_ambiguous_or_malformed_framing_is_400_and_closed(node, lines):
    m, port = node()
    before = running_config(port)
    body = b"[node]\nlog = debug\n"
    raw = exchange(port, post_head(port, lines) + body)
    status, _, text = parse(raw)
    assert status == 400, raw[:300]
    # closed after the answer: nothing of the body was taken as a next request
    assert raw.count(b"HTTP/1.1") == 1, raw
    assert m.alive()
    assert running_config(port) == before


# ---- admin_token --------------------------------------------------------------------------------

def test_token_required_for_stats_config_and_post(node, token_file):
    m, port = node(f"admin_token = {token_file}")
    status, headers, _ = request(port, path="/stats")
    assert status == 401
    assert headers.get("www-authenticate") == "Bearer"
    status, headers, _ = request(port, path="/config")
    assert status == 401 and headers.get("www-authenticate") == "Bearer"
    text = b"[node]\nlog = debug\n"
    status, _, _ = request(port, "POST", "/config", body=text,
                           headers=[("Content-Length", str(len(text)))])
    assert status == 401
    assert stat(port, "config_applies_total", token=TOKEN) == 0


@pytest.mark.parametrize("value", [
    "Bearer wrong-token-wrong-token-wrong",
    f"Bearer {TOKEN[:-1]}",
    f"Bearer {TOKEN}x",
    f"Basic {TOKEN}",
    TOKEN,
    "Bearer ",
], ids=["other", "prefix", "longer", "basic", "no-scheme", "empty"])
def test_wrong_token_is_401(node, token_file, value):
    m, port = node(f"admin_token = {token_file}")
    status, headers, _ = request(port, path="/stats", headers=[("Authorization", value)])
    assert status == 401
    assert headers.get("www-authenticate") == "Bearer"


def test_right_token_is_served_without_the_file_newline(node, token_file):
    m, port = node(f"admin_token = {token_file}")
    status, _, body = request(port, path="/stats", headers=[("Authorization", f"Bearer {TOKEN}")])
    assert status == 200, body
    status, _, _ = request(port, path="/stats", headers=[("Authorization", f"bearer {TOKEN}")])
    assert status == 200


def test_healthz_and_ready_need_no_token(node, token_file):
    m, port = node(f"admin_token = {token_file}")
    assert request(port, path="/healthz")[0] == 200
    assert request(port, path="/ready")[0] == 200


def test_token_is_not_logged(node, token_file):
    m, port = node(f"admin_token = {token_file}")
    request(port, path="/stats", headers=[("Authorization", "Bearer nope")])
    assert TOKEN not in m.stderr and TOKEN not in m.stdout


def test_changed_token_file_takes_effect_on_sighup(node, token_file):
    m, port = node(f"admin_token = {token_file}")
    new = "another-token-of-enough-length-42"
    token_file.write_text(new + "\n")
    m.send_signal(signal.SIGHUP)

    def new_works():
        return request(port, path="/stats", headers=[("Authorization", f"Bearer {new}")])[0] == 200
    assert wait_until(new_works), m.stderr
    assert request(port, path="/stats", headers=[("Authorization", f"Bearer {TOKEN}")])[0] == 401


def test_token_file_emptied_before_sighup_keeps_the_running_token(node, token_file):
    m, port = node(f"admin_token = {token_file}")
    token_file.write_text("")
    m.send_signal(signal.SIGHUP)
    assert m.wait_for_stderr("admin_token", timeout=10), m.stderr
    assert request(port, path="/stats", headers=[("Authorization", f"Bearer {TOKEN}")])[0] == 200


# ---- Origin and Host ----------------------------------------------------------------------------

def test_request_with_origin_is_403(node):
    m, port = node()
    status, _, _ = request(port, path="/stats", headers=[("Origin", "http://evil.example")])
    assert status == 403
    status, _, _ = request(port, path="/healthz", headers=[("Origin", "null")])
    assert status == 403


def test_post_config_with_origin_is_403_and_changes_nothing(node):
    m, port = node()
    before = running_config(port)
    text = b"[node]\nlog = debug\n"
    status, _, _ = request(port, "POST", "/config", body=text,
                           headers=[("Content-Length", str(len(text))),
                                    ("Origin", f"http://127.0.0.1:{port}")])
    assert status == 403
    assert running_config(port) == before
    assert stat(port, "config_apply_failures_total") == 0


@pytest.mark.parametrize("host", [
    "evil.example:{port}",
    "rebind.attacker.test:{port}",
    "127.0.0.1:{other}",
    "127.0.0.1",
    "10.1.2.3:{port}",
    "localhost.evil:{port}",
    "127.0.0.1:{port}, evil.example",
], ids=["name", "rebound-name", "other-port", "no-port", "other-ip", "localhost-suffix",
        "list"])
def test_foreign_host_is_refused(node, host):
    m, port = node()
    status, _, _ = request(port, path="/stats", host=host.format(port=port, other=port + 1))
    assert status == 421


def test_missing_host_is_refused_in_http_1_1(node):
    m, port = node()
    status, _, _ = request(port, path="/stats", host=None)
    assert status == 400


def test_http_1_0_probe_without_host_is_served(node):
    m, port = node()
    assert request(port, path="/healthz", host=None, close=False, version="HTTP/1.0")[0] == 200


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}",
                                  "[::1]:{port}"])
def test_loopback_names_of_the_admin_are_accepted(node, host):
    m, port = node()
    status, _, _ = request(port, path="/stats", host=host.format(port=port))
    assert status == 200


# ---- meshlet check ------------------------------------------------------------------------------

def test_check_refuses_admin_remote_without_token(meshlet, workdir):
    ini = workdir / "remote.ini"
    ini.write_text("[node]\nadmin = 0.0.0.0:15999\nadmin_remote = on\n")
    r = meshlet("check", ini)
    assert r.returncode == 1, r.stderr
    assert re.search(rf"^{re.escape(str(ini))}:3: \[node\] admin_remote: expected admin_token",
                     r.stderr, re.M), r.stderr


@pytest.mark.parametrize("content,why", [
    (None, "No such file"),
    ("", "got 0 bytes"),
    ("short\n", "got 5 bytes"),
    ("has a space in the middle\n", "space or control"),
    ("x" * 300, "larger file"),
], ids=["missing", "empty", "short", "space", "too-long"])
def test_check_refuses_a_token_file_it_cannot_use(meshlet, workdir, content, why):
    tok = workdir / "tok"
    if content is not None:
        tok.write_text(content)
    ini = workdir / "t.ini"
    ini.write_text(f"[node]\nadmin = 127.0.0.1:15999\nadmin_token = {tok}\n")
    r = meshlet("check", ini)
    assert r.returncode == 1, r.stderr
    assert re.search(rf"^{re.escape(str(ini))}:3: \[node\] admin_token: expected", r.stderr,
                     re.M), r.stderr
    assert why in r.stderr


def test_check_warns_when_admin_listens_beyond_loopback(meshlet, workdir, token_file):
    ini = workdir / "remote.ini"
    ini.write_text(f"[node]\nadmin = 0.0.0.0:15999\nadmin_remote = on\n"
                   f"admin_token = {token_file}\n")
    r = meshlet("check", ini)
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^{re.escape(str(ini))}:2: warning: \[node\] admin: listens beyond "
                     "loopback", r.stderr, re.M), r.stderr
    assert TOKEN not in r.stderr + r.stdout


def test_check_of_a_loopback_admin_prints_no_warning(meshlet, workdir, token_file):
    ini = workdir / "local.ini"
    ini.write_text(f"[node]\nadmin = 127.0.0.1:15999\nadmin_token = {token_file}\n")
    r = meshlet("check", ini)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr


# ---- connections --------------------------------------------------------------------------------

def serves(port):
    """True when GET /healthz answers 200 now (a connection over the cap is closed unanswered
    until the server has seen the client's earlier ones go)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    try:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Connection: close\r\n\r\n".encode())
        return s.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def closed_by_peer(s, timeout):
    """True when the server closes s (EOF or reset) within timeout seconds."""
    s.settimeout(scaled(timeout))
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_admin_connections_over_the_cap_are_closed_at_once_and_counted(node):
    m, port = node()
    held = [socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
            for _ in range(MAX_CONNECTIONS)]
    try:
        # every held one is open: it still answers
        held[0].sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        held[0].settimeout(scaled(5))
        assert held[0].recv(100).startswith(b"HTTP/1.1 200")
        extra = [socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
                 for _ in range(3)]
        for s in extra:
            assert closed_by_peer(s, 3), "a connection over the cap was kept open"
            s.close()
    finally:
        for s in held:
            s.close()

    assert wait_until(lambda: serves(port))
    assert stat(port, "admin.downstream_cx_refused") >= 3
    assert m.alive()


def test_many_idle_admin_connections_leave_the_admin_usable_once_they_go(node):
    m, port = node()
    held = []
    try:
        for _ in range(200):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=scaled(5)))
    finally:
        for s in held:
            s.close()

    assert wait_until(lambda: serves(port))
    assert stat(port, "admin.downstream_cx_active") == 1  # the /stats request itself
    assert m.alive()


def test_idle_admin_connection_is_closed_after_the_idle_timeout(node):
    m, port = node()
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    started = time.monotonic()
    try:
        assert closed_by_peer(s, IDLE_TIMEOUT_S * 4 + 5), "an idle connection stayed open"
    finally:
        s.close()
    assert time.monotonic() - started >= IDLE_TIMEOUT_S * 0.5


def test_half_sent_request_head_is_closed_after_the_idle_timeout(node):
    m, port = node()
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    try:
        s.sendall(f"GET /stats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        assert closed_by_peer(s, IDLE_TIMEOUT_S * 4 + 5), "a stalled request head stayed open"
    finally:
        s.close()


def still_open(socks):
    """How many of socks the server has not closed (EOF or reset) yet; does not wait."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            n += s.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            n += 1
        except ConnectionResetError:
            pass
    return n


def test_1100_idle_admin_connections_do_not_starve_the_data_plane(backends, run_meshlet,
                                                                   free_port):
    import grpc_peers
    backend = backends("b0")
    port = free_port()
    m = run_meshlet(f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
                    f"[route echo]\nlistener = ingress\nprefix = /{grpc_peers.SERVICE}/\n"
                    "to = one\n\n"
                    f"[cluster one]\nendpoint = 127.0.0.1:{backend.port}\n")
    assert m.alive(), m.stderr
    admin = admin_port(m)
    held = []
    started = time.monotonic()
    try:
        for _ in range(1100):
            held.append(socket.create_connection(("127.0.0.1", admin), timeout=scaled(5)))
        ch = grpc_peers.channel(port)
        try:
            assert grpc_peers.unary(ch, "Say")(b"x", timeout=scaled(10)).endswith(b"x")
        finally:
            ch.close()
        # Closing ours before meshlet has accepted them all would let the last ones in: wait
        # until only the admitted ones (at most the cap) are left open.
        assert wait_until(lambda: still_open(held) <= MAX_CONNECTIONS, timeout=30)
        took = time.monotonic() - started
    finally:
        for s in held:
            s.close()

    assert wait_until(lambda: serves(admin))
    # Admitted ones are idle-closed after IDLE_TIMEOUT_S, freeing their slots: when accepting
    # 1100 takes longer than that (under an emulator), the cap admits again.
    admitted = MAX_CONNECTIONS * (1 + int(took // IDLE_TIMEOUT_S))
    assert stat(admin, "admin.downstream_cx_refused") >= 1100 - admitted
    assert m.alive()
