"""[node] and [fleet] are the node's bootstrap and come from its local file only
(runtime/fleet/README.md "Which configuration runs"), end to end with real peers: a fleet push
(python controller, and `meshlet controller` serving a default.ini) and POST /config that leave
them out keep the running values; one that sets a key of either section to another value is
refused naming that key with its line, and nothing changes; the same value is accepted; SIGHUP
re-reads the local file and may change them. Issue 7: a push could open the admin endpoint to the
network, move the access log or state_dir anywhere, or repoint the fleet client to ws://."""

import hashlib
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import scaled
from fleet_peers import PyController, content_version, fleet_section
from test_fleet_node import admin_port, data_plane, http, stats, who


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


def node_lines(m):
    """The [node] lines of the running config, as GET /config shows it."""
    status, body = http(admin_port(m), "/config")
    assert status == 200, body
    return body


# What a push or POST tries, as (INI head, the keys it must be refused for, in line order). The
# head comes first in the text, so a key's line is its line in the head.
def attacks(workdir, other_port):
    # admin_remote = on needs a token file (`meshlet check` reads it), so the attack brings one
    token = workdir / "attacker.token"
    token.write_text("an-attacker-chosen-token-0123\n")
    return {
        "admin-to-the-network": ("[node]\nadmin = 0.0.0.0:{admin}\nadmin_remote = on\n"
                                 f"admin_token = {token}\n",
                                 [(2, "node", "admin"), (3, "node", "admin_remote"),
                                  (4, "node", "admin_token")]),
        "access-log-anywhere": (f"[node]\naccess_log = {workdir}/evil.log\n",
                                [(2, "node", "access_log")]),
        "state-dir-elsewhere": (f"[node]\nstate_dir = {workdir}/elsewhere\n",
                                [(2, "node", "state_dir")]),
        "workers-changed": ("[node]\nworkers = 2\n", [(2, "node", "workers")]),
        "fleet-repointed-to-ws": (f"\n[fleet]\nurl = ws://127.0.0.1:{other_port}/fleet/v1\n"
                                  "insecure = on\n",
                                  [(3, "fleet", "url"), (4, "fleet", "insecure")]),
    }


ATTACKS = ["admin-to-the-network", "access-log-anywhere", "state-dir-elsewhere",
           "workers-changed", "fleet-repointed-to-ws"]


def assert_refused_lines(error, want):
    lines = error.splitlines()
    for line, section, key in want:
        pattern = (rf'^push:{line}: \[{section}\] {key}: bootstrap setting, set only in the local '
                   rf'file; running ".*", got ".*"$')
        assert any(re.match(pattern, l) for l in lines), (pattern, error)


# ---- fleet push ---------------------------------------------------------------------------------

def start_fleet_node(run_meshlet, free_port, ctl, backend):
    listen = free_port()
    text = ("[node]\nid = gw-1\n\n" + fleet_section(ctl.port) + "\n" +
            data_plane(listen, backend.port))
    m = run_meshlet(text)
    assert m.alive(), m.stderr
    assert ctl.wait_hello(), m.stderr
    return m, listen


@pytest.mark.parametrize("attack", ATTACKS)
def test_push_that_changes_the_bootstrap_is_nacked_with_the_key_line(
        run_meshlet, free_port, backends, controller, workdir, attack):
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_fleet_node(run_meshlet, free_port, ctl, a)
    port = admin_port(m)
    before = node_lines(m)
    head, want = attacks(workdir, free_port())[attack]
    if attack == "fleet-repointed-to-ws":
        want = want[:1]  # this node runs ws:// with insecure = on already: only url differs
    answer = ctl.push(head.format(admin=port) + data_plane(listen, b.port), version="v-evil")
    assert answer.WhichOneof("msg") == "nack", answer
    assert_refused_lines(answer.nack.error, want)
    # nothing changed: the old routing, the same admin endpoint and config, nothing written
    assert who(listen) == "A"
    assert node_lines(m) == before
    assert stats(port)["fleet_nacks_total"] == 1
    assert not (workdir / "evil.log").exists() and not (workdir / "elsewhere").exists()


def test_push_without_node_keeps_admin_and_state_dir(run_meshlet, free_port, backends, controller,
                                                      workdir):
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_fleet_node(run_meshlet, free_port, ctl, a)
    port = admin_port(m)
    answer = ctl.push(data_plane(listen, b.port), version="v-data")
    assert answer.WhichOneof("msg") == "ack", answer
    assert who(listen) == "B"
    body = node_lines(m)
    assert f"admin = 127.0.0.1:{port}" in body and f"state_dir = {workdir / 'state'}" in body, body
    assert "[fleet]" in body and "id = gw-1" in body, body
    assert "changed to" not in m.stderr  # no "[node] admin changed ... at the next start"
    state = (workdir / "state" / "config.state").read_text(errors="replace")
    assert "v-data" in state and f"admin = 127.0.0.1:{port}" in state


def test_push_repeating_the_running_bootstrap_is_acked(run_meshlet, free_port, backends,
                                                       controller, workdir):
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_fleet_node(run_meshlet, free_port, ctl, a)
    port = admin_port(m)
    same = (f"[node]\nid = gw-1\nadmin = 127.0.0.1:{port}\nstate_dir = {workdir / 'state'}\n"
            "log = info\n\n" + fleet_section(ctl.port) + "\n")
    answer = ctl.push(same + data_plane(listen, b.port), version="v-same")
    assert answer.WhichOneof("msg") == "ack", answer
    assert who(listen) == "B"


@pytest.mark.timeout(120)
def test_meshlet_controller_default_ini_without_node_keeps_each_node_admin(
        run_meshlet, meshlet_cmd, free_port, backends, workdir):
    a, b = backends("A"), backends("B")
    listen, ctl_port = free_port(), free_port()
    configs = workdir / "configs"
    configs.mkdir()
    pushed = data_plane(listen, b.port)
    (configs / "default.ini").write_text(pushed)
    ctl = subprocess.Popen([*meshlet_cmd, "controller", "--listen", f"127.0.0.1:{ctl_port}",
                            "--configs", str(configs)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        text = ("[node]\nid = gw-1\n\n" + fleet_section(ctl_port, backoff="100ms..500ms") + "\n" +
                data_plane(listen, a.port))
        m = run_meshlet(text)
        assert m.wait_for_stderr(f"applied version {content_version(pushed)} (push)",
                                 timeout=scaled(15)), m.stderr
        assert who(listen) == "B"
        port = admin_port(m)
        body = node_lines(m)  # the admin endpoint still answers where the local file put it
        assert f"admin = 127.0.0.1:{port}" in body and f"state_dir = {workdir / 'state'}" in body
    finally:
        ctl.terminate()
        ctl.wait(timeout=scaled(10))


# ---- POST /config -------------------------------------------------------------------------------

@pytest.mark.parametrize("attack", ATTACKS)
def test_post_config_that_changes_the_bootstrap_is_400_with_the_key_line(
        run_meshlet, free_port, backends, workdir, attack):
    a, b = backends("A"), backends("B")
    listen = free_port()
    m = run_meshlet("[node]\nid = gw-1\n" + data_plane(listen, a.port))  # no [fleet]
    port = admin_port(m)
    before = node_lines(m)
    head, want = attacks(workdir, free_port())[attack]
    status, body = http(port, "/config", (head.format(admin=port) +
                                          data_plane(listen, b.port)).encode())
    assert status == 400, body
    assert_refused_lines(body, want)
    assert who(listen) == "A"
    assert node_lines(m) == before
    assert stats(port)["config_apply_failures_total"] == 1
    assert not (workdir / "evil.log").exists() and not (workdir / "elsewhere").exists()


def test_post_config_naming_an_admin_token_file_does_not_tell_whether_it_exists(
        run_meshlet, free_port, backends, workdir):
    """A remote text's [node] files are not read: the answer for a path that exists (and is
    readable, or too big, or not a token) is the same bootstrap refusal as for one that does not,
    so a client of /config or a controller cannot probe the node's files."""
    a, b = backends("A"), backends("B")
    listen = free_port()
    m = run_meshlet("[node]\nid = gw-1\n" + data_plane(listen, a.port))
    port = admin_port(m)
    probes = {"missing": workdir / "no-such-file", "a-directory": workdir,
              "too-big": Path("/proc/self/exe") if Path("/proc/self/exe").exists() else workdir}
    answers = {}
    for name, path in probes.items():
        status, body = http(port, "/config", (f"[node]\nadmin_token = {path}\n\n" +
                                              data_plane(listen, b.port)).encode())
        assert status == 400, body
        assert_refused_lines(body, [(2, "node", "admin_token")])
        assert "cannot read" not in body and "expected" not in body.replace(
            "bootstrap setting", ""), body
        answers[name] = body.replace(str(path), "PATH")
    assert len(set(answers.values())) == 1, answers
    assert who(listen) == "A"


def test_post_config_without_node_keeps_admin_and_state_dir(run_meshlet, free_port, backends,
                                                            workdir):
    a, b = backends("A"), backends("B")
    listen = free_port()
    m = run_meshlet("[node]\nid = gw-1\nlog = warn\n" + data_plane(listen, a.port))
    port = admin_port(m)
    status, body = http(port, "/config", data_plane(listen, b.port).encode())
    assert status == 200, body
    assert who(listen) == "B"
    body = node_lines(m)
    assert f"admin = 127.0.0.1:{port}" in body and "log = warn" in body, body
    assert f"state_dir = {workdir / 'state'}" in body, body


def test_post_config_version_is_the_hash_of_the_posted_text(run_meshlet, free_port, backends):
    # The fleet protocol: a local apply's version is local- and the first 12 hex digits of the
    # text's SHA-256: the text as POSTed, not the text with this node's [node] merged in.
    a, b = backends("A"), backends("B")
    listen = free_port()
    m = run_meshlet("[node]\nid = gw-1\n" + data_plane(listen, a.port))
    text = data_plane(listen, b.port).encode()
    status, body = http(admin_port(m), "/config", text)
    assert status == 200, body
    want = "local-" + hashlib.sha256(text).hexdigest()[:12]
    assert body.strip() == f"version: {want}", body
    assert who(listen) == "B"


def test_post_config_repeating_the_running_bootstrap_is_accepted(run_meshlet, free_port, backends,
                                                                 workdir):
    a, b = backends("A"), backends("B")
    listen = free_port()
    m = run_meshlet("[node]\nid = gw-1\n" + data_plane(listen, a.port))
    port = admin_port(m)
    same = (f"[node]\nadmin = 127.0.0.1:{port}\nstate_dir = {workdir / 'state'}\n"
            "access_log = stderr\ndrain_timeout = 5000ms\n\n")  # 5000ms: the default 5s
    status, body = http(port, "/config", (same + data_plane(listen, b.port)).encode())
    assert status == 200, body
    assert who(listen) == "B"


# ---- SIGHUP: the local file is the node's own --------------------------------------------------

def test_sighup_with_a_changed_local_node_log_level_applies(run_meshlet, free_port, backends):
    a = backends("A")
    listen = free_port()
    m = run_meshlet("[node]\nid = gw-1\nlog = info\n" + data_plane(listen, a.port))
    path = Path(m.config_path)
    path.write_text(path.read_text().replace("log = info\n", "log = debug\n"))
    m.send_signal(signal.SIGHUP)
    assert m.wait_for_stderr("(SIGHUP)", timeout=scaled(10)), m.stderr
    assert "refused" not in m.stderr, m.stderr
    deadline = time.monotonic() + scaled(10)
    while "log = debug" not in node_lines(m):
        assert time.monotonic() < deadline, node_lines(m)
        time.sleep(0.1)
    assert who(listen) == "A"


def test_restart_runs_the_saved_push_with_the_local_file_bootstrap(run_meshlet, free_port,
                                                                   backends, controller):
    # a fleet-managed node restarts on the config saved in state_dir (the controller's data
    # plane), but its [node] and [fleet] are the local file's as it is now
    a, b = backends("A"), backends("B")
    ctl = controller()
    m, listen = start_fleet_node(run_meshlet, free_port, ctl, a)
    answer = ctl.push(data_plane(listen, b.port), version="v-saved")
    assert answer.WhichOneof("msg") == "ack", answer
    m.send_signal(signal.SIGTERM)
    assert m.wait(timeout=scaled(10)) == 0, m.stderr
    path = Path(m.config_path)
    new_admin = free_port()
    path.write_text(re.sub(r"^admin = 127\.0\.0\.1:\d+$", f"admin = 127.0.0.1:{new_admin}",
                           path.read_text(), flags=re.M).replace("[node]\n", "[node]\nlog = debug\n"))
    m2 = run_meshlet(None, "-c", path)
    assert m2.wait_for_stderr("using the last applied config", timeout=scaled(10)), m2.stderr
    assert who(listen) == "B"  # the saved data plane
    status, body = http(new_admin, "/config")  # the local file's admin, not the saved one
    assert status == 200 and body.startswith("# version: v-saved\n"), body
    assert f"admin = 127.0.0.1:{new_admin}" in body and "log = debug" in body, body
