"""A minimal build (cmake -DML_MINIMAL=ON: boards/minimal.conf, the proxy only) serves gRPC calls
balanced per call, lists only what it has in `meshlet version`, and refuses the keys of what
Kconfig left out, naming the symbol. Runs only when $ML_MESHLET_MINIMAL is the absolute path of
such a binary (the rest of the suite runs against $ML_MESHLET, the full build):

    cmake -S . -B build/host-min -G Ninja -DML_BOARD=host -DML_MINIMAL=ON
    cmake --build build/host-min -j2
    ML_MESHLET_MINIMAL=$PWD/build/host-min/meshlet /usr/bin/python3 -m pytest -q \\
        -p no:cacheprovider tests/integration/test_minimal_build.py
"""

import os
import signal
import subprocess
from pathlib import Path

import grpc
import pytest

from conftest import Meshlet, meshlet_command, scaled
from grpc_peers import channel, unary

CALL_TIMEOUT = scaled(10)
LEFT_OUT = {"admin", "fleet", "fleet-mqtt", "controller"}


@pytest.fixture(scope="module")
def minimal_cmd():
    path = os.environ.get("ML_MESHLET_MINIMAL")
    if not path:
        pytest.skip("ML_MESHLET_MINIMAL is not set (a -DML_MINIMAL=ON build of meshlet)")
    path = Path(path)
    assert path.is_absolute(), f"ML_MESHLET_MINIMAL must be an absolute path, got {path}"
    assert path.is_file() and os.access(path, os.X_OK), f"no meshlet binary at {path}"
    return meshlet_command(path, own_build=True)


def run(cmd, workdir, *args):
    return subprocess.run([*cmd, *map(str, args)], cwd=workdir, capture_output=True, text=True,
                          errors="replace", timeout=scaled(10), stdin=subprocess.DEVNULL)


def features(cmd, workdir):
    r = run(cmd, workdir, "version")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("features:"))
    return set(line.split(":", 1)[1].split())


def test_minimal_version_lists_only_what_is_compiled_in(minimal_cmd, workdir):
    have = features(minimal_cmd, workdir)
    assert not have & LEFT_OUT, f"listed but compiled out: {sorted(have & LEFT_OUT)}"
    assert {"lb.round_robin", "authz"} <= have, have


def test_minimal_check_refuses_fleet_and_admin_naming_the_kconfig_symbol(minimal_cmd, workdir):
    path = workdir / "asks.ini"
    path.write_text("[node]\nadmin = 127.0.0.1:15000\n\n"
                    "[fleet]\nurl = ws://127.0.0.1:9/fleet\ninsecure = on\n\n"
                    "[listener ingress]\nbind = 127.0.0.1:15001\n\n"
                    "[route all]\nlistener = ingress\nto = backend\n\n"
                    "[cluster backend]\nendpoint = 127.0.0.1:50051\n")
    r = run(minimal_cmd, workdir, "check", path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{path}:2: [node] admin: expected no admin key" in r.stderr, r.stderr
    assert "(CONFIG_ML_ADMIN is off)" in r.stderr, r.stderr
    assert f"{path}:4: [fleet]: expected no [fleet] section" in r.stderr, r.stderr
    assert "(CONFIG_ML_FLEET is off)" in r.stderr, r.stderr


def test_minimal_controller_command_names_its_kconfig_symbol(minimal_cmd, workdir):
    for command in ("controller", "fleet"):
        r = run(minimal_cmd, workdir, command, "status")
        assert r.returncode == 64, r.stdout + r.stderr
        assert "not in this build (CONFIG_ML_CONTROLLER is off)" in r.stderr, r.stderr


def test_minimal_build_serves_grpc_calls_balanced_per_call(minimal_cmd, workdir, backends,
                                                           free_port):
    b1, b2 = backends("b1"), backends("b2")
    port = free_port()
    path = workdir / "minimal.ini"
    # no admin key: the build has no admin endpoint (its default is not a listener here)
    path.write_text(f"[node]\nstate_dir = {workdir / 'state'}\n\n"
                    f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
                    "[route all]\nlistener = ingress\nto = backend\n\n"
                    f"[cluster backend]\nendpoint = 127.0.0.1:{b1.port}\n"
                    f"endpoint = 127.0.0.1:{b2.port}\nlb = round_robin\n")
    m = Meshlet([*minimal_cmd, "-c", str(path)], path, workdir)
    try:
        assert m.wait_for_stderr("listening on", timeout=10), m.stderr
        seen = []
        with channel(port) as ch:
            for _ in range(4):
                resp, call = unary(ch, "Say").with_call(b"hi", timeout=CALL_TIMEOUT)
                assert call.code() == grpc.StatusCode.OK
                seen.append(resp.split(b":", 1)[0])
        # one connection, calls spread over both hosts: balanced per call, not per connection
        assert set(seen) == {b"b1", b"b2"}, seen
        m.send_signal(signal.SIGTERM)
        assert m.wait(timeout=10) == 0, m.stderr
    finally:
        m.kill()
