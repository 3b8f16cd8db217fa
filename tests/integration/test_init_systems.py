"""meshlet under an init system (firmware/init/, firmware/README.md): it speaks systemd's sd_notify
datagram protocol itself. The test plays the service manager: an AF_UNIX datagram socket named by
NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). READY=1 comes once the listener
accepts, WATCHDOG=1 every WATCHDOG_USEC / 2 when that is set, STOPPING=1 at SIGTERM. The unit file
passes `systemd-analyze verify`."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import MESHLET, scaled

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "firmware" / "init" / "systemd" / "meshlet.service"


def config(workdir, listen, admin):
    path = workdir / "meshlet.ini"
    path.write_text(f"[node]\nadmin = 127.0.0.1:{admin}\nstate_dir = {workdir / 'state'}\n"
                    f"drain_timeout = 1s\n\n"
                    f"[listener in]\nbind = 127.0.0.1:{listen}\n\n"
                    f"[route all]\nlistener = in\nto = c\n\n"
                    f"[cluster c]\nendpoint = 127.0.0.1:9\n")
    return path


class Manager:
    """The service manager's end of NOTIFY_SOCKET: collects the datagrams meshlet sends."""

    def __init__(self, address, env_name):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.env_name = env_name
        self.seen = []  # (monotonic time, datagram text)

    def wait_for(self, text, timeout):
        """The time the datagram `text` arrived (it may have come already); None on timeout."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            for at, got in self.seen:
                if text in got.split("\n"):
                    return at
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return None
            self.seen.append((time.monotonic(), data.decode()))

    def count(self, text):
        return sum(1 for _, got in self.seen if text in got.split("\n"))

    def close(self):
        self.sock.close()


@pytest.fixture
def manager(workdir):
    made = []

    def make(abstract=False):
        if abstract:
            name = f"meshlet-test-notify-{os.getpid()}-{len(made)}-{time.monotonic_ns()}"
            m = Manager("\0" + name, "@" + name)
        else:
            path = workdir / f"notify-{len(made)}.sock"
            m = Manager(str(path), str(path))
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


@pytest.fixture
def start(meshlet_cmd, workdir, free_port):
    procs = []

    def run(env_extra):
        listen = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        env.update(env_extra)
        p = subprocess.Popen([*meshlet_cmd, "-c", str(config(workdir, listen, free_port()))],
                             cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(p)
        return p, listen

    yield run
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=scaled(5))
        p.stderr.close()


def accepts(port):
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(2)):
        return True


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_is_sent_once_the_listener_accepts(manager, start, abstract):
    m = manager(abstract)
    p, listen = start({"NOTIFY_SOCKET": m.env_name})
    assert m.wait_for("READY=1", 10) is not None, "no READY=1 on the notify socket"
    # READY=1 is a promise: the listener takes connections now, no retry needed.
    assert accepts(listen)
    assert p.poll() is None
    assert m.count("WATCHDOG=1") == 0, "WATCHDOG=1 without WATCHDOG_USEC"


def test_watchdog_pings_every_half_of_watchdog_usec(manager, start):
    m = manager()
    p, _ = start({"NOTIFY_SOCKET": m.env_name, "WATCHDOG_USEC": "400000"})
    assert m.wait_for("READY=1", 10) is not None
    first = m.wait_for("WATCHDOG=1", 5)
    assert first is not None, "no WATCHDOG=1 with WATCHDOG_USEC set"
    # Pings keep coming from the loop: every 200 ms asked; generous bounds, no speed claim.
    time.sleep(2.0)
    m.wait_for("never", 0.05)
    n = m.count("WATCHDOG=1")
    assert 3 <= n <= 40, f"{n} WATCHDOG=1 in about 2 s with a period of 200 ms"


def test_watchdog_for_another_pid_is_not_ours(manager, start):
    m = manager()
    start({"NOTIFY_SOCKET": m.env_name, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    assert m.wait_for("READY=1", 10) is not None
    assert m.wait_for("WATCHDOG=1", 1) is None


def test_stopping_is_sent_at_sigterm(manager, start):
    m = manager()
    p, _ = start({"NOTIFY_SOCKET": m.env_name})
    assert m.wait_for("READY=1", 10) is not None
    p.send_signal(signal.SIGTERM)
    assert m.wait_for("STOPPING=1", 10) is not None, "no STOPPING=1 after SIGTERM"
    assert p.wait(timeout=scaled(10)) == 0


def test_a_notify_socket_that_is_not_a_socket_name_is_a_warning_not_a_failure(start):
    p, listen = start({"NOTIFY_SOCKET": "relative/name"})
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        try:
            accepts(listen)
            break
        except OSError:
            time.sleep(0.05)
    assert accepts(listen)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=scaled(10)) == 0
    assert "NOTIFY_SOCKET" in p.stderr.read().decode()


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    """Against a throw-away root (systemd need not be PID 1): ExecStart and ExecReload name
    installed paths, which verify checks exist and are executable, and the unit's dependencies
    (multi-user.target, ...) come from the host's systemd package."""
    analyze = shutil.which("systemd-analyze")
    host_units = Path("/lib/systemd/system")
    if analyze is None or not (host_units / "multi-user.target").exists():
        pytest.fail("systemd-analyze missing: run firmware/setup-host.sh (package systemd)")
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "bin").mkdir()
    shutil.copy("/bin/kill", root / "bin" / "kill")
    unit_dir = root / "lib" / "systemd" / "system"
    shutil.copytree(host_units, unit_dir, symlinks=True)
    shutil.copy(UNIT, unit_dir / "meshlet.service")
    shutil.copy(MESHLET, root / "usr" / "bin" / "meshlet")
    r = subprocess.run([analyze, "verify", f"--root={root}", str(unit_dir / "meshlet.service")],
                       capture_output=True, text=True, timeout=scaled(60))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "meshlet.service" not in r.stderr, r.stderr


OPENWRT = ROOT / "firmware" / "init" / "openwrt" / "meshlet.init"
INITTAB = ROOT / "firmware" / "init" / "busybox" / "inittab.meshlet"

# procd's shell API as /lib/functions/procd.sh defines it, reduced to a record of the calls.
PROCD_STUB = r"""
procd_open_instance() { echo "open_instance $*"; }
procd_set_param() { echo "set_param $*"; }
procd_close_instance() { echo "close_instance"; }
procd_send_signal() { echo "send_signal $*"; }
"""


def openwrt_call(function):
    """Runs one of the init script's functions with procd's calls recorded (rc.common and procd
    are OpenWrt's: the script is sourced, its shebang line is not run)."""
    script = PROCD_STUB + f". {OPENWRT}\n{function}\n"
    r = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, timeout=scaled(10))
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_openwrt_script_runs_meshlet_under_procd_with_respawn():
    text = OPENWRT.read_text()
    assert text.startswith("#!/bin/sh /etc/rc.common\n")
    assert re.search(r"(?m)^USE_PROCD=1$", text) and re.search(r"(?m)^START=\d+$", text)
    calls = openwrt_call("start_service")
    assert calls[0] == "open_instance " and calls[-1] == "close_instance", calls
    assert "set_param command /usr/bin/meshlet -c /etc/meshlet/meshlet.ini" in calls
    assert any(c.startswith("set_param respawn") for c in calls), calls
    assert "set_param stderr 1" in calls


def test_openwrt_reload_sends_sighup_not_a_restart():
    assert openwrt_call("reload_service") == ["send_signal meshlet * HUP"]


def test_busybox_inittab_line_respawns_meshlet():
    lines = [line for line in INITTAB.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1, lines
    ident, runlevels, action, process = lines[0].split(":", 3)
    assert (ident, runlevels, action) == ("", "", "respawn")
    assert process == "/usr/bin/meshlet -c /etc/meshlet/meshlet.ini"
