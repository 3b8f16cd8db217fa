"""Fixtures for meshlet's integration tests: real processes, no mocks.

The binary is $ML_MESHLET, else build/host/meshlet; $ML_EMULATOR (e.g.
"qemu-aarch64-static -cpu cortex-a53") is put in front of it for a cross build. Without
$ML_EMULATOR, a binary built for another machine (a board's build directory) runs under its
board's qemu-user (QEMU_USER in boards/BOARD/qemu.conf), so
`ML_MESHLET=$PWD/build/qemu-armv7/meshlet pytest tests/integration` is all it takes; set
ML_EMULATOR= (empty) to run it as it is (binfmt_misc). Every process a test starts runs meshlet
through meshlet_command() (the meshlet_cmd fixture). Every wait is bounded: each test gets a
wall-clock limit (`meshlet_test_timeout` in pytest.ini, scaled by $ML_TIMEOUT_SCALE, default 5
under an emulator) and every process a test starts is killed at teardown.

$ML_SANITIZE=1 (tests/run.sh's sanitizer stage, with an ASan + UBSan build): teardown stops a
meshlet still running with SIGINT first (a prompt, normal exit: LeakSanitizer only checks at exit,
and a SIGKILLed process reports nothing), and SIGKILL only if it has not exited in time.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MESHLET = Path(os.environ.get("ML_MESHLET") or ROOT / "build" / "host" / "meshlet").absolute()

# ELF e_machine of the machines this host runs natively (x86-64, i386).
_NATIVE_MACHINES = (62, 3)


def _board_emulator(binary):
    """The qemu-user prefix a foreign binary needs: its build directory's board's QEMU_USER
    (with the board's CPU), [] for a binary this host runs itself or one it cannot tell."""
    try:
        with open(binary, "rb") as f:
            head = f.read(20)
    except OSError:
        return []  # meshlet_bin names the missing binary
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") in _NATIVE_MACHINES:
        return []
    cache = binary.parent / "CMakeCache.txt"
    board = re.search(r"^ML_BOARD:\w+=(\S+)$", cache.read_text(), re.M) if cache.is_file() else None
    conf = ROOT / "boards" / board.group(1) / "qemu.conf" if board else None
    line = re.search(r'^QEMU_USER="([^"]*)"$', conf.read_text(), re.M) if conf and conf.is_file() \
        else None
    return shlex.split(line.group(1)) if line else []


def _absolute(argv):
    """argv with its program as an absolute path: some tests exec it themselves (os.execv, in a
    namespace) where there is no PATH search."""
    if argv and not os.path.isabs(argv[0]):
        return [shutil.which(argv[0]) or argv[0], *argv[1:]]
    return argv


EMULATOR = _absolute(shlex.split(os.environ["ML_EMULATOR"]) if "ML_EMULATOR" in os.environ
                     else _board_emulator(MESHLET))
TIMEOUT_SCALE = float(os.environ.get("ML_TIMEOUT_SCALE", "5" if EMULATOR else "1"))
SANITIZE = os.environ.get("ML_SANITIZE", "") == "1"


def scaled(seconds):
    """A time bound, stretched when meshlet runs under an emulator."""
    return seconds * TIMEOUT_SCALE


# ---- a wall-clock limit per test (pytest-timeout is not installed) --------------------------

class MeshletTestTimeout(Exception):
    pass


def pytest_addoption(parser):
    parser.addini("meshlet_test_timeout", "seconds a test (setup, call, teardown each) may take",
                  default="60")


def _limited(item):
    limit = scaled(float(item.config.getini("meshlet_test_timeout")))
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        limit = scaled(float(marker.args[0]))

    def on_alarm(signum, frame):
        raise MeshletTestTimeout(f"{item.nodeid}: took longer than {limit:g}s "
                                 "(meshlet_test_timeout in pytest.ini, or its timeout mark)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _limited(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _limited(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _limited(item)



# ---- the binary -----------------------------------------------------------------------------

def meshlet_command(binary=None, own_build=False):
    """The argv prefix that runs a meshlet binary (default: the one under test), under the
    emulator when there is one. Every test that starts meshlet goes through here, also for a copy
    of the binary (the installed one of a package). own_build: the binary is another build's
    (the minimal host build beside an ARM run), whose emulator is its own board's."""
    if own_build and binary is not None and "ML_EMULATOR" not in os.environ:
        return [*_absolute(_board_emulator(Path(binary))), str(binary)]
    return [*EMULATOR, str(binary or MESHLET)]


@pytest.fixture(scope="session")
def meshlet_bin():
    # absolute: meshlet runs with the test's directory as cwd
    if not MESHLET.is_file() or not os.access(MESHLET, os.X_OK):
        pytest.fail(f"no meshlet binary at {MESHLET}: build it (cmake --build build/host) "
                    "or set ML_MESHLET")
    return MESHLET


@pytest.fixture(scope="session")
def meshlet_cmd(meshlet_bin):
    """The argv prefix that runs meshlet: [emulator..., binary]."""
    return meshlet_command(meshlet_bin)


@pytest.fixture(scope="session")
def meshlet_board(meshlet_cmd):
    """The board the binary under test was built for, as `meshlet version` names it (tests that
    see it in /server_info or metrics must not assume the host's)."""
    r = subprocess.run([*meshlet_cmd, "version"], capture_output=True, text=True,
                       timeout=scaled(10), stdin=subprocess.DEVNULL)
    board = re.search(r"^board: (\S+)$", r.stdout, re.M)
    assert r.returncode == 0 and board, r.stdout + r.stderr
    return board.group(1)


@pytest.fixture(scope="session")
def kconfig(meshlet_bin):
    """The Kconfig the binary under test was built with (the .config of its build directory):
    {"CONFIG_ML_H2_MAX_STREAMS": 128, ...}, ints as ints. Boards differ (the 32-bit ones have
    smaller limits): a test that goes up to a limit reads it here."""
    path = meshlet_bin.parent / ".config"
    if not path.is_file():
        pytest.fail(f"no {path}: the binary under test is not in its build directory")
    values = {}
    for name, value in re.findall(r"^(CONFIG_\w+)=(.*)$", path.read_text(), re.M):
        values[name] = int(value) if re.fullmatch(r"-?\d+", value) else value.strip('"')
    return values


@pytest.fixture
def meshlet(meshlet_cmd, workdir):
    """meshlet(*args, timeout=10, input=None) → CompletedProcess (text, stdout/stderr captured).
    For commands that end by themselves (version, check, bad arguments)."""

    def run(*args, timeout=10):
        return subprocess.run([*meshlet_cmd, *map(str, args)], cwd=workdir, capture_output=True,
                              text=True, errors="replace", timeout=scaled(timeout),
                              stdin=subprocess.DEVNULL)

    return run


@pytest.fixture
def tls_built(meshlet):
    """Skips the test on a build without ML_TLS, which refuses every tls key (as
    test_config_surface.py shows). The TLS modules use it for all their tests:
    pytestmark = pytest.mark.usefixtures("tls_built")."""
    r = meshlet("version")
    features = next((x for x in r.stdout.splitlines() if x.startswith("features:")), "")
    if " tls" not in features:
        pytest.skip("this build has no data-plane TLS (ML_TLS off)")


# ---- scratch space and ports ----------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path):
    """A fresh directory for the test's files (outside the repository)."""
    return tmp_path


_ports_given = set()


@pytest.fixture
def free_port():
    """free_port() → a loopback TCP port nothing listens on now and no other call returned."""

    def get():
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return port
        raise RuntimeError("no free loopback port")

    return get


# ---- a running meshlet ----------------------------------------------------------------------

class Meshlet:
    """One `meshlet -c FILE` process; stderr and stdout are read by threads as they come."""

    def __init__(self, argv, config_path, cwd):
        self.argv = argv
        self.config_path = config_path
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lines = {"stdout": [], "stderr": []}
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "stderr"), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, pipe, name):
        for raw in iter(pipe.readline, b""):
            with self._cond:
                self._lines[name].append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def stderr(self):
        with self._cond:
            return "\n".join(self._lines["stderr"])

    @property
    def stdout(self):
        with self._cond:
            return "\n".join(self._lines["stdout"])

    @property
    def returncode(self):
        return self.proc.poll()

    def alive(self):
        return self.proc.poll() is None

    def wait_for_stderr(self, text, timeout=10):
        """True once a stderr line contains text; False if the process exits or time runs out
        first."""
        deadline = time.monotonic() + scaled(timeout)
        with self._cond:
            while True:
                if any(text in line for line in self._lines["stderr"]):
                    return True
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._readers):
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))

    def wait(self, timeout=10):
        """The exit code, waiting at most timeout seconds (then subprocess.TimeoutExpired).
        Also waits (bounded) for the output readers to drain the pipes."""
        rc = self.proc.wait(timeout=scaled(timeout))
        for t in self._readers:
            t.join(timeout=scaled(2))
        return rc

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if SANITIZE and self.proc.poll() is None:
            # SIGINT ends meshlet without a drain; the exit runs the leak check (its report goes
            # to ASAN_OPTIONS' log_path, which tests/run.sh checks after the suite).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=scaled(5))
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=scaled(5))
        except subprocess.TimeoutExpired:
            pass
        for t in self._readers:
            t.join(timeout=1)
        for pipe in (self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass


def _with_node_defaults(text, state_dir, admin_port):
    """text with state_dir (and admin, on a port of its own) in [node] unless it sets them, so
    tests never touch /var/lib/meshlet or fight over 127.0.0.1:15000."""
    lines = text.splitlines()
    node_at = None
    keys = set()
    section = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("["):
            section = s.strip("[]").split()[0] if s.strip("[]").split() else ""
            if section == "node" and node_at is None:
                node_at = i
        elif section == "node" and "=" in s and not s.startswith((";", "#")):
            keys.add(s.split("=", 1)[0].strip())
    extra = []
    if "state_dir" not in keys:
        extra.append(f"state_dir = {state_dir}")
    if "admin" not in keys:
        extra.append(f"admin = 127.0.0.1:{admin_port}")
    if node_at is None:
        lines = ["[node]", *extra, "", *lines]
    else:
        lines[node_at + 1:node_at + 1] = extra
    return "\n".join(lines) + "\n"


@pytest.fixture
def backends():
    """backends(name, **kw) → a started grpc_peers.Backend; all are stopped at teardown."""
    from grpc_peers import Backend  # grpcio only for the tests that use it
    started = []

    def start(name, **kw):
        b = Backend(name, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def run_meshlet(meshlet_cmd, workdir, free_port):
    """run_meshlet(config_text, *args, wait=True, timeout=10, defaults=True) → Meshlet.

    Writes config_text to a file in the test's directory (with state_dir in that directory and
    admin on a free port unless the text sets them; defaults=False writes it as it is) and
    starts `meshlet -c FILE *args`. With wait, returns once meshlet logs that it is running (a
    stderr line containing "running") or exits, whichever comes first, at most timeout seconds.
    config_text None: no file, `-c` is not given (args say everything). Every process started is
    killed at teardown."""
    started = []
    counter = [0]

    def start(config_text, *args, wait=True, timeout=10, defaults=True):
        argv = list(meshlet_cmd)
        path = None
        if config_text is not None:
            counter[0] += 1
            path = workdir / f"meshlet-{counter[0]}.ini"
            if defaults:
                config_text = _with_node_defaults(config_text, workdir / "state", free_port())
            path.write_text(config_text)
            argv += ["-c", str(path)]
        argv += [str(a) for a in args]
        m = Meshlet(argv, path, workdir)
        started.append(m)
        if wait:
            m.wait_for_stderr("running", timeout=timeout)
        return m

    yield start
    for m in started:
        m.kill()
