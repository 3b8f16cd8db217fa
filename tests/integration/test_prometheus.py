

def test_a_hot_apply_while_the_stats_stream_cuts_them_unfinished(run_meshlet, free_port):
    """The rendering names entities of the snapshot it started on: when a hot apply replaces it
    mid-stream, the response ends without its last chunk (the client sees it unfinished), and
    the next request is served whole."""
    port = free_port()
    text = (f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
            "[route all]\nlistener = ingress\nto = c0\n\n")
    for c in range(64):
        text += f"[cluster c{c}]\n" + "".join(
            f"endpoint = 127.0.{c}.{e + 1}:{40000 + e}\n" for e in range(64))
    m = run_meshlet(text)
    admin = admin_port(m)
    s = socket.socket()
    # a small window: meshlet can put only part of the 1.5 MiB into the socket before we read
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(scaled(10))
    s.connect(("127.0.0.1", admin))
    s.sendall(f"GET /stats/prometheus HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\n\r\n".encode())
    got = s.recv(1024)
    assert got.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in got.lower()
    status, _, body = post(admin, "/config", Path(m.config_path).read_text() + "; changed\n")
    assert status == 200, body
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    assert not got.endswith(b"\r\n0\r\n\r\n"), "the stream went on after the apply"
    assert len(got) < 1 << 20
    status, _, whole = get(admin, "/stats/prometheus", timeout=30)
    assert status == 200 and whole.endswith("\n") and "process_start_time_seconds" in whole
