"""The admin home page (GET /), /server_info and HEAD, end to end: the page is loaded in headless
Chromium (Debian's chromium, driven over the DevTools protocol) against a node with an admin
token under real grpcio traffic through meshlet; the token is typed once into the page; the
numbers it shows are checked against /stats; a screenshot is kept under build/test-artifacts/.
Every wait is bounded."""

import asyncio
import base64
import http.client
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import websockets

import grpc_peers
from conftest import scaled
from grpc_peers import channel, unary

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
TOKEN = "page-test-token-0123456789"
CALL_TIMEOUT = scaled(10)


def admin_port(m):
    found = re.search(r"^admin\s*=\s*127\.0\.0\.1:(\d+)\s*$", Path(m.config_path).read_text(), re.M)
    return int(found.group(1))


def request(port, method, path, token=TOKEN, body=None):
    """(status, {header: value} lowercased, body bytes) of one request on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(10))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def stats(port):
    status, _, body = request(port, "GET", "/stats")
    assert status == 200, body
    return {k: int(v) for k, v in (line.rsplit(" ", 1) for line in body.decode().splitlines())}


@pytest.fixture
def node(run_meshlet, free_port, backends, workdir):
    """(meshlet, listener port, admin port, [backends]): an admin token, one listener and route,
    cluster `three` of two backends."""
    bs = [backends("b0"), backends("b1")]
    token_file = workdir / "admin.token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    m = run_meshlet(f"[node]\nid = page-node\nadmin_token = {token_file}\n\n"
                    f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
                    f"[route echo]\nlistener = ingress\nprefix = /{grpc_peers.SERVICE}/\n"
                    "to = three\n\n"
                    "[cluster three]\n" + "".join(f"endpoint = 127.0.0.1:{b.port}\n" for b in bs))
    assert m.alive(), m.stderr
    return m, port, admin_port(m), bs


# ---- HEAD, /server_info, the page without a browser --------------------------------------------

def test_head_gets_the_headers_of_get_and_no_body(node):
    _, _, admin, _ = node
    for path in ["/", "/server_info", "/stats", "/stats.json", "/stats/prometheus", "/config",
                 "/healthz", "/ready", "/fleet", "/nope"]:
        gs, gh, gbody = request(admin, "GET", path)
        hs, hh, hbody = request(admin, "HEAD", path)
        assert hs == gs and hbody == b"", (path, hs, hbody)
        for h in ("content-type", "content-length", "transfer-encoding",
                  "x-meshlet-config-version", "cache-control"):
            if h == "content-length" and path == "/server_info":
                # its body carries the uptime in ms: one digit more from 999 to 1000
                assert abs(int(hh[h]) - int(gh[h])) <= 1, (hh, gh)
                continue
            assert hh.get(h) == gh.get(h), (path, h, hh, gh)
        if "content-length" in gh:
            assert int(gh["content-length"]) == len(gbody)
    # without the token, HEAD is refused like GET (the page itself needs none)
    assert request(admin, "HEAD", "/stats", token=None)[0] == 401
    assert request(admin, "HEAD", "/", token=None)[0] == 200


def test_the_page_is_served_without_the_token_and_fetches_nothing_else(node):
    _, _, admin, _ = node
    status, headers, body = request(admin, "GET", "/", token=None)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert 1024 < len(body) < 16 * 1024
    # no external asset: no src/href to anything, only the two same-origin JSON endpoints
    assert not re.search(r"""(src|href)\s*=""", page)
    assert set(re.findall(r'get\("(/[^"]*)"\)', page)) == {"/server_info", "/stats.json"}
    assert "sessionStorage" in page and "Authorization" in page
    # the data needs the token
    assert request(admin, "GET", "/server_info", token=None)[0] == 401
    assert request(admin, "GET", "/stats.json", token=None)[0] == 401


def test_server_info_says_what_the_node_is_and_what_the_last_apply_did(node, meshlet_board):
    m, _, admin, _ = node
    status, headers, body = request(admin, "GET", "/server_info")
    assert status == 200 and headers["content-type"] == "application/json"
    info = json.loads(body)
    _, ch, _ = request(admin, "GET", "/config")
    assert info["id"] == "page-node" and info["board"] == meshlet_board
    assert "admin" in info["features"] and info["version"]
    assert info["config"] == {"version": ch["x-meshlet-config-version"], "source": "file"}
    assert 0 <= info["uptime_ms"] < 600_000
    assert abs(info["start_time_unix_ms"] / 1000 - time.time()) < 600
    assert info["last_apply"] == {"result": "none"}
    bad = Path(m.config_path).read_text() + "\n[cluster broken]\nendpoint = nowhere\n"
    status, _, err = request(admin, "POST", "/config", body=bad.encode())
    assert status == 400
    info = json.loads(request(admin, "GET", "/server_info")[2])
    la = info["last_apply"]
    assert la["result"] == "refused" and la["source"] == "POST /config"
    assert la["error"] and la["error"].splitlines()[0] in err.decode()
    assert info["config"]["source"] == "file"  # nothing changed
    good = Path(m.config_path).read_text().replace("id = page-node", "id = page-node\n; again")
    status, _, answer = request(admin, "POST", "/config", body=good.encode())
    assert status == 200, answer
    info = json.loads(request(admin, "GET", "/server_info")[2])
    assert info["last_apply"]["result"] == "applied" and info["last_apply"]["error"] == ""
    assert info["config"]["source"] == "admin"
    assert answer.decode() == f"version: {info['config']['version']}\n"


# ---- the page in headless Chromium --------------------------------------------------------------

class Browser:
    """Headless Chromium with a DevTools endpoint, and one page driven over it (async)."""

    def __init__(self, workdir):
        exe = shutil.which("chromium")
        if exe is None:
            pytest.fail("chromium is missing: firmware/setup-host.sh installs Debian's chromium")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={workdir / 'chromium'}", "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + scaled(60)
        self.port = None
        while self.port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                self.port = int(found.group(1))
        assert self.port, "chromium did not start its DevTools endpoint"
        # keep draining stderr so chromium never blocks on it
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list",
                                    timeout=scaled(10)) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws_url = pages[0]["webSocketDebuggerUrl"]
        self.ws = None
        self.next_id = 0

    async def send(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=scaled(30)))
            if msg.get("id") == my_id:
                assert "error" not in msg, msg
                return msg["result"]

    async def js(self, expr):
        r = await self.send("Runtime.evaluate", expression=expr, returnByValue=True,
                            awaitPromise=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    async def wait_js(self, expr, timeout=20):
        """expr's value once truthy (a page still loading may not have its elements yet)."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            v = await self.js(f"(() => {{ try {{ return ({expr}); }} catch (e) {{ return null; }} }})()")
            if v or time.monotonic() > deadline:
                return v
            await asyncio.sleep(0.1)

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=scaled(10))


# The rows of every table on the page: {table id: {row name: {column: text}}}.
READ_TABLES = """(() => {
  const out = {};
  for (const t of document.querySelectorAll("table")) {
    const rows = {};
    for (const r of t.querySelectorAll("tr[data-name]")) {
      const cells = {};
      for (const td of r.querySelectorAll("td")) cells[td.dataset.k] = td.textContent;
      rows[(r.dataset.cluster ? r.dataset.cluster + "/" : "") + r.dataset.name] = cells;
    }
    out[t.id] = rows;
  }
  return out;
})()"""


class Traffic:
    """grpcio calls through meshlet on a thread until stopped: Say (OK) and now and then Fail
    (NOT_FOUND)."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        with channel(self.port) as ch:
            say, fail = unary(ch, "Say"), unary(ch, "Fail")
            i = 0
            while not self.stop.is_set():
                i += 1
                if i % 10 == 0:
                    try:
                        fail(b"x", timeout=CALL_TIMEOUT)
                    except grpc.RpcError:
                        self.failed += 1
                else:
                    say(b"x", timeout=CALL_TIMEOUT)
                    self.ok += 1
                time.sleep(0.005)

    def end(self):
        self.stop.set()
        self.thread.join(timeout=scaled(20))


def test_the_page_shows_the_node_and_live_numbers_that_match_the_stats(node, workdir):
    m, port, admin, bs = node
    # a refused apply first: the page shows its error lines
    bad = Path(m.config_path).read_text() + "\n[cluster broken]\nendpoint = nowhere\n"
    status, _, err = request(admin, "POST", "/config", body=bad.encode())
    assert status == 400
    traffic = Traffic(port)
    browser = Browser(workdir)
    url = f"http://127.0.0.1:{admin}/"

    async def scenario():
        async with websockets.connect(browser.ws_url, max_size=None) as ws:
            browser.ws = ws
            await browser.send("Page.enable")
            await browser.send("Page.navigate", url=url)
            assert await browser.wait_js(f'location.href === {json.dumps(url)} && '
                                         'document.readyState === "complete"')
            # without a token the data is refused: the page asks for it
            assert await browser.wait_js('!document.getElementById("login").hidden')
            assert await browser.js("document.body.dataset.polls || null") is None
            # a wrong token is refused, said so, and asked again
            await browser.js('document.getElementById("tok").value = "not-the-token-000000";'
                             'document.getElementById("login").requestSubmit(); true')
            assert await browser.wait_js('document.getElementById("loginerr").textContent === '
                                         '"token refused" && '
                                         '!document.getElementById("login").hidden')
            assert await browser.js("document.body.dataset.polls || null") is None
            await browser.js(f'document.getElementById("tok").value = {json.dumps(TOKEN)};'
                             'document.getElementById("login").requestSubmit(); true')
            assert await browser.wait_js("Number(document.body.dataset.polls || 0) >= 3")
            live = await browser.js(READ_TABLES)
            shot = await browser.send("Page.captureScreenshot", format="png")
            traffic.end()
            # the node is idle now: once the counters stop moving, two more polls
            before = None
            deadline = time.monotonic() + scaled(10)
            while time.monotonic() < deadline:
                now = stats(admin)
                if now == before and now["calls.rq_active"] == 0:
                    break
                before = now
                await asyncio.sleep(0.3)
            polls = int(await browser.js("document.body.dataset.polls"))
            assert await browser.wait_js(f"Number(document.body.dataset.polls) >= {polls + 2}")
            shown = await browser.js(READ_TABLES)
            text = await browser.js("document.body.innerText")
            storage = await browser.js(f"sessionStorage.getItem({json.dumps('meshlet-admin-token')})")
            urls = await browser.js("[location.href].concat(performance.getEntries()"
                                    ".map(e => e.name))")
            return live, shown, text, storage, urls, shot

    try:
        live, shown, text, storage, urls, shot = asyncio.run(scenario())
    finally:
        traffic.end()
        browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "admin-page.png").write_bytes(base64.b64decode(shot["data"]))

    s = stats(admin)
    info = json.loads(request(admin, "GET", "/server_info")[2])
    # the node's header: id, version, config version and source, the refused apply's lines
    for v in ("page-node", info["version"], info["config"]["version"], "file", "refused"):
        assert v in text, (v, text)
    assert err.decode().splitlines()[0] in text
    # the token is kept in the tab's session and never in a URL
    assert storage == TOKEN
    assert all(TOKEN not in u for u in urls), urls
    # under traffic, the rates were above zero
    assert float(live["t-all"]["all"]["calls/s"]) > 0
    assert float(live["t-listeners"]["ingress"]["calls/s"]) > 0
    # idle, every number shown is the one /stats has
    assert traffic.ok > 0 and traffic.failed > 0
    expect = {
        ("t-all", "all"): ("calls.rq_total", "calls.rq_active"),
        ("t-listeners", "ingress"): ("listener.ingress.downstream_rq_total",
                                     "listener.ingress.downstream_rq_active"),
        ("t-routes", "echo"): ("route.echo.rq_total", "route.echo.rq_active"),
        ("t-clusters", "three"): ("cluster.three.upstream_rq_total",
                                  "cluster.three.upstream_rq_active"),
    }
    for b in bs:
        ep = f"cluster.three.endpoint.127.0.0.1:{b.port}."
        expect[("t-endpoints", f"three/127.0.0.1:{b.port}")] = (ep + "rq_total", ep + "rq_active")
    for (table, row), (total, active) in expect.items():
        cells = shown[table][row]
        assert int(cells["total"]) == s[total], (table, row, cells, s[total])
        assert int(cells["active"]) == s[active] == 0, (table, row, cells)
        assert cells["calls/s"] == "0.0", (table, row, cells)
    assert int(shown["t-all"]["all"]["total"]) == traffic.ok + traffic.failed
    assert int(shown["t-all"]["all"]["errors"]) == s["calls.grpc_status.5"] == traffic.failed
    assert (ARTIFACTS / "admin-page.png").stat().st_size > 1000
