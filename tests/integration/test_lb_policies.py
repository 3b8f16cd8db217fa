"""The LB policies end to end (issue 8), over one downstream connection to three real grpcio
backends that say who served each call: round_robin is exact, weights 1:2:3 hold for every
policy, ring_hash and maglev keep a key on one backend and move about 1/N of the keys when a hot
apply removes one of N backends, least_request sends fewer calls to a slow backend. meshlet's
random source is seeded (MESHLET_RANDOM_SEED) so that every run draws the same picks; the bounds
are still ones that a correct balancer passes with any seed."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from grpc_peers import Backend, channel, unary
from test_deadlines_and_drain import GoawayServer
from test_hot_apply import node  # noqa: F401 (a fixture)
from test_proxy import CALL_TIMEOUT, proxy  # noqa: F401 (a fixture)

N_CALLS = 3000
WINDOW = 8  # calls in flight at once on the one connection, to keep the test short
SEED = "20261207"
SLOW_S = 0.05


@pytest.fixture(autouse=True)
def seeded(monkeypatch):
    monkeypatch.setenv("MESHLET_RANDOM_SEED", SEED)


def endpoints(bs, weights=None):
    weights = weights or [1] * len(bs)
    return "".join(f"endpoint = 127.0.0.1:{b.port} weight={w}\n" for b, w in zip(bs, weights))


def call_all(ch, n, window=WINDOW, metadata_of=None):
    """n unary Say calls from window callers, each making its calls one after the other (a slow
    call holds up only its caller); returns the backend name that answered each call."""
    say = unary(ch, "Say")

    def one(i):
        md = metadata_of(i) if metadata_of else None
        return say(b"x", timeout=CALL_TIMEOUT, metadata=md).split(b":")[0].decode()

    with ThreadPoolExecutor(max_workers=window) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.timeout(180)
def test_round_robin_gives_each_of_three_backends_a_third_of_3000_calls(backends, proxy):  # noqa: F811
    bs = [backends(f"b{i}") for i in range(3)]
    _, port = proxy({"echo": ([], "lb = round_robin\n" + endpoints(bs))})
    with channel(port) as ch:
        served = call_all(ch, N_CALLS)
    counts = [served.count(b.name) for b in bs]
    assert all(abs(c - N_CALLS // 3) <= 1 for c in counts), counts
    assert [b.calls for b in bs] == counts


# Without a key, ring_hash and maglev draw by weight like random; with a key per call, keys land
# on the backends by their shares of the ring / table. One call at a time: least_request then
# sees every backend idle at each pick, and spreads by weight alone.
@pytest.mark.timeout(180)
@pytest.mark.parametrize("lb,keyed", [("round_robin", False), ("random", False),
                                      ("least_request", False), ("maglev", True),
                                      ("ring_hash", True)])
def test_weights_1_2_3_land_within_3_points(backends, proxy, lb, keyed):  # noqa: F811
    bs = [backends(f"b{i}") for i in range(3)]
    hash_line = "hash = header:x-user\n" if lb in ("maglev", "ring_hash") else ""
    _, port = proxy({"echo": ([], f"lb = {lb}\n{hash_line}" + endpoints(bs, [1, 2, 3]))})
    with channel(port) as ch:
        served = call_all(ch, N_CALLS, window=1,
                          metadata_of=(lambda i: (("x-user", f"user-{i}"),)) if keyed else None)
    shares = [100 * served.count(b.name) / N_CALLS for b in bs]
    # ring_hash: a host's share of the ring is the length of its arcs, which vary with where its
    # points fall (their hash depends on the backends' ports, new each run): with 256 points for
    # the heaviest host one standard deviation is about 1.7 points, so ±3 failed about one run in
    # five; ±6 (3.5 deviations) failed once in CI (56.03 for 50). ±8 is past 4.7 deviations;
    # the deterministic form needs the backends on fixed ports. The others are within ±3 by
    # construction or by sampling.
    bound = 8 if lb == "ring_hash" else 3
    for share, want in zip(shares, [100 / 6, 200 / 6, 300 / 6]):
        assert abs(share - want) <= bound, (lb, shares)


def hash_config(port, lb, bs):
    return (f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
            "[route all]\nlistener = ingress\nto = echo\n\n"
            f"[cluster echo]\nlb = {lb}\nhash = header:x-user\n" + endpoints(bs) + "\n")


# One key, one backend, every time; a hot apply removes the third backend: its keys (about a
# third) go to the others. ring_hash moves no other key; maglev may move a few more.
@pytest.mark.timeout(240)
@pytest.mark.parametrize("lb,others_moved_max", [("ring_hash", 0.0), ("maglev", 0.05)])
def test_hash_policy_keeps_a_key_on_one_backend_and_moves_about_a_third_when_one_leaves(
        backends, node, free_port, lb, others_moved_max):  # noqa: F811
    bs = [backends(f"b{i}") for i in range(3)]
    port = free_port()
    keys = [f"user-{i}" for i in range(300)]
    node.start(hash_config(port, lb, bs))
    with channel(port) as ch:
        served = call_all(ch, N_CALLS, metadata_of=lambda i: (("x-user", keys[i % len(keys)]),))
        first = {}
        for i, who in enumerate(served):
            assert first.setdefault(keys[i % len(keys)], who) == who, (keys[i % len(keys)], who)
        assert len(set(first.values())) == 3, first  # every backend owns some keys
        node.apply(hash_config(port, lb, bs[:2]))
        after = call_all(ch, len(keys), metadata_of=lambda i: (("x-user", keys[i]),))
    gone = [k for k in keys if first[k] == "b2"]
    stayed = [k for k in keys if first[k] != "b2"]
    moved_others = sum(after[keys.index(k)] != first[k] for k in stayed)
    moved = len(gone) + moved_others
    assert all(after[keys.index(k)] in ("b0", "b1") for k in gone)
    assert moved_others <= others_moved_max * len(stayed), (moved_others, len(stayed))
    assert 0.2 <= moved / len(keys) <= 0.45, (moved, len(keys))


# A call without the key (no x-user header) gets a backend drawn at random: all three serve.
@pytest.mark.parametrize("lb", ["ring_hash", "maglev"])
def test_hash_policy_without_the_key_spreads_calls_at_random(backends, proxy, lb):  # noqa: F811
    bs = [backends(f"b{i}") for i in range(3)]
    _, port = proxy({"echo": ([], f"lb = {lb}\nhash = header:x-user\n" + endpoints(bs))})
    with channel(port) as ch:
        served = call_all(ch, 300)
    counts = [served.count(b.name) for b in bs]
    # binomial(300, 1/3): sd 8.2; z = 4.4 below the mean of 100
    assert all(c >= 64 for c in counts), counts


class SlowBackend(Backend):
    """A backend that takes SLOW_S longer to answer Say than the others."""

    def say(self, request, context):
        time.sleep(SLOW_S)
        return super().say(request, context)


# With 8 calls in flight, the slow backend holds its calls 50 ms while the fast ones answer at
# once: it has more active calls at most picks, and loses the draws it is in.
@pytest.mark.timeout(180)
def test_least_request_sends_clearly_fewer_calls_to_a_slow_backend(backends, proxy):  # noqa: F811
    fast = [backends(f"b{i}") for i in range(2)]
    slow = SlowBackend("slow")
    try:
        _, port = proxy({"echo": ([], "lb = least_request\n" + endpoints(fast + [slow]))})
        with channel(port) as ch:
            served = call_all(ch, N_CALLS)
    finally:
        slow.stop()
    counts = {name: served.count(name) for name in ("b0", "b1", "slow")}
    assert sum(counts.values()) == N_CALLS
    # round robin would give each a third; "clearly fewer": under half of each fast one's
    assert counts["slow"] * 2 < min(counts["b0"], counts["b1"]), counts


# Every policy: a call the GOAWAY endpoint refused goes again to the endpoint it has not tried,
# even when the policy would pick the refusing one again (the same key, the less loaded host).
@pytest.mark.parametrize("lb", ["least_request", "ring_hash", "maglev"])
def test_a_replayed_call_goes_to_the_endpoint_it_has_not_tried(backends, proxy, lb):  # noqa: F811
    gone = GoawayServer()
    try:
        b = backends("b1")
        _, port = proxy({"echo": ([], f"lb = {lb}\nhash = header:x-user\n"
                                      f"endpoint = 127.0.0.1:{gone.port}\n"
                                      f"endpoint = 127.0.0.1:{b.port}\n")})
        with channel(port) as ch:
            served = call_all(ch, 40, window=1,
                              metadata_of=lambda i: (("x-user", f"user-{i}"),))
        assert served == ["b1"] * 40
        # some calls were refused by it first (each once: the replay went to b1)
        assert 1 <= gone.requests < 40, gone.requests
        assert b.calls == 40
    finally:
        gone.close()
