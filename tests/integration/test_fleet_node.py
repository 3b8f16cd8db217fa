"""The node's side of the fleet protocol (runtime/fleet/README.md), end to end: meshlet's fleet client
against an independent controller written here with python3-websockets + python3-protobuf
(fleet_peers.py) and against `meshlet controller`; real grpcio backends behind meshlet show
which config routes. Pushes, Ack/Nack, the start-up choice between state_dir and the local file,
POST /config, crash safety with kill -9. Every wait is bounded."""

import random
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

import grpc_peers
from conftest import scaled
from fleet_peers import PyController, content_version, fleet_section, make_ca, make_leaf
from grpc_peers import bidi, channel, unary

CALL_TIMEOUT = scaled(10)
PREFIX = f"/{grpc_peers.SERVICE}/"


# ---- fixtures and helpers -----------------------------------------------------------------------

@pytest.fixture
def controller(free_port):
    started = []

    def start(**kw):
        c = PyController(free_port(), **kw)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def data_plane(listen_port, *endpoints, route_extra=""):
    """One listener, one route to one cluster: the part of a config a push replaces."""
    return (f"[listener in]\nbind = 127.0.0.1:{listen_port}\n\n"
            f"[route all]\nlistener = in\nprefix = {PREFIX}\nto = c\n{route_extra}\n"
            "[cluster c]\n" + "".join(f"endpoint = 127.0.0.1:{p}\n" for p in endpoints))


def admin_port(m):
    found = re.search(r"^admin\s*=\s*127\.0\.0\.1:(\d+)\s*$", Path(m.config_path).read_text(), re.M)
    return int(found.group(1))


def http(port, path, body=None):
    """(status, body text) of GET (or POST body to) http://127.0.0.1:port/path."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=scaled(10)) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def stats(port):
    status, body = http(port, "/stats")
    assert status == 200, body
    return {k: int(v) for k, v in (line.rsplit(" ", 1) for line in body.splitlines())}


def who(port):
    """The name of the backend that answers a call through meshlet."""
    with channel(port) as ch:
        return unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT).split(b":")[0].decode()


def start_node(run_meshlet, free_port, ctl, backend, node_id="gw-1", extra_args=(),
               backoff="100ms..1s"):
    """meshlet with a local file routing to backend and a [fleet] pointing at ctl."""
    listen = free_port()
    text = (f"[node]\nid = {node_id}\n\n" + fleet_section(ctl.port, backoff=backoff) + "\n" +
            data_plane(listen, backend.port))
    m = run_meshlet(text, *extra_args)
    assert m.alive(), m.stderr
    return m, listen


# ---- push, ack, nack ------------------------------------------------------------------------------

def test_push_is_acked_and_routes_the_next_call(run_meshlet, free_port, backends, controller):
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    hello = ctl.wait_hello()
    assert hello, m.stderr
    assert hello.node_id == "gw-1" and hello.config_version == ""  # the local file runs
    assert who(listen) == "A"

    # a push that leaves out [node] id and [fleet]: both are kept from the running config
    pushed = data_plane(listen, b.port)
    answer = ctl.push(pushed, version="v-one")
    assert answer.WhichOneof("msg") == "ack", answer
    assert answer.ack.version == "v-one"
    assert who(listen) == "B"

    status, body = http(admin_port(m), "/config")
    assert status == 200 and body.startswith("# version: v-one\n"), body
    assert "id = gw-1" in body and "[fleet]" in body, body
    state = (Path(m.config_path).parent / "state" / "config.state").read_bytes()
    assert b"v-one" in state and b"id = gw-1" in state
    assert stats(admin_port(m))["fleet_acks_total"] == 1


def test_invalid_push_is_nacked_with_the_line_and_nothing_changes(run_meshlet, free_port,
                                                                   backends, controller):
    a = backends("A")
    ctl = controller()
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    assert ctl.wait_hello(), m.stderr
    bad = ("[listener in]\nbind = 127.0.0.1:99999\n\n"
           f"[route all]\nlistener = in\nprefix = {PREFIX}\nto = c\nbogus = 1\n\n"
           f"[cluster c]\nendpoint = 127.0.0.1:{a.port}\n")
    answer = ctl.push(bad, version="v-bad")
    assert answer.WhichOneof("msg") == "nack", answer
    assert answer.nack.version == "v-bad"
    assert re.search(r"^push:2: \[listener in\] bind: expected", answer.nack.error, re.M), \
        answer.nack.error
    assert re.search(r"^push:8: \[route all\] bogus", answer.nack.error, re.M), answer.nack.error
    assert who(listen) == "A"  # the old routing is still in force
    st = stats(admin_port(m))
    assert st["fleet_nacks_total"] == 1 and st["config_apply_failures_total"] == 1
    status, body = http(admin_port(m), "/fleet")
    assert status == 200 and "last_nack_version: v-bad" in body and "push:2:" in body, body
    status, body = http(admin_port(m), "/config")
    assert "v-bad" not in body


def test_push_for_another_node_is_nacked(run_meshlet, free_port, backends, controller):
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    assert ctl.wait_hello(), m.stderr
    answer = ctl.push("[node]\nid = gw-2\n" + data_plane(listen, b.port), version="v-other")
    assert answer.WhichOneof("msg") == "nack"
    assert answer.nack.error.startswith(
        'push:2: [node] id: expected this node\'s id "gw-1", got "gw-2"'), answer.nack.error
    assert who(listen) == "A"


def test_same_version_is_acked_without_reapplying(run_meshlet, free_port, backends, controller):
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    assert ctl.wait_hello(), m.stderr
    assert ctl.push(data_plane(listen, b.port), version="v1").WhichOneof("msg") == "ack"
    # the same version again, even with other text: acknowledged, not applied
    assert ctl.push(data_plane(listen, a.port), version="v1").WhichOneof("msg") == "ack"
    assert who(listen) == "B"
    assert m.wait_for_stderr("push of version v1: already running")
    assert stats(admin_port(m))["config_applies_total"] == 2  # the first apply + the no-op ack


def test_status_reports_arrive(run_meshlet, free_port, backends, controller):
    a = backends("A")
    ctl = controller()
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    assert ctl.wait_hello(), m.stderr
    assert who(listen) == "A"
    got = ctl.wait_for(lambda: [s for s in ctl.statuses if s.calls_total >= 1], timeout=5)
    assert got, f"no Status with the call counted: {ctl.statuses}"
    s = got[-1]
    assert s.endpoints_total == 1 and s.config_version.startswith("local-")


# ---- which configuration runs ---------------------------------------------------------------------

def test_restart_runs_the_pushed_config_unless_reset(run_meshlet, free_port, backends, controller):
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    assert ctl.wait_hello(), m.stderr
    assert ctl.push(data_plane(listen, b.port), version="v-b").WhichOneof("msg") == "ack"
    m.send_signal(signal.SIGTERM)
    assert m.wait(timeout=10) == 0

    # same local file: the pushed config runs, and Hello says so
    argv_file = m.config_path
    m2 = run_meshlet(None, "-c", argv_file)
    assert m2.wait_for_stderr("node gw-1: running the config saved in "), m2.stderr
    assert "(version v-b)" in m2.stderr, m2.stderr
    assert ctl.wait_hello(count=2).config_version == "v-b"
    assert who(listen) == "B"
    m2.send_signal(signal.SIGTERM)
    assert m2.wait(timeout=10) == 0

    # --reset-state: the local file again
    m3 = run_meshlet(None, "-c", argv_file, "--reset-state")
    assert m3.wait_for_stderr(f"node gw-1: running {argv_file} (version local-"), m3.stderr
    assert ctl.wait_hello(count=3).config_version == ""
    assert who(listen) == "A"


def test_node_without_fleet_runs_its_local_file(run_meshlet, free_port, backends):
    a, b = backends("A"), backends("B")
    listen = free_port()
    m = run_meshlet("[node]\nid = gw-1\n" + data_plane(listen, a.port))
    port = admin_port(m)
    # POST /config saves to state_dir like any apply ...
    status, body = http(port, "/config", data_plane(listen, b.port).encode())
    assert status == 200 and re.fullmatch(r"version: local-[0-9a-f]{12}\n", body), body
    assert who(listen) == "B"
    m.send_signal(signal.SIGTERM)
    assert m.wait(timeout=10) == 0
    # ... but without [fleet] the local file is what runs at start
    m2 = run_meshlet(None, "-c", m.config_path)
    assert m2.wait_for_stderr("no [fleet]: the local file is what runs"), m2.stderr
    assert who(listen) == "A"


def test_post_config_answers_errors_and_changes_nothing(run_meshlet, free_port, backends):
    a = backends("A")
    listen = free_port()
    m = run_meshlet("[node]\nid = gw-1\n" + data_plane(listen, a.port))
    port = admin_port(m)
    status, body = http(port, "/config", b"[listener in]\nbind = 127.0.0.1:1\nmax_streams = lots\n")
    assert status == 400, body
    assert re.search(r"^push:3: \[listener in\] max_streams: expected .*got \"lots\"$", body,
                     re.M), body
    status, body = http(port, "/config", b"\x00\x01binary")
    assert status == 400 and body.startswith("push: expected a text file (UTF-8), got a NUL byte"), body
    assert who(listen) == "A"
    assert stats(port)["config_apply_failures_total"] == 2


# ---- crash safety ------------------------------------------------------------------------------

@pytest.mark.timeout(240)
def test_kill_9_during_pushes_leaves_a_whole_config(run_meshlet, free_port, backends, controller):
    """200 trials: a push goes out and the node is killed with SIGKILL at a random moment around
    its handling (seeded); after each restart state_dir holds the old or the new config whole and
    the node starts with it (its Hello says which)."""
    a, b = backends("A"), backends("B")
    ctl = controller()
    rng = random.Random(20261205)
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    assert ctl.wait_hello(), m.stderr
    path = m.config_path
    configs = {"v-a": data_plane(listen, a.port), "v-b": data_plane(listen, b.port)}
    applied = {""}  # what may run: the local file, or a version that was (maybe) saved
    hellos = 1
    outcomes = {}
    for trial in range(200):
        version = "v-a" if trial % 2 else "v-b"
        with ctl._cond:
            ctl._nonce += 1
            nonce = ctl._nonce
        env = ctl.pb.Envelope()
        env.push.version = version
        env.push.nonce = nonce
        env.push.ini = configs[version].encode()
        ctl.send_raw(env.SerializeToString())
        time.sleep(rng.uniform(0, 0.03))
        m.proc.kill()
        m.proc.wait(timeout=scaled(5))
        applied.add(version)
        m = run_meshlet(None, "-c", path)
        hellos += 1
        hello = ctl.wait_hello(count=hellos)
        assert hello is not None, f"trial {trial}: no Hello after the restart:\n{m.stderr}"
        assert hello.config_version in applied, (trial, hello.config_version)
        assert "torn or garbled" not in m.stderr, m.stderr
        outcomes[hello.config_version] = outcomes.get(hello.config_version, 0) + 1
        # the state that runs is exactly the one saved: the prior version for next time
        applied = {hello.config_version}
    # the kills landed both before and after the save at least once
    assert len(outcomes) >= 2, outcomes
    m.proc.kill()


# ---- hot apply under load -------------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_twenty_pushes_under_bidi_and_unary_load_fail_no_call(run_meshlet, free_port, backends,
                                                             controller):
    """50 bidi streams stay open through 20 pushes (each one message per round, echoed), and a
    steady unary load runs meanwhile: zero calls fail or are reset. The pushes alternate between
    two configs with the same listener and endpoints but other route and cluster settings, so
    each one really applies (a new version) and the listener and pools are kept."""
    a, b = backends("A", workers=80), backends("B", workers=80)
    ctl = controller()
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    assert ctl.wait_hello(), m.stderr
    configs = [data_plane(listen, a.port, b.port, route_extra="timeout = 30s\n"),
               data_plane(listen, a.port, b.port, route_extra="timeout = 20s\n")
               .replace("[cluster c]\n", "[cluster c]\nmax_pending = 512\n")]
    assert ctl.push(configs[0], version="load-0").WhichOneof("msg") == "ack"

    stop = threading.Event()
    errors = []
    rounds = [0] * 50
    unary_ok = [0]

    def bidi_stream(i, ch):
        gate = threading.Semaphore(1)

        def requests():
            n = 0
            while not stop.is_set() and n < 10000:
                if not gate.acquire(timeout=CALL_TIMEOUT):
                    return
                n += 1
                yield f"{i}:{n}".encode()
                time.sleep(0.02)
        try:
            for msg in bidi(ch, "Chat")(requests(), timeout=scaled(150)):
                assert msg.endswith(f":{i}:{rounds[i] + 1}".encode()), msg
                rounds[i] += 1
                gate.release()
        except Exception as e:  # any failure or reset is what this test is about
            errors.append(f"bidi {i}: {e!r}")

    def unary_load(ch):
        call = unary(ch, "Say")
        n = 0
        while not stop.is_set() and n < 100000:
            n += 1
            try:
                call(b"u", timeout=CALL_TIMEOUT)
                unary_ok[0] += 1
            except Exception as e:
                errors.append(f"unary {n}: {e!r}")
            time.sleep(0.005)

    with channel(listen) as ch_bidi, channel(listen) as ch_unary:
        threads = [threading.Thread(target=bidi_stream, args=(i, ch_bidi)) for i in range(50)]
        threads.append(threading.Thread(target=unary_load, args=(ch_unary,)))
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            for k in range(1, 21):
                answer = ctl.push(configs[k % 2], version=f"load-{k}")
                assert answer.WhichOneof("msg") == "ack", answer
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(scaled(30))
    assert not errors, errors[:10]
    assert min(rounds) >= 5, rounds  # every stream kept talking through the pushes
    assert unary_ok[0] >= 100, unary_ok[0]
    assert stats(admin_port(m))["config_applies_total"] == 21


# ---- against `meshlet controller` -----------------------------------------------------------------

def test_meshlet_controller_pushes_and_a_restarted_one_does_not_repush(
        run_meshlet, meshlet_cmd, free_port, backends, workdir):
    a, b = backends("A"), backends("B")
    listen, ctl_port = free_port(), free_port()
    configs = workdir / "configs"
    configs.mkdir()
    pushed = data_plane(listen, b.port)
    (configs / "default.ini").write_text(pushed)

    def start_controller():
        return subprocess.Popen([*meshlet_cmd, "controller", "--listen", f"127.0.0.1:{ctl_port}",
                                 "--configs", str(configs)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    ctl = start_controller()
    try:
        text = ("[node]\nid = gw-1\n\n" + fleet_section(ctl_port, backoff="100ms..500ms") + "\n" +
                data_plane(listen, a.port))
        m = run_meshlet(text)
        version = content_version(pushed)
        assert m.wait_for_stderr(f"applied version {version} (push)", timeout=15), m.stderr
        assert who(listen) == "B"

        # the controller restarts: the node reconnects, says what it runs, gets no push
        ctl.terminate()
        ctl.wait(timeout=scaled(10))
        applies = stats(admin_port(m))["config_applies_total"]
        connects = stats(admin_port(m))["fleet_connects_total"]
        ctl = start_controller()
        deadline = time.monotonic() + scaled(15)
        while stats(admin_port(m))["fleet_connects_total"] <= connects:
            assert time.monotonic() < deadline, m.stderr
            time.sleep(0.1)
        time.sleep(1.0)  # a push would come right after the Hello
        st = stats(admin_port(m))
        assert st["fleet_pushes_total"] == 1 and st["config_applies_total"] == applies, st
        assert who(listen) == "B"
    finally:
        ctl.terminate()
        ctl.wait(timeout=scaled(10))


def test_node_and_meshlet_controller_over_mutual_tls(run_meshlet, meshlet_cmd, free_port,
                                                    backends, workdir):
    """wss:// end to end: the node checks the controller's certificate against [fleet] ca and
    presents its own (cert, key), which `meshlet controller --ca` requires."""
    a, b = backends("A"), backends("B")
    pki = workdir / "pki"
    pki.mkdir()
    make_ca(pki, "ca")
    make_leaf(pki, "controller", "ca", "subjectAltName=IP:127.0.0.1")
    make_leaf(pki, "gw-1", "ca", "extendedKeyUsage=clientAuth")
    listen, ctl_port = free_port(), free_port()
    configs = workdir / "configs"
    configs.mkdir()
    pushed = data_plane(listen, b.port)
    (configs / "gw-1.ini").write_text(pushed)
    ctl = subprocess.Popen([*meshlet_cmd, "controller", "--listen", f"127.0.0.1:{ctl_port}",
                            "--configs", str(configs), "--cert", str(pki / "controller.crt"),
                            "--key", str(pki / "controller.key"), "--ca", str(pki / "ca.crt")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        text = ("[node]\nid = gw-1\n\n"
                f"[fleet]\nurl = wss://127.0.0.1:{ctl_port}/fleet/v1\nca = {pki / 'ca.crt'}\n"
                f"cert = {pki / 'gw-1.crt'}\nkey = {pki / 'gw-1.key'}\nbackoff = 100ms..1s\n\n" +
                data_plane(listen, a.port))
        m = run_meshlet(text)
        version = content_version(pushed)
        assert m.wait_for_stderr(f"applied version {version} (push)", timeout=15), m.stderr
        assert who(listen) == "B"
        with urllib.request.urlopen(f"https://127.0.0.1:{ctl_port}/fleet", timeout=scaled(5),
                                    context=client_tls(pki)) as r:
            fleet = r.read().decode()
        assert f'"config_version":"{version}"' in fleet.replace(" ", ""), fleet
    finally:
        ctl.terminate()
        ctl.wait(timeout=scaled(10))


def client_tls(pki):
    import ssl
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "gw-1.crt"), str(pki / "gw-1.key"))
    return ctx


def test_a_push_that_cannot_be_saved_is_nacked_and_changes_nothing(run_meshlet, free_port,
                                                                   backends, controller):
    """The save cannot keep the current file aside (a directory sits on that name: even root
    cannot unlink it): the push is nacked with the reason, the routing and the saved config
    stay. (The temporary file's name is random: a directory there is stepped around.)"""
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_node(run_meshlet, free_port, ctl, a)
    assert ctl.wait_hello(), m.stderr
    state = Path(m.config_path).parent / "state"
    assert ctl.push(data_plane(listen, a.port), version="v-saved").WhichOneof("msg") == "ack"
    saved = (state / "config.state").read_bytes()
    (state / ".config.state.prev").mkdir()
    answer = ctl.push(data_plane(listen, b.port), version="v-unsaved")
    assert answer.WhichOneof("msg") == "nack", answer
    assert answer.nack.error.startswith(f"state_dir {state}: cannot save the config: "), \
        answer.nack.error
    assert who(listen) == "A"
    assert (state / "config.state").read_bytes() == saved
    status, body = http(admin_port(m), "/config")
    assert body.startswith("# version: v-saved\n"), body
