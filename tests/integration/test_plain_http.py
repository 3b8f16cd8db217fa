"""Non-gRPC HTTP/2 requests are proxied too: a plain HTTP/2 server (python3-h2) behind meshlet,
nghttp (nghttp2-client) in front. Status, headers and body come back as the server sent them."""

import pytest

from h2_peers import H2Server
from test_proxy import nghttp, proxy  # noqa: F401  (proxy is a fixture)


class PlainServer(H2Server):
    """Answers every request with 201, `x-served-path: PATH` and the body "plain:" + the request
    body (a GET has none)."""

    conn_timeout = 10

    def on_connect(self):
        return {"paths": {}, "bodies": {}}

    def on_event(self, c, ev, sock, state):
        paths, bodies = state["paths"], state["bodies"]
        if isinstance(ev, self.events.RequestReceived):
            paths[ev.stream_id] = dict(ev.headers)[b":path"]
            bodies[ev.stream_id] = b""
        elif isinstance(ev, self.events.DataReceived):
            bodies[ev.stream_id] += ev.data
            c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, self.events.StreamEnded):
            body = b"plain:" + bodies.pop(ev.stream_id)
            c.send_headers(ev.stream_id, [
                (":status", "201"), ("content-type", "text/plain"),
                ("x-served-path", paths.pop(ev.stream_id).decode())])
            c.send_data(ev.stream_id, body, end_stream=True)


@pytest.fixture
def plain_server():
    s = PlainServer()
    yield s
    s.close()


def test_plain_http2_get_is_proxied_with_status_headers_and_body(plain_server, proxy):  # noqa: F811
    _, port = proxy({"web": [plain_server.port]})
    out = nghttp(f"http://127.0.0.1:{port}/index.html?x=1")
    assert ":status: 201" in out, out
    assert "x-served-path: /index.html?x=1" in out, out
    assert "\nplain:" in out or out.startswith("plain:"), out


def test_plain_http2_post_body_reaches_the_server(plain_server, proxy, workdir):  # noqa: F811
    _, port = proxy({"web": [plain_server.port]})
    body = workdir / "body.txt"
    body.write_bytes(b"form=data")
    out = nghttp(f"http://127.0.0.1:{port}/submit", "-d", str(body))
    assert ":status: 201" in out, out
    assert "plain:form=data" in out, out
