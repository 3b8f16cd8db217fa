"""Node ids and pushed config versions are 1..64 / 1..128 characters of [A-Za-z0-9._:-], and a
node id does not start with '.' (runtime/fleet/README.md "Names and versions"). A push whose version is anything else is nacked
with a clear error and nothing is applied; none of its bytes reach a log line unescaped. The
node's own [node] id is checked by `meshlet check` with the same rule, and a host name that is
not a node id gives a clear error (with [fleet]) instead of a made-up id."""

import re
import shutil
import subprocess
import urllib.request

import pytest

import grpc_peers
from conftest import scaled
from fleet_peers import PyController
from grpc_peers import Backend

PREFIX = f"/{grpc_peers.SERVICE}/"


@pytest.fixture
def backend():
    b = Backend("A")
    yield b
    b.stop()


@pytest.fixture
def controller(free_port):
    c = PyController(free_port())
    yield c
    c.stop()


def node_config(ctl_port, listen, backend_port, node_id="gw-names"):
    return (f"[node]\nid = {node_id}\n\n"
            f"[fleet]\nurl = ws://127.0.0.1:{ctl_port}/fleet/v1\ninsecure = on\n"
            f"backoff = 100ms..400ms\nreport_interval = 5s\n\n"
            f"[listener in]\nbind = 127.0.0.1:{listen}\n\n"
            f"[route all]\nlistener = in\nprefix = {PREFIX}\nto = c\n\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{backend_port}\n")


def admin_get(m, path):
    text = open(m.config_path).read()
    port = int(re.search(r"^admin\s*=\s*127\.0\.0\.1:(\d+)\s*$", text, re.M).group(1))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=scaled(10)) as r:
        return r.read().decode()


def stats(m):
    return {k: int(v) for k, v in (line.rsplit(" ", 1) for line in
                                   admin_get(m, "/stats").splitlines()
                                   if line and not line.startswith("#"))}


# ---- protobuf by hand, so that any bytes can be a version (python-protobuf refuses bad UTF-8)

def varint(n):
    out = b""
    while True:
        b, n = n & 0x7f, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def raw_push(version, nonce, ini):
    push = field(1, version) + varint(2 << 3 | 0) + varint(nonce) + field(3, ini)
    return field(2, push)


def push_raw(ctl, version, nonce, ini):
    ctl.send_raw(raw_push(version, nonce, ini))

    def answered():
        for a in ctl.answers:
            if getattr(a, a.WhichOneof("msg")).nonce == nonce:
                return a
        return None
    a = ctl.wait_for(answered, 10)
    assert a is not None, f"no answer to the push with nonce {nonce}"
    return a


def assert_clean_log(text):
    """No control byte but newlines in what meshlet logged."""
    bad = [c for c in text if ord(c) < 0x20 and c != "\n" or ord(c) == 0x7f]
    assert not bad, f"control bytes in the log: {bad!r}"


BAD_VERSIONS = [
    (b"v1\x1b[31mred", "v1\\x1b[31mred"),
    (b"v 1", "v 1"),
    (b"v/1", "v/1"),
    (b"caf\xc3\xa9", "caf\\xc3\\xa9"),
    (b"v\xff\xfe", "v\\xff\\xfe"),
    (b"v\x00hidden", "v\\x00hidden"),
    (b"", ""),
]


def test_push_with_a_version_that_is_not_one_is_nacked_and_nothing_applied(
        run_meshlet, free_port, backend, controller):
    listen = free_port()
    m = run_meshlet(node_config(controller.port, listen, backend.port))
    assert controller.wait_hello(), m.stderr
    running = open(m.config_path).read()
    before = stats(m)
    for nonce, (version, shown) in enumerate(BAD_VERSIONS, start=100):
        a = push_raw(controller, version, nonce, running.encode() + b"; changed\n")
        assert a.WhichOneof("msg") == "nack", (version, a)
        assert a.nack.version == shown, (version, a.nack.version)
        assert "version: expected 1..128 characters from A-Z a-z 0-9 . _ : -" in a.nack.error, \
            a.nack.error
        assert f'got "{shown}"' in a.nack.error, a.nack.error
    st = stats(m)
    assert st["config_applies_total"] == before["config_applies_total"], st
    assert st["fleet_nacks_total"] == before["fleet_nacks_total"] + len(BAD_VERSIONS), st
    assert st["fleet_protocol_errors_total"] == 0 and st["fleet_connects_total"] == 1, st
    fleet = admin_get(m, "/fleet")  # the last refused version was ""
    assert "last_nack_version: \nlast_nack_error:\npush: version: expected" in fleet, fleet
    assert m.wait_for_stderr("nacked, nothing applied"), m.stderr
    assert "v1\\x1b[31mred" in m.stderr
    assert_clean_log(m.stderr)
    # still the same connection, and a good version with every allowed character applies
    good = "Az09._:-" + "v" * 120
    a = push_raw(controller, good.encode(), 200, running.encode() + b"; good\n")
    assert a.WhichOneof("msg") == "ack" and a.ack.version == good, a
    assert stats(m)["config_applies_total"] == before["config_applies_total"] + 1


def test_version_over_128_characters_is_not_an_envelope(run_meshlet, free_port, backend,
                                                        controller):
    # the wire bound of Push.version (fleet.options): a longer one is undecodable, not nacked
    listen = free_port()
    m = run_meshlet(node_config(controller.port, listen, backend.port))
    assert controller.wait_hello(), m.stderr
    controller.send_raw(raw_push(b"v" * 129, 7, b"[node]\n"))
    assert m.wait_for_stderr("undecodable envelope"), m.stderr
    assert controller.wait_hello(2, timeout=15), m.stderr
    assert stats(m)["fleet_protocol_errors_total"] == 1


def check(meshlet, workdir, text, name="c.ini"):
    path = workdir / name
    path.write_text(text)
    return meshlet("check", path)


@pytest.mark.parametrize("node_id", ["gw-0042", "site3:gw_7.a", "n" * 64, "gw."])
def test_check_accepts_node_ids_of_the_fleet_rule(meshlet, workdir, node_id):
    r = check(meshlet, workdir, f"[node]\nid = {node_id}\n")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("node_id", ["gw/0042", "gw\x070", "n" * 65, "gw\u00e9", "gw,1", ".gw",
                                     ".."])
def test_check_refuses_node_ids_outside_the_fleet_rule(meshlet, workdir, node_id):
    r = check(meshlet, workdir, f"[node]\nid = {node_id}\n")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"c\.ini:2: \[node\] id: expected a node id of 1\.\.64 characters from "
                     r"A-Z a-z 0-9 \. _ : -, not starting with \., got \"", r.stderr), r.stderr
    assert_clean_log(r.stderr)


def in_uts_namespace(meshlet_cmd, hostname, *args, cwd):
    """Runs meshlet with its own host name (a UTS namespace: root and unshare(1) needed)."""
    code = ("import os, socket, sys; socket.sethostname(sys.argv[1].encode('latin-1')); "
            "os.execv(sys.argv[2], sys.argv[2:])")
    return subprocess.run(["unshare", "--uts", "/usr/bin/python3", "-c", code, hostname,
                           *meshlet_cmd, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, errors="replace", timeout=scaled(10),
                          stdin=subprocess.DEVNULL)


def can_set_hostname():
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "--uts", "true"], capture_output=True)
    return r.returncode == 0


needs_uts = pytest.mark.skipif(not can_set_hostname(),
                               reason="needs unshare --uts (root) to give meshlet a host name")


@needs_uts
def test_host_name_that_is_not_a_node_id_is_a_clear_error_with_fleet(meshlet_cmd, workdir,
                                                                      free_port):
    path = workdir / "n.ini"
    path.write_text(f"[node]\nlog = info\nstate_dir = {workdir / 'state'}\n"
                    f"admin = 127.0.0.1:{free_port()}\n\n"
                    "[fleet]\nurl = ws://127.0.0.1:1/fleet/v1\ninsecure = on\n")
    for argv in (("check", path), ("-c", path)):
        r = in_uts_namespace(meshlet_cmd, "bad host\x07", *argv, cwd=workdir)
        assert r.returncode == 1, (argv, r.stdout, r.stderr)
        assert ("n.ini:1: [node] id: the default is the host name, and it is not a node id "
                "(expected 1..64 characters from A-Z a-z 0-9 . _ : -, not starting with ., got "
                "\"bad host?\"): "
                "set [node] id") in r.stderr, r.stderr
        assert_clean_log(r.stderr)


@needs_uts
def test_host_name_that_is_a_node_id_is_the_default(meshlet_cmd, workdir):
    path = workdir / "n.ini"
    path.write_text("[fleet]\nurl = ws://127.0.0.1:1/fleet/v1\ninsecure = on\n")
    r = in_uts_namespace(meshlet_cmd, "gw-host:7", "check", path, cwd=workdir)
    assert r.returncode == 0, r.stderr


@needs_uts
def test_host_name_without_fleet_is_only_a_label(meshlet_cmd, workdir):
    path = workdir / "n.ini"
    path.write_text("[node]\nlog = info\n")
    r = in_uts_namespace(meshlet_cmd, "bad host", "check", path, cwd=workdir)
    assert r.returncode == 0, r.stderr
