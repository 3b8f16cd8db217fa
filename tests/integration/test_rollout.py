"""Staged rollouts, rollback, transient retries, labels and the controller's view of the fleet
(runtime/fleet/README.md, "Rollouts" and "Seeing the fleet"), end to end: `meshlet controller`
with 20 simulated nodes (sim_fleet.py: python3-websockets + protobuf) and 2 real meshlet nodes.
Every wait is bounded."""

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import scaled
from fleet_peers import content_version, fleet_pb2, fleet_section
from sim_fleet import SimFleet, SimNode

WAIT = scaled(20)
SIMS = 20
# Sims sort before the real nodes ("n00" < "zr-1"): the first stage is always n00.
REAL = ("zr-1", "zr-2")
ARGS = ("--stages", "1,10%,100%", "--soak", "1s", "--stale", "5s")


def v(text):
    return content_version(text)


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def fleet(port, query=""):
    status, body = get(port, "/fleet" + query)
    assert status == 200, body
    return json.loads(body)


def wait_until(check, timeout=WAIT, what=""):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def running(port):
    return {n["id"]: n["running_version"] for n in fleet(port)["nodes"] if n["connected"]}


def all_on(port, version, count=SIMS + len(REAL)):
    r = running(port)
    return len(r) == count and all(x == version for x in r.values())


def rollout_of(port, name="default.ini"):
    return next((r for r in fleet(port)["rollouts"] if r["file"] == name), None)


def nack_bad(node, push):
    return "nack" if b"; bad" in push.ini else "ack"


@pytest.fixture
def setup(run_meshlet, meshlet_cmd, free_port, workdir):
    """setup(answer=..., state=True) → (port, configs, sims, start_controller, reals)."""
    made = []

    def start(answer=nack_bad, real=True, v1="; rollout v1\n"):
        port = free_port()
        configs = workdir / "configs"
        configs.mkdir(exist_ok=True)
        state = workdir / "controller-state"
        (configs / "default.ini").write_text(v1)

        def controller():
            m = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs",
                            configs, "--state", state, *ARGS)
            assert m.alive(), m.stderr
            return m

        ctl = controller()
        pb = fleet_pb2()
        labels = lambda i: [f"ring={'canary' if i < 2 else 'main'}", "kind=sim"]
        sims = SimFleet(f"ws://127.0.0.1:{port}/",
                        [SimNode(pb, f"n{i:02d}", labels(i), answer=answer)
                         for i in range(SIMS)]).start()
        made.append(sims)
        reals = []
        if real:
            for i, rid in enumerate(REAL):
                text = (f"[node]\nid = {rid}\nlabels = kind=real, ring={'canary' if i == 0 else 'main'}"
                        f"\nstate_dir = {workdir / ('state-' + rid)}\n\n" +
                        fleet_section(port, backoff="100ms..500ms", report_interval="1s"))
                reals.append(run_meshlet(text))
        count = SIMS + len(reals)
        wait_until(lambda: all_on(port, v(v1), count), what="every node on v1")
        return port, configs, sims, controller, ctl, reals

    yield start
    for s in made:
        s.stop()


def test_labels_travel_in_hello_and_filter_fleet(setup, meshlet_cmd):
    port, configs, sims, _, _, reals = setup()
    zr1 = next(n for n in fleet(port)["nodes"] if n["id"] == "zr-1")
    assert zr1["labels"] == ["kind=real", "ring=canary"]
    assert zr1["state"] == "SYNCED" and zr1["desired_version"] == zr1["running_version"]
    assert zr1["last_seen_s"] >= zr1["connected_since_s"] > 0
    canary = fleet(port, "?label=ring=canary")["nodes"]
    assert sorted(n["id"] for n in canary) == ["n00", "n01", "zr-1"]
    assert len(fleet(port, "?state=synced")["nodes"]) == SIMS + 2
    assert fleet(port, "?state=nacked")["nodes"] == []
    assert get(port, "/fleet?state=weird")[0] == 400
    assert get(port, "/fleet?label=no/slash")[0] == 400

    # A label file serves the nodes with that label (and no others).
    canary_ini = "; canary only\n"
    (configs / "label=ring=canary.ini").write_text(canary_ini)
    wait_until(lambda: all(running(port)[i] == v(canary_ini) for i in ("n00", "n01", "zr-1")),
               what="canary nodes on their label file")
    assert running(port)["n05"] == v("; rollout v1\n")
    assert reals[0].wait_for_stderr(f"applied version {v(canary_ini)} (push)", timeout=10)

    # `meshlet fleet status` prints one line per node, like istioctl proxy-status.
    out = subprocess.run([*meshlet_cmd, "fleet", "status", "--controller",
                          f"http://127.0.0.1:{port}", "--label", "kind=real"],
                         capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["NODE", "STATE", "RUNNING", "DESIRED"]
    assert [l.split()[0] for l in lines[1:3]] == ["zr-1", "zr-2"]
    assert all(l.split()[1] == "SYNCED" for l in lines[1:3])
    bad = subprocess.run([*meshlet_cmd, "fleet", "status", "--controller", "ftp://x"],
                         capture_output=True, text=True, timeout=WAIT)
    assert bad.returncode == 64 and "expected http://" in bad.stderr

    # A node that leaves is OFFLINE.
    reals[1].send_signal(signal.SIGTERM)
    wait_until(lambda: fleet(port, "?state=offline")["nodes"], what="zr-2 offline")
    assert [n["id"] for n in fleet(port, "?state=offline")["nodes"]] == ["zr-2"]
    status, metrics = get(port, "/metrics")
    assert status == 200
    assert 'meshlet_controller_nodes{state="offline"} 1' in metrics
    assert "meshlet_controller_acks_total" in metrics


def test_bad_version_halts_at_the_first_stage_with_the_others_untouched(setup, meshlet_cmd):
    port, configs, sims, _, _, reals = setup()
    v1 = v("; rollout v1\n")
    bad = "; rollout v2\n; bad\n"
    (configs / "default.ini").write_text(bad)
    wait_until(lambda: (rollout_of(port) or {}).get("state") == "halted", what="a halt")
    ro = rollout_of(port)
    assert ro["stage"] == 1 and ro["target"] == v(bad) and ro["stable"] == v1
    assert "n00 nacked version" in ro["halt"] and "sim:1: n00 refuses" in ro["halt"]
    time.sleep(2)  # nothing else may move
    for s in sims.nodes:
        pushed = [p[0] for p in s.pushes]
        assert pushed.count(v(bad)) == (1 if s.id == "n00" else 0), (s.id, pushed)
    assert all(x == v1 for x in running(port).values())
    assert [n["id"] for n in fleet(port, "?state=nacked")["nodes"]] == ["n00"]
    out = subprocess.run([*meshlet_cmd, "fleet", "status", "--controller",
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                         timeout=WAIT)
    assert "HALTED at stage 1/3" in out.stdout and "sim:1: n00 refuses" in out.stdout
    status, metrics = get(port, "/metrics")
    assert 'meshlet_controller_rollout_halted{file="default.ini",version="%s"} 1' % v(bad) \
        in metrics


def test_a_node_that_stops_reporting_halts_the_rollout(setup):
    def mute_on_quiet(node, push):
        if b"; quiet" in push.ini:
            node.mute = True  # acks, then says nothing more (still connected)
        return "ack"

    port, configs, sims, _, _, _ = setup(answer=mute_on_quiet, real=False)
    v1 = v("; rollout v1\n")
    quiet = "; rollout v2\n; quiet\n"
    (configs / "default.ini").write_text(quiet)
    wait_until(lambda: (rollout_of(port) or {}).get("state") == "halted", what="a halt")
    ro = rollout_of(port)
    assert ro["stage"] == 1 and "node n00 stopped reporting" in ro["halt"], ro
    assert [s.id for s in sims.nodes if any(p[0] == v(quiet) for p in s.pushes)] == ["n00"]
    assert sum(1 for x in running(port).values() if x == v1) == SIMS - 1


def test_a_node_unhealthy_on_the_new_version_halts_the_rollout(setup):
    def sick_on_v2(node, push):
        if b"; sick" in push.ini:
            node.endpoints = (0, 2)  # applied, but no endpoint answers its health checks
        return "ack"

    port, configs, sims, _, _, _ = setup(answer=sick_on_v2, real=False)
    sick = "; rollout v2\n; sick\n"
    (configs / "default.ini").write_text(sick)
    wait_until(lambda: (rollout_of(port) or {}).get("state") == "halted", what="a halt")
    ro = rollout_of(port)
    assert ro["stage"] == 1 and "node n00 runs it unhealthy: 0 of 2 endpoints" in ro["halt"], ro
    assert [s.id for s in sims.nodes if any(p[0] == v(sick) for p in s.pushes)] == ["n00"]


def test_rollout_goes_in_stages_and_rollback_restores_the_previous_version(setup, meshlet_cmd):
    port, configs, sims, _, _, reals = setup()
    v1, v2 = v("; rollout v1\n"), v("; rollout v2\n")
    (configs / "default.ini").write_text("; rollout v2\n")
    wait_until(lambda: all_on(port, v2), what="v2 everywhere")
    wait_until(lambda: rollout_of(port)["state"] == "none", what="the rollout to finish")
    ro = rollout_of(port)
    assert ro["stable"] == v2 and ro["previous"] == v1
    # Stages: n00 first, then n01 and n02 (10 % of 22 = 3), then the rest, each after a soak.
    t = {s.id: s.first_ack_at[v2] for s in sims.nodes}
    assert t["n00"] < t["n01"] and t["n00"] < t["n02"]
    assert max(t["n01"], t["n02"]) < min(t[f"n{i:02d}"] for i in range(3, SIMS))
    assert t["n01"] - t["n00"] >= 0.9 and t["n03"] - t["n01"] >= 0.9  # --soak 1s

    out = subprocess.run([*meshlet_cmd, "fleet", "rollback", "--controller",
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                         timeout=WAIT)
    assert out.returncode == 0, out.stderr
    assert f"default.ini: {v2} rolled back to {v1}" in out.stdout
    wait_until(lambda: all_on(port, v1), what="v1 everywhere again")
    for m in reals:
        assert m.wait_for_stderr(f"applied version {v1} (push)", timeout=10)
    # Nothing more to roll back: said so, 409.
    again = subprocess.run([*meshlet_cmd, "fleet", "rollback", "--controller",
                            f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                           timeout=WAIT)
    assert again.returncode == 1 and "nothing to roll back" in again.stderr
    # The rolled-back version is not rolled out again while the file stays as it is.
    time.sleep(1.5)
    assert all_on(port, v1)


def test_transient_nack_is_retried_with_backoff_then_acked(setup, workdir, free_port):
    """A real node whose listener's port is held by another process nacks with
    transient = true; the controller pushes the same version again after a backoff and, once
    the port is free, the node applies it."""
    port, configs, sims, _, _, reals = setup()
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    busy = held.getsockname()[1]
    ini = (f"[listener main]\nbind = 127.0.0.1:{busy}\n\n[cluster c]\nendpoint = 127.0.0.1:1\n\n"
           "[route r]\nlistener = main\nprefix = /\nto = c\n")
    (configs / "zr-1.ini").write_text(ini)
    try:
        wait_until(lambda: (next(n for n in fleet(port)["nodes"] if n["id"] == "zr-1")
                            ["last_nack"] or {}).get("transient"), what="a transient Nack")
        zr1 = next(n for n in fleet(port)["nodes"] if n["id"] == "zr-1")
        assert zr1["state"] == "STALE"  # not NACKED: it will be tried again
        assert "bind" in zr1["last_nack"]["error"] or "in use" in zr1["last_nack"]["error"]
        wait_until(lambda: reals[0].stderr.count(f"apply (push of version {v(ini)}) refused")
                   >= 2, what="a second try")
    finally:
        held.close()
    wait_until(lambda: running(port)["zr-1"] == v(ini), what="the retry to be acked")
    _, metrics = get(port, "/metrics")
    assert "meshlet_controller_push_retries_total 0" not in metrics
    # A config error is not retried: n00 in the halt test answers its one push of it.


def test_transient_nacks_in_a_rollout_are_retried_with_backoff_and_do_not_halt_it(setup):
    tries = []

    def flaky(node, push):
        if node.id == "n00" and b"v2" in push.ini and len(tries) < 2:
            tries.append(time.monotonic())
            return "transient"
        if node.id == "n00" and b"v2" in push.ini:
            tries.append(time.monotonic())
        return "ack"

    port, configs, sims, _, _, _ = setup(answer=flaky, real=False)
    v2 = v("; rollout v2\n")
    (configs / "default.ini").write_text("; rollout v2\n")
    wait_until(lambda: all_on(port, v2, SIMS), what="v2 everywhere")
    assert len(tries) == 3
    # backoff: 1 s, then 2 s (the poll adds up to 500 ms)
    assert 0.9 <= tries[1] - tries[0] <= 3 and 1.9 <= tries[2] - tries[1] <= 4, tries
    assert rollout_of(port)["halt"] == ""
    _, metrics = get(port, "/metrics")
    assert "meshlet_controller_nacks_transient_total 2" in metrics
    assert "meshlet_controller_push_retries_total 2" in metrics


def test_a_failed_save_is_a_transient_nack_retried_until_it_works(setup, workdir):
    """zr-1's state_dir disappears under it: the save of a push fails, the node nacks with
    transient = true and keeps running what it ran; once the directory is back, the retry is
    applied and saved."""
    port, configs, sims, _, _, reals = setup()
    state = workdir / "state-zr-1"
    shutil.rmtree(state)
    ini = "; zr-1 own file\n"
    (configs / "zr-1.ini").write_text(ini)
    wait_until(lambda: (next(n for n in fleet(port)["nodes"] if n["id"] == "zr-1")
                        ["last_nack"] or {}).get("transient"), what="a transient Nack")
    nack = next(n for n in fleet(port)["nodes"] if n["id"] == "zr-1")["last_nack"]
    assert "cannot save the config" in nack["error"], nack
    assert running(port)["zr-1"] == v("; rollout v1\n")
    state.mkdir(mode=0o700)
    wait_until(lambda: running(port)["zr-1"] == v(ini), what="the retry to be applied")
    assert (state / "config.state").exists()


def test_state_survives_a_controller_restart(setup, meshlet_cmd):
    port, configs, sims, controller, ctl, reals = setup(real=False)
    v1, v2 = v("; rollout v1\n"), v("; rollout v2\n")
    (configs / "default.ini").write_text("; rollout v2\n")
    wait_until(lambda: all_on(port, v2, SIMS), what="v2 everywhere")
    wait_until(lambda: rollout_of(port)["state"] == "none", what="the rollout to finish")
    bad = "; rollout v3\n; bad\n"
    (configs / "default.ini").write_text(bad)
    wait_until(lambda: rollout_of(port)["state"] == "halted", what="a halt")

    ctl.send_signal(signal.SIGTERM)
    assert ctl.wait(timeout=10) == 0
    pushes_before = {s.id: len(s.pushes) for s in sims.nodes}
    ctl2 = controller()
    wait_until(lambda: len(running(port)) == SIMS, what="the sims back")
    ro = rollout_of(port)
    assert ro["state"] == "halted" and ro["target"] == v(bad)
    assert ro["stable"] == v2 and ro["previous"] == v1
    assert "n00 nacked version" in ro["halt"]
    n00 = next(n for n in fleet(port)["nodes"] if n["id"] == "n00")
    assert n00["state"] == "NACKED" and n00["last_nack"]["version"] == v(bad)
    time.sleep(1.5)
    assert {s.id: len(s.pushes) for s in sims.nodes} == pushes_before  # nothing pushed again
    assert all_on(port, v2, SIMS)
    # Rollback after the restart: the halted v3 is abandoned; a second one goes back to v1,
    # whose bytes came back from the state directory (the file on disk holds v3).
    status, body = get(port, "/rollback")
    assert status == 405 or status == 404
    req = urllib.request.Request(f"http://127.0.0.1:{port}/rollback", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=WAIT) as r:
        assert r.status == 200
    with urllib.request.urlopen(req, timeout=WAIT) as r:
        assert r.status == 200 and f"rolled back to {v1}" in r.read().decode()
    wait_until(lambda: all_on(port, v1, SIMS), what="v1 everywhere")
