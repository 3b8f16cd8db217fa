"""`meshlet controller --admin-token FILE`: the controller's state-changing HTTP request (POST
/rollback) needs "Authorization: Bearer TOKEN" when a token is given (compared in constant
time, the same code as the node's [node] admin_token); reads stay open; a bad token file stops
the controller from starting with a clear error. Every wait is bounded."""

import subprocess
import urllib.error
import urllib.request

from conftest import scaled

WAIT = scaled(10)
TOKEN = "s3cret-token-0123456789"


def post(port, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/rollback", method="POST", data=b"",
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=WAIT) as r:
        return r.read().decode()


def test_rollback_needs_the_bearer_token(run_meshlet, meshlet_cmd, free_port, workdir):
    configs = workdir / "configs"
    configs.mkdir()
    (configs / "default.ini").write_text("; v1\n")
    (workdir / "token").write_text(TOKEN + "\n")
    port = free_port()
    ctl = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs", configs,
                      "--admin-token", workdir / "token")
    assert ctl.alive(), ctl.stderr
    status, body = post(port)
    assert status == 401 and "Bearer" in body, (status, body)
    assert post(port, {"Authorization": "Bearer wrong-token-0123456789"})[0] == 401
    assert post(port, {"Authorization": "Basic " + TOKEN})[0] == 401
    assert "controller.http_unauthorized 3" in get_stats(port)  # reads need no token
    # With the token the request is served (409: nothing to roll back yet).
    status, body = post(port, {"Authorization": "Bearer " + TOKEN})
    assert status in (200, 409), (status, body)
    assert "controller.http_unauthorized 3" in get_stats(port)
    # `meshlet fleet rollback --token FILE` sends it; without it the CLI gets the 401.
    cli = [*meshlet_cmd, "fleet", "rollback", "--controller", f"http://127.0.0.1:{port}"]
    out = subprocess.run(cli, capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 1 and "Bearer" in out.stderr, (out.returncode, out.stderr)
    out = subprocess.run(cli + ["--token", str(workdir / "token")], capture_output=True,
                         text=True, timeout=WAIT)
    assert out.returncode in (0, 1) and "Bearer" not in out.stderr, out.stderr
    assert "controller.http_unauthorized 4" in get_stats(port)


def test_without_token_rollback_stays_open(run_meshlet, free_port, workdir):
    configs = workdir / "configs"
    configs.mkdir()
    port = free_port()
    run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs", configs)
    assert post(port)[0] in (200, 409)


def test_bad_token_file_refuses_to_start(meshlet_cmd, workdir):
    configs = workdir / "configs"
    configs.mkdir()
    for text, said in (("short\n", "16..256 visible ASCII"),
                       ("has a space in it 0123\n", "16..256 visible ASCII"),
                       (None, "No such file")):
        path = workdir / "tok"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        out = subprocess.run([*meshlet_cmd, "controller", "--listen", "127.0.0.1:1", "--configs",
                              str(configs), "--admin-token", str(path)],
                             capture_output=True, text=True, timeout=WAIT)
        assert out.returncode == 3, (text, out.returncode, out.stderr)
        assert "--admin-token" in out.stderr and said in out.stderr, out.stderr
