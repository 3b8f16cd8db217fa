"""The node's log on a device (config/README.md, "Logs"): `[node] log_target = syslog` sends one
RFC 3164 datagram per line to /dev/log (here a socket the test binds, named by the
MESHLET_SYSLOG_SOCKET variable that exists for tests) with the priority of its level, tag
meshlet[PID]; a syslog that cannot be reached is said once on stderr and the lines go there.
Under systemd (JOURNAL_STREAM names stderr) each stderr line starts with the journal's <N>."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import scaled

DAEMON = 3 << 3
SEVERITY = {"error": 3, "warn": 4, "info": 6, "debug": 7}
SYSLOG_RE = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d meshlet\[(\d+)\]: (.*)$")


def config(workdir, listen, admin, extra=""):
    path = workdir / "meshlet.ini"
    path.write_text(f"[node]\nadmin = 127.0.0.1:{admin}\nstate_dir = {workdir / 'state'}\n"
                    f"drain_timeout = 0\n{extra}\n"
                    f"[listener in]\nbind = 127.0.0.1:{listen}\n\n"
                    f"[route all]\nlistener = in\nto = c\n\n"
                    f"[cluster c]\nendpoint = 127.0.0.1:9\n")
    return path


@pytest.fixture
def start(meshlet_cmd, workdir, free_port):
    procs = []

    def run(extra, env_extra, stderr=subprocess.PIPE):
        path = config(workdir, free_port(), free_port(), extra)
        env = {k: v for k, v in os.environ.items()
               if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "MESHLET_SYSLOG_SOCKET")}
        env.update(env_extra)
        p = subprocess.Popen([*meshlet_cmd, "-c", str(path)], cwd=workdir, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        procs.append(p)
        return p, path

    yield run
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=scaled(5))


def recv_until(sock, pattern, timeout=10):
    """Datagrams received until one matches pattern (all of them, in order); fails on timeout."""
    got = []
    deadline = time.monotonic() + scaled(timeout)
    while not any(re.search(pattern, g) for g in got):
        left = deadline - time.monotonic()
        assert left > 0, f"no datagram matching {pattern!r}; got {got}"
        sock.settimeout(left)
        got.append(sock.recv(4096).decode())
    return got


def test_syslog_target_sends_one_datagram_per_line_with_its_priority(start, workdir):
    path = workdir / "dev-log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as log:
        log.bind(str(path))
        p, ini = start("log_target = syslog", {"MESHLET_SYSLOG_SOCKET": str(path)})
        got = recv_until(log, r"\]: node .*: running")
        # A warning: SIGHUP with the file gone (the running config stays).
        ini.rename(ini.with_suffix(".gone"))
        p.send_signal(signal.SIGHUP)
        got += recv_until(log, r"cannot read it")
        p.send_signal(signal.SIGTERM)
        got += recv_until(log, r"\]: stopped$")
        assert p.wait(timeout=scaled(10)) == 0
        stderr = p.stderr.read().decode()
    for g in got:
        m = SYSLOG_RE.match(g)
        assert m, f"not an RFC 3164 line: {g!r}"
        assert int(m.group(2)) == p.pid
        assert "\n" not in g
    pri = {SYSLOG_RE.match(g).group(3).split(":")[0]: int(SYSLOG_RE.match(g).group(1)) for g in got}
    running = next(g for g in got if "running" in g)
    warn = next(g for g in got if "cannot read it" in g)
    assert SYSLOG_RE.match(running).group(1) == str(DAEMON | SEVERITY["info"]), pri
    assert SYSLOG_RE.match(warn).group(1) == str(DAEMON | SEVERITY["warn"]), pri
    # Everything went to syslog: nothing of it on stderr.
    assert "running" not in stderr and "cannot read it" not in stderr, stderr


def test_a_missing_syslog_socket_is_said_once_and_lines_go_to_stderr(start, workdir):
    missing = workdir / "no-such-dev-log"
    p, ini = start("log_target = syslog", {"MESHLET_SYSLOG_SOCKET": str(missing)})
    deadline = time.monotonic() + scaled(10)
    time.sleep(0.3)
    ini.rename(ini.with_suffix(".gone"))
    p.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=max(1, deadline - time.monotonic())) == 0
    stderr = p.stderr.read().decode()
    notes = [line for line in stderr.splitlines() if "log_target = syslog" in line]
    assert len(notes) == 1, stderr
    assert str(missing) in notes[0]
    assert re.search(r" meshlet info: node .*: running", stderr), stderr
    assert "cannot read it" in stderr and "stopped" in stderr, stderr


def test_stderr_lines_carry_journal_priorities_when_stderr_is_the_journal(start, workdir):
    out = workdir / "journal-stream"
    with open(out, "wb") as f:
        st = os.fstat(f.fileno())
        p, ini = start("", {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, stderr=f)
        time.sleep(0.5)
        ini.rename(ini.with_suffix(".gone"))
        p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=scaled(10)) == 0
    lines = out.read_text().splitlines()
    assert lines, "no log lines"
    for line in lines:
        assert re.match(r"^<[3467]>\d{4}-\d\d-\d\dT", line), line
    assert any(line.startswith("<6>") and "running" in line for line in lines), lines
    assert any(line.startswith("<4>") and "cannot read it" in line for line in lines), lines


def test_a_journal_stream_that_is_not_our_stderr_changes_nothing(start, workdir):
    out = workdir / "not-the-journal"
    with open(out, "wb") as f:
        p, _ = start("", {"JOURNAL_STREAM": "1:2"}, stderr=f)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=scaled(10)) == 0
    lines = out.read_text().splitlines()
    assert lines and all(re.match(r"^\d{4}-\d\d-\d\dT", line) for line in lines), lines


def test_an_unknown_log_target_is_refused_by_check(meshlet, workdir):
    path = config(workdir, 1, 2, "log_target = kmsg")
    r = meshlet("check", path)
    assert r.returncode == 1
    assert "log_target" in r.stderr and "kmsg" in r.stderr, r.stderr


def test_log_target_is_bootstrap_a_post_that_changes_it_is_refused(run_meshlet, free_port):
    from test_fleet_node import admin_port, data_plane, http

    listen = free_port()
    m = run_meshlet("[node]\nlog_target = stderr\n\n" + data_plane(listen, 9))
    assert m.alive(), m.stderr
    port = admin_port(m)
    status, body = http(port, "/config",
                        ("[node]\nlog_target = syslog\n\n" + data_plane(listen, 9)).encode())
    assert status == 400, body
    assert re.search(r"\[node\] log_target: bootstrap setting", body), body
    status, body = http(port, "/config")
    assert "log_target = stderr" in body or "log_target" not in body, body
