"""The qemu board images (firmware/image/) booted in qemu-system and driven from the host: gRPC
calls from the host through meshlet in the guest to backends on the host, balanced per call; a
push from `meshlet controller` on the host, acked; a reboot; the pushed config is the one in
force. Per board it also measures boot-to-ready, meshlet's RSS idle and with 100 streams open, and
the binary's size (written to build/image/BOARD/boot-report.txt and printed).

The guest reaches the host only through QEMU's user-mode network: its gateway 10.0.2.2 is the
host's loopback, so the backends and the controller listen on 127.0.0.1 here and are named
10.0.2.2:PORT in the guest's config. The host reaches the guest's listener and admin endpoint
through run.sh's forwards of two loopback ports. No other address is used.

Skipped (with the reason) when qemu-system for the board is not installed or the board's meshlet
is not built; the image itself is built here from the pinned Debian packages (build.sh), into the
test's directory. Skipped in the sanitizer stage (ML_SANITIZE=1): the guest's binary is the
board's, not a sanitized one, so a second run would test nothing more."""

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

import grpc_peers
from conftest import ROOT, SANITIZE, scaled
from fleet_peers import content_version
from grpc_peers import channel, server_stream, unary

BOARDS = ["qemu-aarch64", "qemu-armv7"]
PREFIX = f"/{grpc_peers.SERVICE}/"
TOKEN = "boot-test-admin-token-0123456789"
STREAMS = 100
GUEST_ADMIN_PORT = 15000  # the image's admin endpoint (firmware/image/run.sh forwards to it)
# TCG emulation on a loaded 2-core host: a boot is ~4 s idle, much more when busy
BOOT_WAIT = scaled(240)
CALL_TIMEOUT = scaled(30)

pytestmark = pytest.mark.skipif(SANITIZE, reason="the guest runs the board's binary, not a "
                                "sanitized one: the boot test runs in the plain stage only")


def board_conf(board):
    """boards/BOARD/qemu.conf's assignments (plain KEY="VALUE" lines)."""
    conf = {}
    for line in (ROOT / "boards" / board / "qemu.conf").read_text().splitlines():
        m = re.match(r'^([A-Z_]+)="(.*)"$', line)
        if m:
            conf[m.group(1)] = m.group(2)
    return conf


class Guest:
    """One `firmware/image/run.sh BOARD --no-build` (it execs qemu-system): the console's lines
    are collected as they come; the test types into the guest's shell on the same console."""

    def __init__(self, board, image, disk, listen_port, admin_port):
        self.t0 = time.monotonic()
        env = dict(os.environ, ML_IMAGE_OUT=str(image))
        self.proc = subprocess.Popen(
            [str(ROOT / "firmware" / "image" / "run.sh"), board, "--no-build", "--disk", str(disk),
             "--listen-port", str(listen_port), "--admin-port", str(admin_port)],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def console(self):
        with self.cond:
            return "\n".join(self.lines[-80:])

    def wait_for(self, text, start=0, timeout=BOOT_WAIT):
        """The index of the first console line from `start` on that contains text; fails the
        test (with the console's end) if QEMU exits or time runs out first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if text in self.lines[i]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    pytest.fail(f"no console line with {text!r} (qemu "
                                f"{'exited ' + str(self.proc.poll()) if self.proc.poll() is not None else 'running'}"
                                f"):\n{chr(10).join(self.lines[-80:])}")
                self.cond.wait(min(left, 0.2))

    def mark(self):
        with self.cond:
            return len(self.lines)

    def type(self, command):
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=scaled(10))
        self.reader.join(timeout=5)


def http(port, path, token=TOKEN, timeout=10):
    # Host names the admin endpoint as the guest has it (port 15000): the admin refuses (421)
    # a Host whose port is not its own, and the forward's host port is another
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Host": f"127.0.0.1:{GUEST_ADMIN_PORT}"})
    try:
        with urllib.request.urlopen(req, timeout=scaled(timeout)) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_ready(admin_port, guest, timeout=BOOT_WAIT):
    """Seconds from QEMU's start until the guest's /ready answers 200 through the forward."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http(admin_port, "/ready", timeout=2)[0] == 200:
                return time.monotonic() - guest.t0
        except OSError:
            pass  # QEMU forwards the connection, and the guest resets it until meshlet listens
        assert guest.proc.poll() is None, f"qemu exited:\n{guest.console}"
        time.sleep(0.2)
    pytest.fail(f"/ready never answered 200 within {timeout:g}s:\n{guest.console}")


def metrics(admin_port):
    """(meshlet's RSS in the guest, calls open on the listener `in`), from /stats/prometheus
    (the RSS is what the guest's /proc/self/stat says)."""
    status, body = http(admin_port, "/stats/prometheus")
    assert status == 200, body
    rss = int(re.search(r"^process_resident_memory_bytes (\d+)$", body, re.M).group(1))
    active = re.search(r'^meshlet_listener_calls_active\{[^}]*listener="in"[^}]*\} (\d+)$', body,
                       re.M)
    assert active, body
    return rss, int(active.group(1))


def who_answers(port, calls):
    """Backend name → calls it answered, of `calls` unary calls on ONE connection (so any
    spreading is meshlet's per-call balancing, not the client's)."""
    seen = {}
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(calls):
            name = say(b"x", timeout=CALL_TIMEOUT).split(b":")[0].decode()
            seen[name] = seen.get(name, 0) + 1
    return seen


def streams_open_rss(port, admin_port, n):
    """meshlet's RSS while n server-streaming calls are open through it (each has had its first
    message: it reached a backend and came back); the calls are cancelled afterwards."""
    with channel(port) as ch:
        hang = server_stream(ch, "Hang")
        calls = [hang(b"", timeout=scaled(120)) for _ in range(n)]
        try:
            with ThreadPoolExecutor(max_workers=16) as pool:
                firsts = list(pool.map(lambda c: next(c), calls))
            assert firsts == [b"started"] * n
            rss, active = metrics(admin_port)
            assert active == n, f"{active} calls open in meshlet, not {n}"
            return rss
        finally:
            for c in calls:
                c.cancel()


@pytest.fixture(scope="module")
def image_of(tmp_path_factory):
    built = {}

    def get(board):
        if board not in built:
            qemu = board_conf(board).get("QEMU_SYSTEM", "").split()[:1]
            if not qemu or shutil.which(qemu[0]) is None:
                pytest.skip(f"{qemu[0] if qemu else 'qemu-system'} is not installed "
                            "(firmware/setup-host.sh --qemu-system installs it)")
            binary = ROOT / "build" / board / "meshlet"
            if not binary.is_file():
                pytest.skip(f"no {binary}: build the board first (cmake -S . -B build/{board} "
                            f"-G Ninja -DML_BOARD={board} && cmake --build build/{board})")
            out = tmp_path_factory.mktemp(f"image-{board}")
            r = subprocess.run([str(ROOT / "firmware" / "image" / "build.sh"), board],
                               env=dict(os.environ, ML_IMAGE_OUT=str(out)), capture_output=True,
                               text=True, timeout=scaled(600))
            assert r.returncode == 0, f"firmware/image/build.sh {board} failed:\n{r.stderr}"
            built[board] = out
        return built[board]

    return get


@pytest.mark.timeout(900)
@pytest.mark.parametrize("board", BOARDS)
def test_boot_push_reboot(board, image_of, workdir, free_port, backends, meshlet_cmd):
    image = image_of(board)
    a, b, c = (backends(n, workers=64) for n in ("A", "B", "C"))
    listen_port, admin_port, ctl_port = free_port(), free_port(), free_port()

    # The gateway's own file (on its data disk): the fleet, and a data plane to A only.
    site = (
        "[node]\nid = gw-qemu\nstate_dir = /data/meshlet\nadmin = 0.0.0.0:15000\n"
        "admin_remote = on\nadmin_token = /data/admin.token\n\n"
        f"[fleet]\nurl = ws://10.0.2.2:{ctl_port}/fleet/v1\ninsecure = on\n"
        "backoff = 200ms..2s\nreport_interval = 1s\n\n"
        "[listener in]\nbind = 0.0.0.0:15001\n\n"
        f"[route all]\nlistener = in\nprefix = {PREFIX}\nto = c\n\n"
        f"[cluster c]\nendpoint = 10.0.2.2:{a.port}\n")
    # What the controller pushes: the same listener, to B and C, round robin per call.
    pushed = (
        "[listener in]\nbind = 0.0.0.0:15001\n\n"
        f"[route all]\nlistener = in\nprefix = {PREFIX}\nto = c\n\n"
        f"[cluster c]\nlb = round_robin\nendpoint = 10.0.2.2:{b.port}\n"
        f"endpoint = 10.0.2.2:{c.port}\n")
    version = content_version(pushed)
    (workdir / "site.ini").write_text(site)
    (workdir / "token").write_text(TOKEN + "\n")
    configs = workdir / "configs"
    configs.mkdir()
    (configs / "gw-qemu.ini").write_text(pushed)
    disk = workdir / "data.ext2"
    subprocess.run([str(ROOT / "firmware" / "image" / "mkdisk.sh"), str(disk),
                    str(workdir / "site.ini"), str(workdir / "token")], check=True,
                   capture_output=True, timeout=scaled(60))

    ctl = subprocess.Popen([*meshlet_cmd, "controller", "--listen", f"127.0.0.1:{ctl_port}",
                            "--configs", str(configs)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    guest = Guest(board, image, disk, listen_port, admin_port)
    try:
        # first boot: nothing saved; the local file runs, the controller pushes, the node acks
        ready_s = wait_ready(admin_port, guest)
        guest.wait_for(f"applied version {version} (push)")
        deadline = time.monotonic() + scaled(30)
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{ctl_port}/fleet",
                                        timeout=scaled(5)) as r:
                nodes = {n["id"]: n for n in json.loads(r.read())["nodes"]}
            node = nodes.get("gw-qemu", {})
            if node.get("running_version") == version and node.get("state") in ("SYNCED", "synced"):
                break
            assert time.monotonic() < deadline, f"controller never saw the ack: {node}"
            time.sleep(0.2)

        # host → guest meshlet → host backends, spread per call over B and C
        seen = who_answers(listen_port, 20)
        assert set(seen) == {"B", "C"} and min(seen.values()) >= 5, seen

        rss_idle, active = metrics(admin_port)
        assert active == 0, active
        rss_streams = streams_open_rss(listen_port, admin_port, STREAMS)

        # reboot with the controller gone: only the saved config can route to B and C
        ctl.terminate()
        ctl.wait(timeout=scaled(10))
        at = guest.mark()
        guest.type("reboot")
        guest.wait_for("image: shut down", start=at, timeout=scaled(60))
        at_boot = guest.wait_for("image: rcS done", start=at)
        # meshlet's first word on where its config comes from: the saved one, or (a failure) the
        # local file because nothing was saved
        at_config = guest.wait_for("config: using", start=at_boot)
        assert "config: using the last applied config from /data/meshlet" in \
            guest.lines[at_config], guest.console
        wait_ready(admin_port, guest)
        status, info = http(admin_port, "/server_info")
        assert status == 200, info
        config = json.loads(info)["config"]
        assert (config["version"], config["source"]) == (version, "state_dir"), config
        seen = who_answers(listen_port, 10)
        assert set(seen) == {"B", "C"}, seen
        assert a.calls == 0, "the local file's backend was called: the pushed config was not in force"

        size = (ROOT / "build" / board / "meshlet").stat().st_size
        report = (f"{board}: boot-to-ready {ready_s:.1f} s (QEMU start to /ready 200, TCG), "
                  f"RSS idle {rss_idle // 1024} KiB, with {STREAMS} streams open "
                  f"{rss_streams // 1024} KiB, binary {size} bytes ({size // 1024} KiB)\n")
        print(report, end="")
        out = ROOT / "build" / "image" / board
        out.mkdir(parents=True, exist_ok=True)
        (out / "boot-report.txt").write_text(report)
    finally:
        guest.stop()
        if ctl.poll() is None:
            ctl.kill()
            ctl.wait(timeout=scaled(10))
