"""lb = random end to end: calls over one downstream connection land on the cluster's endpoints in
proportion to their weights. meshlet seeds its random source from the kernel, so each count is
checked against a binomial interval wide enough (z = 4.4, about 1 in 100,000 per count) that a
correct balancer does not fail it by chance; the unit test (tests/unit/balance/lb_random_test.c)
checks the same with a fixed seed."""

import math

from grpc_peers import channel, unary
from test_proxy import CALL_TIMEOUT, proxy  # noqa: F401 (a fixture)

N_CALLS = 800
Z = 4.4


def test_random_spreads_calls_by_endpoint_weight(backends, proxy):  # noqa: F811
    bs = [backends(f"b{i}") for i in range(3)]
    weights = [1, 1, 2]
    extra = "lb = random\n"
    ports = [b.port for b in bs]
    # the fixture writes plain endpoints: the weights go in as extra lines of their own
    _, port = proxy({"echo": ([], extra + "".join(
        f"endpoint = 127.0.0.1:{p} weight={w}\n" for p, w in zip(ports, weights)))})
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(N_CALLS):
            say(b"x", timeout=CALL_TIMEOUT)
    counts = [b.calls for b in bs]
    assert sum(counts) == N_CALLS, counts
    for count, w in zip(counts, weights):
        p = w / sum(weights)
        mean, sd = N_CALLS * p, math.sqrt(N_CALLS * p * (1 - p))
        assert abs(count - mean) <= Z * sd, (counts, weights)
