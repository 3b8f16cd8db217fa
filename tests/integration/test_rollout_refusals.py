"""What `meshlet controller`'s rollout options, its --state directory, the `meshlet fleet` CLI
and a Hello's labels refuse, and how (runtime/fleet/README.md, "Rollouts"): a clear reason,
nothing started or changed. Every wait is bounded."""

import asyncio
import json
import os
import subprocess
import urllib.request

import pytest
import websockets

from conftest import scaled
from fleet_peers import fleet_pb2, make_ca, make_leaf

WAIT = scaled(10)


@pytest.fixture
def configs(workdir):
    d = workdir / "configs"
    d.mkdir()
    (d / "default.ini").write_text("; v1\n")
    return d


@pytest.mark.parametrize("args, why", [
    (("--stages", "0"), "--stages 0: expected up to 8 counts or percents"),
    (("--stages", "1,150%"), "--stages 1,150%: expected"),
    (("--stages", "1,2,3,4,5,6,7,8,9"), "expected up to 8"),
    (("--stages", "1,,2"), "--stages 1,,2: expected"),
    (("--soak", "5x"), "--soak 5x: expected 1ms..1h"),
    (("--stale", "0s"), "--stale 0s: expected 1ms..1h"),
    (("--soak", "2h"), "--soak 2h: expected 1ms..1h"),
])
def test_bad_rollout_options_are_refused(run_meshlet, free_port, configs, args, why):
    m = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{free_port()}", "--configs",
                    configs, *args)
    assert m.wait(timeout=WAIT) == 64  # EX_USAGE, as every usage error
    assert why in m.stderr, m.stderr


def test_a_state_dir_others_may_write_is_refused(run_meshlet, free_port, configs, workdir):
    state = workdir / "state"
    state.mkdir()
    os.chmod(state, 0o777)
    m = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{free_port()}", "--configs",
                    configs, "--state", state)
    assert m.wait(timeout=WAIT) == 3
    assert "--state" in m.stderr and "writable by group or others" in m.stderr, m.stderr


def test_a_garbled_state_is_logged_and_the_controller_starts_without_it(run_meshlet, free_port,
                                                                        configs, workdir):
    state = workdir / "state"
    (state / "index").mkdir(parents=True, mode=0o700)
    os.chmod(state, 0o700)
    (state / "index" / "config.state").write_text("not a state\n")
    port = free_port()
    m = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs", configs,
                    "--state", state)
    assert m.alive(), m.stderr
    assert m.wait_for_stderr("cannot be used", timeout=WAIT)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/fleet", timeout=WAIT) as r:
        body = json.loads(r.read())
    assert body["nodes"] == [] and body["rollouts"][0]["state"] == "none"
    # the next save replaces it with a good one
    assert m.wait_for_stderr("first, stable at once", timeout=WAIT)


def test_fleet_cli_refuses_bad_arguments_and_says_when_unreachable(meshlet_cmd, free_port):
    def run(*args):
        return subprocess.run([*meshlet_cmd, "fleet", *args], capture_output=True, text=True,
                              timeout=WAIT)

    r = run("status")
    assert r.returncode == 64 and "--controller is required" in r.stderr
    r = run("launch", "--controller", "http://127.0.0.1:1")
    assert r.returncode == 64 and 'unknown command "launch"' in r.stderr
    r = run("status", "--controller", "http://127.0.0.1:1", "--label", "a b")
    assert r.returncode == 64 and "[A-Za-z0-9._=-] only" in r.stderr
    r = run("rollback", "--controller", "https://127.0.0.1:1")
    assert r.returncode == 64 and "https:// needs --ca" in r.stderr
    r = run("rollback", "--controller", "ftp://127.0.0.1:1")
    assert r.returncode == 64 and "expected http://" in r.stderr
    r = run("status", "--controller", "https://127.0.0.1:1", "--ca", "x", "--cert", "y")
    assert r.returncode == 64 and "--cert and --key go together" in r.stderr
    r = run("status", "--controller", f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 3 and "cannot reach" in r.stderr


@pytest.mark.parametrize("label", ["ring", "ring=", "=x", "ring=../../etc", "a b=c", "k=" + "v" * 32])
def test_a_hello_with_a_label_outside_the_rule_is_closed(run_meshlet, free_port, configs, label):
    port = free_port()
    m = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs", configs)
    assert m.alive(), m.stderr
    pb = fleet_pb2()

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{port}/",
                                      subprotocols=["meshlet.fleet.v1"]) as ws:
            hello = pb.Hello(node_id="n1", board="b", version="v", labels=["ok=1", label])
            await ws.send(pb.Envelope(hello=hello).SerializeToString())
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT)
            return ws.close_code

    assert asyncio.run(go()) == 1008
    assert m.wait_for_stderr("refused: expected KEY=VALUE", timeout=WAIT)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/fleet", timeout=WAIT) as r:
        assert json.loads(r.read())["nodes"] == []


def test_fleet_status_over_mutual_tls(run_meshlet, meshlet_cmd, free_port, configs, workdir):
    """A controller with --cert/--key/--ca: the CLI checks its certificate against --ca and
    shows its own (--cert/--key); without one, or against another CA, it cannot get in."""
    pki = workdir / "pki"
    pki.mkdir()
    make_ca(pki, "ca")
    make_ca(pki, "other")
    make_leaf(pki, "controller", "ca", "subjectAltName=IP:127.0.0.1")
    make_leaf(pki, "ops", "ca", "extendedKeyUsage=clientAuth")
    port = free_port()
    m = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs", configs,
                    "--cert", pki / "controller.crt", "--key", pki / "controller.key", "--ca",
                    pki / "ca.crt")
    assert m.alive(), m.stderr
    url = f"https://127.0.0.1:{port}"

    def run(*args):
        return subprocess.run([*meshlet_cmd, "fleet", *args], capture_output=True, text=True,
                              timeout=WAIT)

    r = run("status", "--controller", url, "--ca", str(pki / "ca.crt"), "--cert",
            str(pki / "ops.crt"), "--key", str(pki / "ops.key"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:4] == ["NODE", "STATE", "RUNNING", "DESIRED"]
    r = run("rollback", "--controller", url, "--ca", str(pki / "ca.crt"), "--cert",
            str(pki / "ops.crt"), "--key", str(pki / "ops.key"))
    assert r.returncode == 1 and "nothing to roll back" in r.stderr
    r = run("status", "--controller", url, "--ca", str(pki / "ca.crt"))
    assert r.returncode == 3, (r.stdout, r.stderr)
    r = run("status", "--controller", url, "--ca", str(pki / "other.crt"), "--cert",
            str(pki / "ops.crt"), "--key", str(pki / "ops.key"))
    assert r.returncode == 3 and "certificate" in r.stderr, r.stderr
