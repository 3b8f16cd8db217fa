"""[node] workers = N, end to end with real grpcio peers: N event loops, each with its own
listeners (SO_REUSEPORT: the kernel spreads new connections), pools and counters, sharing only the
config. The admin endpoint sums them and shows each worker's share; a hot apply (SIGHUP, POST
/config) reaches every worker before it is answered; SIGTERM drains every worker; workers = 1 is
the node as it always was; `meshlet check` bounds the key; a push may not change it."""

import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import pytest

from conftest import scaled
from grpc_peers import method, ident

CALL_TIMEOUT = scaled(10)
# Connections opened to see both workers take some: with the kernel's hash over the 4-tuple,
# all of them landing on one of two workers has odds 2^-(N-1).
SPREAD_CONNECTIONS = 24


def head(workdir, admin_port, workers, state="state"):
    return (f"[node]\nstate_dir = {workdir / state}\nadmin = 127.0.0.1:{admin_port}\n"
            f"workers = {workers}\n\n")


def body(port, backend_port, route="all"):
    return (f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
            f"[route {route}]\nlistener = ingress\nto = c\n\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{backend_port}\n")


def own_channel(port):
    """A channel with a connection of its own (grpcio shares subchannels between channels of
    one process otherwise)."""
    return grpc.insecure_channel(f"127.0.0.1:{port}",
                                 options=[("grpc.use_local_subchannel_pool", 1)])


def call(ch, name, payload, timeout=CALL_TIMEOUT):
    return ch.unary_unary(method(name), request_serializer=ident,
                          response_deserializer=ident)(payload, timeout=timeout)


def get(admin_port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}{path}",
                                timeout=CALL_TIMEOUT) as r:
        return r.read().decode()


def stats(admin_port):
    return dict(line.rsplit(" ", 1) for line in get(admin_port, "/stats").splitlines() if line)


def settle_calls(admin_port, want):
    """Waits (bounded) until /stats counts want calls ended: a call is counted as it ends, which
    may be just after its answer reached the client."""
    deadline = time.monotonic() + scaled(5)
    while (stats(admin_port)["calls.rq_total"] != str(want) and
           time.monotonic() < deadline):
        time.sleep(0.02)


def worker_metric(admin_port, name):
    """{worker: value} of meshlet_worker_NAME in /stats/prometheus."""
    text = get(admin_port, "/stats/prometheus")
    return {int(w): int(v) for w, v in
            re.findall(rf'^meshlet_worker_{name}{{worker="(\d+)"}} (\d+)$', text, re.M)}


def start(run_meshlet, text):
    m = run_meshlet(text, defaults=False)
    assert m.alive(), f"meshlet exited {m.returncode}:\n{m.stderr}"
    assert m.wait_for_stderr("running", timeout=5), m.stderr
    return m


def stop(m):
    m.send_signal(signal.SIGTERM)
    rc = m.wait(timeout=15)
    assert rc == 0, f"meshlet exited {rc} on SIGTERM:\n{m.stderr[-4000:]}"


def spread_calls(port, n, name="Say", payload=b"x"):
    """One call on each of n connections of their own; their answers."""
    out = []
    for _ in range(n):
        with own_channel(port) as ch:
            out.append(call(ch, name, payload))
    return out


def test_two_workers_spread_connections_and_sum_stats(run_meshlet, backends, workdir, free_port):
    a = backends("a", workers=2 * SPREAD_CONNECTIONS)
    port, admin = free_port(), free_port()
    m = start(run_meshlet, head(workdir, admin, 2) + body(port, a.port))
    assert spread_calls(port, SPREAD_CONNECTIONS) == [b"a:x"] * SPREAD_CONNECTIONS
    settle_calls(admin, SPREAD_CONNECTIONS)
    per_worker = worker_metric(admin, "downstream_cx_total")
    assert set(per_worker) == {0, 1}, per_worker
    assert per_worker[0] > 0 and per_worker[1] > 0, per_worker  # both took connections
    assert sum(per_worker.values()) == SPREAD_CONNECTIONS
    calls = worker_metric(admin, "calls_total")
    assert sum(calls.values()) == SPREAD_CONNECTIONS and min(calls.values()) > 0, calls
    # the sums: each call counted once, wherever it ran
    st = stats(admin)
    assert st["calls.rq_total"] == str(SPREAD_CONNECTIONS)
    assert st["listener.ingress.downstream_cx_accepted"] == str(SPREAD_CONNECTIONS)
    assert st["route.all.rq_total"] == str(SPREAD_CONNECTIONS)
    assert st["cluster.c.upstream_rq_total"] == str(SPREAD_CONNECTIONS)
    assert st["worker.0.calls_total"] != "0" and st["worker.1.calls_total"] != "0"
    assert a.calls == SPREAD_CONNECTIONS
    # /stats.json and /clusters sum the same calls
    assert json.loads(get(admin, "/stats.json"))["calls"]["total"] == SPREAD_CONNECTIONS
    clusters = get(admin, "/clusters")
    assert re.search(rf"127\.0\.0\.1:{a.port} .* calls {SPREAD_CONNECTIONS} ", clusters), clusters
    assert json.loads(get(admin, "/server_info"))["workers"] == 2
    # each worker bound the listener itself; its lines say which worker
    assert f"worker 1: listener ingress: listening on 127.0.0.1:{port}" in m.stderr
    stop(m)


def test_hot_apply_reaches_every_worker_without_dropping_calls_in_flight(
        run_meshlet, backends, workdir, free_port):
    a, b = backends("a", workers=2 * SPREAD_CONNECTIONS), backends("b", workers=2 * SPREAD_CONNECTIONS)
    port, admin = free_port(), free_port()
    top = head(workdir, admin, 2)
    m = start(run_meshlet, top + body(port, a.port))
    chans = [own_channel(port) for _ in range(SPREAD_CONNECTIONS)]
    try:
        # a call in flight on every connection (so on both workers) across the apply
        sleeping = [ch.unary_unary(method("Sleep"), request_serializer=ident,
                                   response_deserializer=ident).future(b"1.0",
                                                                       timeout=CALL_TIMEOUT)
                    for ch in chans]
        deadline = time.monotonic() + scaled(5)
        while a.calls < SPREAD_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.01)
        active = worker_metric(admin, "downstream_cx_active")
        assert min(active.values()) > 0, active  # both workers hold calls in flight

        # SIGHUP: every worker routes to b once the log says applied
        m.config_path.write_text(top + body(port, b.port))
        m.send_signal(signal.SIGHUP)
        assert m.wait_for_stderr("applied version", timeout=10), m.stderr[-3000:]
        assert [call(ch, "Say", b"x") for ch in chans] == [b"b:x"] * len(chans)

        # POST /config: answered 200 only once every worker switched back to a
        req = urllib.request.Request(f"http://127.0.0.1:{admin}/config", method="POST",
                                     data=body(port, a.port).encode())
        with urllib.request.urlopen(req, timeout=CALL_TIMEOUT) as r:
            assert r.status == 200
        assert [call(ch, "Say", b"y") for ch in chans] == [b"a:y"] * len(chans)

        # the calls that started on the first config finished there, none dropped
        assert [f.result(timeout=CALL_TIMEOUT) for f in sleeping] == [b"slept"] * len(chans)
    finally:
        for ch in chans:
            ch.close()
    settle_calls(admin, 3 * SPREAD_CONNECTIONS)
    st = stats(admin)
    assert st["calls.rq_total"] == str(3 * SPREAD_CONNECTIONS)
    stop(m)


def test_a_bind_that_fails_on_apply_is_refused_on_every_worker(run_meshlet, backends, workdir,
                                                              free_port):
    import socket
    a, b = backends("a", workers=2 * SPREAD_CONNECTIONS), backends("b", workers=2 * SPREAD_CONNECTIONS)
    port, taken, admin = free_port(), free_port(), free_port()
    top = head(workdir, admin, 2)
    m = start(run_meshlet, top + body(port, a.port))
    holder = socket.socket()
    holder.bind(("127.0.0.1", taken))
    holder.listen(1)
    try:
        text = body(port, b.port) + (f"\n[listener second]\nbind = 127.0.0.1:{taken}\n\n"
                                     "[route second]\nlistener = second\nto = c\n")
        req = urllib.request.Request(f"http://127.0.0.1:{admin}/config", method="POST",
                                     data=text.encode())
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=CALL_TIMEOUT)
        assert e.value.code == 400
    finally:
        holder.close()
    # nothing changed on any worker: every connection still goes to a
    assert spread_calls(port, SPREAD_CONNECTIONS) == [b"a:x"] * SPREAD_CONNECTIONS
    stop(m)


def test_sigterm_drains_every_worker(run_meshlet, backends, workdir, free_port):
    a = backends("a", workers=2 * SPREAD_CONNECTIONS)
    port, admin = free_port(), free_port()
    m = start(run_meshlet, head(workdir, admin, 2) + body(port, a.port))
    chans = [own_channel(port) for _ in range(SPREAD_CONNECTIONS)]
    try:
        sleeping = [ch.unary_unary(method("Sleep"), request_serializer=ident,
                                   response_deserializer=ident).future(b"1.0",
                                                                       timeout=CALL_TIMEOUT)
                    for ch in chans]
        deadline = time.monotonic() + scaled(5)
        while a.calls < SPREAD_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.01)
        active = worker_metric(admin, "downstream_cx_active")
        assert min(active.values()) > 0, active
        m.send_signal(signal.SIGTERM)
        # every call in flight, on either worker, finishes
        assert [f.result(timeout=CALL_TIMEOUT) for f in sleeping] == [b"slept"] * len(chans)
        assert m.wait(timeout=10) == 0, m.stderr[-3000:]
    finally:
        for ch in chans:
            ch.close()


def test_one_worker_shows_no_worker_rows(run_meshlet, backends, workdir, free_port):
    a = backends("a", workers=2 * SPREAD_CONNECTIONS)
    port, admin = free_port(), free_port()
    m = start(run_meshlet, head(workdir, admin, 1) + body(port, a.port))
    assert spread_calls(port, 3) == [b"a:x"] * 3
    settle_calls(admin, 3)
    assert "worker." not in get(admin, "/stats")
    assert "meshlet_worker_" not in get(admin, "/stats/prometheus")
    assert stats(admin)["calls.rq_total"] == "3"
    assert json.loads(get(admin, "/server_info"))["workers"] == 1
    # one worker binds as always: exclusively (a second bind of the port is refused)
    m2 = run_meshlet(head(workdir, free_port(), 1, state="state2") + body(port, a.port), defaults=False)
    assert m2.wait(timeout=10) == 3, m2.stderr
    stop(m)


def test_a_bind_that_fails_fails_the_start_with_workers(run_meshlet, backends, workdir,
                                                        free_port):
    import socket
    a = backends("a", workers=2 * SPREAD_CONNECTIONS)
    port, admin = free_port(), free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        m = run_meshlet(head(workdir, admin, 2) + body(port, a.port), defaults=False)
        assert m.wait(timeout=10) == 3, m.stderr
    finally:
        holder.close()


@pytest.mark.parametrize("value", ["0", "9999"])
def test_check_refuses_workers_out_of_range(meshlet, workdir, kconfig, value):
    path = workdir / "w.ini"
    path.write_text(f"[node]\nstate_dir = {workdir / 'state'}\nworkers = {value}\n")
    r = meshlet("check", path)
    assert r.returncode == 1
    assert (f'{path}:3: [node] workers: expected 1..{kconfig["CONFIG_ML_MAX_WORKERS"]}, '
            f'got "{value}"') in r.stderr


def test_check_warns_beyond_the_online_cpus(meshlet, workdir, kconfig):
    import os
    cpus = os.cpu_count()
    n = int(kconfig["CONFIG_ML_MAX_WORKERS"])
    if cpus >= n:
        pytest.skip(f"{cpus} CPUs: CONFIG_ML_MAX_WORKERS={n} is not beyond them")
    path = workdir / "w.ini"
    path.write_text(f"[node]\nstate_dir = {workdir / 'state'}\nworkers = {n}\n")
    r = meshlet("check", path)
    assert r.returncode == 0, r.stderr
    assert f"{path}:3: warning: [node] workers: {n} event loops on {cpus} online CPUs" in r.stderr


def test_a_post_that_changes_workers_is_refused(run_meshlet, backends, workdir, free_port):
    a = backends("a", workers=2 * SPREAD_CONNECTIONS)
    port, admin = free_port(), free_port()
    m = start(run_meshlet, head(workdir, admin, 2) + body(port, a.port))
    text = "[node]\nworkers = 1\n\n" + body(port, a.port)
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/config", method="POST",
                                 data=text.encode())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=CALL_TIMEOUT)
    assert e.value.code == 400
    msg = e.value.read().decode()
    assert "workers" in msg, msg
    assert spread_calls(port, 2) == [b"a:x"] * 2
    stop(m)


def test_sigusr1_reopens_the_access_log_of_every_worker(run_meshlet, backends, workdir,
                                                       free_port):
    a = backends("a", workers=2 * SPREAD_CONNECTIONS)
    port, admin = free_port(), free_port()
    log = workdir / "access.log"
    text = head(workdir, admin, 2).replace("workers = 2\n", f"workers = 2\naccess_log = {log}\n")
    m = start(run_meshlet, text + body(port, a.port))

    def lines(path):
        return len(path.read_text().splitlines()) if path.exists() else 0

    def settled(path, want):
        """The line count once it reached want (a call's line is written as it ends, which
        may be just after its answer went out), or what it is after a while."""
        deadline = time.monotonic() + scaled(5)
        while lines(path) < want and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)  # and no more come
        return lines(path)

    assert spread_calls(port, SPREAD_CONNECTIONS) == [b"a:x"] * SPREAD_CONNECTIONS
    assert settled(log, SPREAD_CONNECTIONS) == SPREAD_CONNECTIONS  # every worker's, whole
    rotated = workdir / "access.log.1"
    log.rename(rotated)  # what logrotate does, then it signals
    m.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + scaled(5)
    while m.stderr.count(f"access_log {log}: reopened") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert m.stderr.count(f"access_log {log}: reopened") == 2, m.stderr  # once per worker
    assert spread_calls(port, SPREAD_CONNECTIONS) == [b"a:x"] * SPREAD_CONNECTIONS
    per_worker = worker_metric(admin, "calls_total")
    assert min(per_worker.values()) > 0, per_worker
    assert settled(log, SPREAD_CONNECTIONS) == SPREAD_CONNECTIONS
    assert lines(rotated) == SPREAD_CONNECTIONS
    stop(m)
