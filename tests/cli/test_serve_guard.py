"""`freqtui serve` lets in only who has its token, from its own page, a few at a time.

Each test starts a real `freqtui serve` on a free loopback port and talks to it with a
real HTTP and websocket client (aiohttp): no token is 403 for every page and for the
websocket; the printed URL's token opens it; a websocket from another site's page is
refused; past --max-consoles a page and a refusal say so; a console whose client left
(closed, killed, or sent a frame too big) or whose server stopped ends within 10 s,
saved and unlocked, and frees its slot; a console that cannot start shows why in the
tab."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from engine.store import lock

CLI = [sys.executable, "-m", "freqtui.cli"]
RUN = ["--duration", "0.5", "--method", "handoff", "--backend", "torch", "--epochs", "50"]
WAIT_S = 90.0  # a console's first frame: torch starts slowly on a loaded machine
ENDS_WITHIN_S = 10.0  # the issue's bound, from the client leaving to the console gone


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`freqtui serve` in a subprocess, and the URL it printed."""

    def __init__(self, tmp_path: Path, *flags: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp_path / f"serve-{self.port}.log", "w+")  # noqa: SIM115
        self.p = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port), *flags],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # the consoles it starts go with it at the end
        )
        deadline = time.monotonic() + WAIT_S
        while not (m := re.search(r"open (http://\S+)", self.output())):
            assert self.p.poll() is None, self.output()
            assert time.monotonic() < deadline, "the server never printed its URL"
            time.sleep(0.1)
        self.url = m.group(1)
        self.token = self.url.split("token=", 1)[1]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, 15)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, 9)
                self.p.wait()
        self.log.close()


@pytest.fixture
def served(tmp_path):
    servers: list[Served] = []

    def start(*flags: str) -> Served:
        servers.append(Served(tmp_path, *flags))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the checks that start no console (token, cookie, Origin)."""
    s = Served(tmp_path_factory.mktemp("serve"), *RUN)
    yield s
    s.stop()


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the consoles a server started)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(x.decode(errors="replace").split("=", 1) for x in raw if b"=" in x)


async def status_of(http: aiohttp.ClientSession, url: str, **kw) -> int:
    async with http.get(url, allow_redirects=False, **kw) as r:
        return r.status


async def ws_refusal(http: aiohttp.ClientSession, url: str, origin: str | None) -> int | None:
    """The HTTP status that refused the websocket handshake; None if it was accepted."""
    headers = {"Origin": origin} if origin else {}
    try:
        ws = await http.ws_connect(url, headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return None


def run(coro, timeout: float = 240.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---- refused before serving: one line, exit 2 ------------------------------------------
def one_line_refusal(*args: str) -> str:
    r = subprocess.run([*CLI, "serve", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert not r.stdout  # nothing served, no URL printed
    return r.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "0", "65536"])
def test_a_port_outside_1_to_65535_is_one_line(port):
    assert f"--port {port}: a port is a number from 1 to 65535" in one_line_refusal("--port", port)


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = one_line_refusal("--host", "127.0.0.1", "--port", str(port))
    assert f"cannot serve on 127.0.0.1:{port}: the port is in use" in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--token", "short"], "--token: use 16 to 256"),
        (["--token", "has spaces in it, and more"], "--token: use 16 to 256"),
        (["--max-consoles", "0"], "--max-consoles 0: from 1 to 64"),
        (["--resume", "no-such-session"], "no-such-session: no such file or session"),
    ],
)
def test_bad_serve_flags_are_one_line(args, words):
    assert words in one_line_refusal(*args, "--port", str(free_port()))


def test_a_host_other_than_loopback_is_warned_about():
    from freqtui.commands.serve import host_warning, is_loopback

    for host in ("localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"):
        assert is_loopback(host) and host_warning(host, 8000) is None, host
    everywhere = host_warning("0.0.0.0", 8000)
    assert "every network interface" in everywhere
    assert "overwrite your sessions" in everywhere and "unencrypted" in everywhere
    assert "192.0.2.7, an address other machines can reach" in host_warning("192.0.2.7", 8000)


def test_a_terminal_size_is_bounded():
    from freqtui.commands.serve import MAX_COLUMNS, MAX_ROWS, bounded

    assert (MAX_COLUMNS, MAX_ROWS) == (300, 100)
    assert bounded(3000, MAX_COLUMNS, 80) == 300 and bounded("3000", MAX_ROWS, 24) == 100
    assert bounded(-5, MAX_ROWS, 24) == 1 and bounded(0, MAX_COLUMNS, 80) == 1
    for junk in ("x", None, float("nan"), float("inf"), [1], {"a": 1}, True):
        assert bounded(junk, MAX_COLUMNS, 80) == 80, junk
    assert bounded(120.7, MAX_COLUMNS, 80) == 120


# ---- the token and the Origin ----------------------------------------------------------
def test_without_the_token_every_page_and_the_websocket_are_403(server):
    s = server
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", s.token), s.url  # random, 24 bytes
    origin = s.base

    async def check() -> None:
        async with aiohttp.ClientSession() as http:
            for path in ("/", "/static/js/textual.js", "/static/css/xterm.css", "/ws", "/nope"):
                assert await status_of(http, s.base + path) == 403, path
                assert await status_of(http, s.base + path + "?token=wrong-" + s.token) == 403
            assert await ws_refusal(http, s.base.replace("http", "ws") + "/ws", origin) == 403
            bad = {"freqtui-token-" + str(s.port): "x" + s.token}
            async with aiohttp.ClientSession(cookies=bad) as other:
                assert await status_of(other, s.base + "/static/js/textual.js") == 403

    run(check())
    assert children(s.p.pid) == []  # no console was started


def test_the_printed_url_opens_the_page_and_its_cookie_the_rest(server):
    s = server

    async def check() -> None:
        # unsafe: aiohttp's client, unlike a browser, keeps no cookies of an IP address
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(s.url) as r:
                assert r.status == 200
                page = await r.text()
                assert r.cookies["freqtui-token-" + str(s.port)]["samesite"] == "Strict"
                assert r.cookies["freqtui-token-" + str(s.port)]["httponly"]
            assert f'data-session-websocket-url="ws://127.0.0.1:{s.port}/ws"' in page
            # the browser sends the cookie with what the page loads
            assert await status_of(http, s.base + "/static/js/textual.js") == 200

    run(check())


def test_a_websocket_from_another_sites_page_is_refused(server):
    s = server
    ws_url = s.base.replace("http", "ws") + f"/ws?token={s.token}"

    async def check() -> None:
        async with aiohttp.ClientSession() as http:
            for origin in (
                "http://evil.example",
                f"http://evil.example:{s.port}",
                f"http://localhost:{s.port}",  # another host than the one asked for
                "null",
                None,
            ):
                assert await ws_refusal(http, ws_url, origin) == 403, origin

    run(check())
    assert children(s.p.pid) == []


# ---- consoles: how many, how big, how they end ----------------------------------------
class Screen:
    """What a console sent to its tab, read as it comes."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.data = bytearray()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                self.data.extend(msg.data)

    async def shows(self, words: bytes) -> None:
        deadline = time.monotonic() + WAIT_S
        while words not in self.data:
            assert time.monotonic() < deadline, f"the console never showed {words!r}"
            assert not self.task.done(), "the console's websocket closed"
            await asyncio.sleep(0.1)


@pytest.mark.slow
def test_consoles_are_capped_bounded_and_end_saved_when_their_client_leaves(served, tmp_path):
    sessions = tmp_path / "sessions"
    s = served(*RUN, "--sessions", str(sessions), "--max-consoles", "1")
    ws_url = s.base.replace("http", "ws") + f"/ws?token={s.token}"

    async def check() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                ws_url + "&width=3000&height=3000", headers={"Origin": s.base}
            )
            screen = Screen(ws)
            deadline = time.monotonic() + WAIT_S
            while not (found := children(s.p.pid)):
                assert time.monotonic() < deadline, "no console process"
                await asyncio.sleep(0.1)
            (console,) = found
            # found between its fork and its exec, a child still has the server's
            # environment (the likely cause of a KeyError on ROWS seen here once): wait
            # for its own
            while "ROWS" not in (env := environ(console)):
                assert time.monotonic() < deadline, f"no ROWS in the console's environment: {env}"
                await asyncio.sleep(0.05)
            assert (env["COLUMNS"], env["ROWS"]) == ("300", "100")  # asked for 3000 x 3000
            # resizes are bounded the same way; the console goes on at a tab's usual size
            await ws.send_json(["resize", {"width": 10**9, "height": -5}])
            await ws.send_json(["resize", {"width": 100, "height": 40}])
            await screen.shows(b"state check passed")  # it trains

            # the one console is taken: the page says so, another websocket is refused
            async with http.get(s.url) as r:
                assert r.status == 503
                assert "All 1 consoles of this server are in use" in await r.text()
            assert await ws_refusal(http, ws_url, s.base) == 503
            assert children(s.p.pid) == [console]

            (folder,) = list(sessions.iterdir())
            await asyncio.sleep(1.0)  # some rows trained since: there is work to lose
            assert not (folder / "latest.pt").exists()  # nothing saved it yet
            left = time.monotonic()
            await ws.close()  # the tab goes away
            while Path(f"/proc/{console}").exists() and _alive(console):
                assert time.monotonic() - left < ENDS_WITHIN_S, "the console outlived its tab"
                await asyncio.sleep(0.1)
            assert (folder / "latest.pt").is_file(), "the console ended without saving"
            while lock.owned_elsewhere(folder):
                assert time.monotonic() - left < ENDS_WITHIN_S, "the session is still locked"
                await asyncio.sleep(0.1)
            # its slot is free again
            deadline = time.monotonic() + ENDS_WITHIN_S
            while (status := await status_of(http, s.url)) == 503:
                assert time.monotonic() < deadline, "the slot was never freed"
                await asyncio.sleep(0.1)
            assert status == 200

    run(check())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_console_that_cannot_start_shows_why_in_the_tab(served, tmp_path, copy_session):
    sessions = tmp_path / "sessions"
    copy_session(sessions)  # a finished session (tests/conftest.py)
    (folder,) = list(sessions.iterdir())
    s = served("--resume", folder.name, "--sessions", str(sessions))
    held = lock.acquire(folder)  # another process owns the session (this test)
    try:

        async def shown() -> str:
            async with aiohttp.ClientSession() as http:
                ws_url = s.base.replace("http", "ws") + f"/ws?token={s.token}"
                ws = await http.ws_connect(ws_url, headers={"Origin": s.base})
                text = b""
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        text += msg.data
                assert ws.closed  # the tab says "Session ended", it is not left blank
                return text.decode(errors="replace")

        text = run(shown(), WAIT_S)  # a tab left blank and open never gets here
    finally:
        held.release()
    assert f"session {folder.name} is in use by process {os.getpid()}" in text, text


CLIENT = """
import asyncio, sys, aiohttp
async def main(url, origin):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url, headers={"Origin": origin})
        seen = bytearray()
        async for msg in ws:
            seen.extend(msg.data if msg.type == aiohttp.WSMsgType.BINARY else b"")
            if b"state check passed" in seen:
                print("trains", flush=True)
                await asyncio.sleep(3600)
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("way", ["client-killed", "huge-frame", "server-stopped"])
def test_a_console_ends_saved_however_its_client_or_server_goes(served, tmp_path, way):
    sessions = tmp_path / "sessions"
    s = served(*RUN, "--sessions", str(sessions))
    ws_url = s.base.replace("http", "ws") + f"/ws?token={s.token}&width=100&height=40"

    async def check() -> None:
        async with aiohttp.ClientSession() as http:
            if way == "client-killed":  # a browser killed, a network gone: the socket drops
                client = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", CLIENT, ws_url, s.base, stdout=subprocess.PIPE
                )
                line = await asyncio.wait_for(client.stdout.readline(), WAIT_S)
                assert line == b"trains\n", "the console never trained"
            else:
                ws = await http.ws_connect(ws_url, headers={"Origin": s.base})
                await Screen(ws).shows(b"state check passed")
            (console,) = children(s.p.pid)
            (folder,) = list(sessions.iterdir())
            await asyncio.sleep(1.0)  # some rows trained since: there is work to lose
            assert not (folder / "latest.pt").exists()
            left = time.monotonic()
            if way == "client-killed":
                client.kill()
                await client.wait()
            elif way == "huge-frame":  # past aiohttp's 4 MB message bound: the server closes
                with contextlib.suppress(ConnectionError):
                    await ws.send_str("x" * (5 * 2**20))
            else:  # SIGTERM to the server (as Ctrl-C): it closes every tab's socket first
                s.p.send_signal(signal.SIGTERM)
            while _alive(console):
                assert time.monotonic() - left < ENDS_WITHIN_S, "the console outlived its client"
                await asyncio.sleep(0.1)
            assert (folder / "latest.pt").is_file(), "the console ended without saving"
            while lock.owned_elsewhere(folder):
                assert time.monotonic() - left < ENDS_WITHIN_S, "the session is still locked"
                await asyncio.sleep(0.1)
            if way == "server-stopped":
                assert s.p.wait(ENDS_WITHIN_S) == 0

    run(check())
