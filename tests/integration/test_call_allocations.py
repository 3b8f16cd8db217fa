"""A warm call path allocates nothing: 1000 unary gRPC calls through meshlet (grpcio client →
meshlet → grpcio backend, one downstream and one upstream connection, a route deadline and a
client deadline, so the deadline timer and the grpc-timeout rewrite run on every call) make no
heap allocation on meshlet's side, nghttp2's included (its allocations go through meshlet's
allocator). Read from meshlet_heap_allocations_total on /stats/prometheus; the admin request that
reads it allocates too, so the same two reads with no call between them are the baseline. Every
wait is bounded."""

import re
import urllib.request

from conftest import scaled
from grpc_peers import channel, unary

CALL_TIMEOUT = scaled(10)
# Warm-up: the pools fill, both connections are up, and nghttp2's HPACK tables (whose entries
# change with every call's grpc-timeout value) have grown to their steady size: in runs of
# 6 x 1000 calls after 200 warm ones, the second thousand still made 2 allocations there
# (add_hd_table_incremental), never any later one.
WARM_CALLS = 2500
CALLS = 1000


def allocations(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats/prometheus",
                                timeout=scaled(10)) as r:
        text = r.read().decode()
    found = re.search(r"^meshlet_heap_allocations_total (\d+)$", text, re.M)
    assert found, "meshlet_heap_allocations_total is missing"
    return int(found.group(1))


def test_1000_warm_unary_calls_make_no_heap_allocation(run_meshlet, backends, free_port):
    b = backends("b1")
    port, admin = free_port(), free_port()
    m = run_meshlet(f"""
[node]
admin = 127.0.0.1:{admin}
access_log = off
log = warn
[listener l]
bind = 127.0.0.1:{port}
[route r]
listener = l
prefix = /meshlet.test.Echo/
to = c
timeout = 5s
[cluster c]
endpoint = 127.0.0.1:{b.port}
""")
    assert m.alive(), m.stderr
    with channel(port) as ch:
        say = unary(ch, "Say")
        for i in range(WARM_CALLS):
            assert say(b"x" * 100, timeout=CALL_TIMEOUT) == b"b1:" + b"x" * 100
        allocations(admin)  # the admin endpoint's own first-use allocations
        a0 = allocations(admin)
        a1 = allocations(admin)
        for i in range(CALLS):
            assert say(b"y" * 100, timeout=CALL_TIMEOUT) == b"b1:" + b"y" * 100
        a2 = allocations(admin)
    per_read = a1 - a0
    made = a2 - a1 - per_read
    assert made == 0, (f"{made} heap allocations over {CALLS} warm calls "
                       f"(one admin read makes {per_read})")
    assert b.calls == WARM_CALLS + CALLS
