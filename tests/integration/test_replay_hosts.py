"""A call an upstream refused unprocessed (GOAWAY) goes again through the pick step with the hosts
it tried: to another endpoint while one is usable, whatever the policy would have picked next."""

from grpc_peers import channel, unary
from test_deadlines_and_drain import CALL_TIMEOUT, GoawayServer
from test_proxy import proxy  # noqa: F401 (a fixture)


def test_replay_after_goaway_goes_to_an_endpoint_the_call_has_not_tried(backends, proxy):  # noqa: F811
    gone = GoawayServer()
    try:
        b = backends("b1")
        # Smooth weighted round robin with weights 3:1 picks gone, gone, b1: without the tried
        # set the replay would go to gone a second time.
        _, port = proxy({"echo": ([], f"endpoint = 127.0.0.1:{gone.port} weight=3\n"
                                      f"endpoint = 127.0.0.1:{b.port} weight=1\n")})
        with channel(port) as ch:
            resp = unary(ch, "Say")(b"hi", timeout=CALL_TIMEOUT)
        assert resp == b"b1:hi"
        assert gone.requests == 1, gone.requests  # refused once, never tried again
        assert b.calls == 1
    finally:
        gone.close()
