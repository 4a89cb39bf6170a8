"""`freqtui serve` in a real browser: Debian's chromium, headless, driven over the
DevTools protocol (aiohttp, which textual-serve brings). The page loads, the console draws
(the screenshot is saved as serve_screenshot.png under the test's tmp folder), and a key
pressed in the page reaches the app: `s` writes a snapshot into the sessions folder.
The page is opened with the server's token in its URL, as a user opens the printed URL;
the page's scripts, styles and websocket then pass on the cookie it set.

Everything talks over 127.0.0.1: chromium resolves no other host (the page asks for a web
font from the internet; it is refused)."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,860",
]
WAIT_S = 90.0
TOKEN = "browser-test-token-0123456789"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (`apt-get install -y chromium`; .ci/run does it)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")
        time.sleep(0.25)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class DevTools:
    """Just enough of the Chrome DevTools protocol: one page, commands and replies."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):
        n = next(self.ids)
        await self.ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == n:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def evaluate(self, expression: str):
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    async def key(self, char: str) -> None:
        code = f"Key{char.upper()}"
        vk = ord(char.upper())
        await self.call(
            "Input.dispatchKeyEvent",
            type="keyDown",
            key=char,
            code=code,
            text=char,
            windowsVirtualKeyCode=vk,
        )
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=char, code=code)

    async def screenshot(self) -> bytes:
        r = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(r["data"])


def drawn_share(png: bytes) -> tuple[float, int]:
    """Share of pixels that differ from the page's background, and distinct colours."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    background = img[2, 2]
    differs = np.abs(img - background).sum(axis=-1) > 0.05
    colours = len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    return float(differs.mean()), colours


def test_the_console_in_chromium_draws_and_takes_keys(tmp_path):
    sessions = tmp_path / "sessions"
    port = free_port()
    env = {**os.environ, "FREQTUI_SESSIONS": str(sessions), "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "serve.log", "w") as server_log:
        serve_and_drive(tmp_path, sessions, port, env, server_log)


def serve_and_drive(tmp_path: Path, sessions: Path, port: int, env, server_log) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "freqtui.cli", "serve", "--host", "127.0.0.1"]
        + ["--port", str(port), "--token", TOKEN, "--method", "handoff", "--backend", "torch"]
        + ["--duration", "1", "--epochs", "50", "--autosave", "0"],
        stdout=server_log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # the app processes it starts go with it at the end
    )
    profile = tmp_path / "profile"
    browser = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/?token={TOKEN}"
        wait_until(lambda: http_ok(url), "the server to answer")
        active = profile / "DevToolsActivePort"
        wait_until(lambda: active.exists() and active.read_text().count("\n") >= 1, "devtools")
        devtools_port = int(active.read_text().splitlines()[0])
        asyncio.run(drive(tmp_path, url, devtools_port, sessions))
    finally:
        for proc in (browser, server):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def drive(tmp_path: Path, url: str, devtools_port: int, sessions: Path) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{devtools_port}/json/list") as r:
            pages = [t for t in await r.json() if t["type"] == "page"]
        async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            dt = DevTools(ws)
            await dt.call("Page.enable")
            await dt.call("Page.navigate", url=url)

            async def until(check, what: str, timeout: float = WAIT_S):
                deadline = time.monotonic() + timeout
                while not await check():
                    if time.monotonic() > deadline:
                        raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")
                    await asyncio.sleep(0.25)

            # textual-serve marks the page once the app's first output arrived
            await until(
                lambda: dt.evaluate("document.body.classList.contains('-first-byte')"),
                "the console's first output in the page",
            )
            # the app started training: its session folder exists (a run id claims it)
            await until(
                lambda: asyncio.sleep(0, sessions.is_dir() and any(sessions.iterdir())),
                "the served app's session folder",
            )
            await asyncio.sleep(4)  # let the console lay out and draw its panels
            before = await dt.screenshot()
            (tmp_path / "serve_screenshot.png").write_bytes(before)
            share, colours = drawn_share(before)
            assert share > 0.15 and colours > 20, (share, colours)
            text = await dt.evaluate("document.body.innerText")
            assert "Session ended" not in (text or "")

            (folder,) = list(sessions.iterdir())
            assert not (folder / "latest.pt").exists()  # --autosave 0: only keys save
            await dt.evaluate(
                "(document.querySelector('.xterm-helper-textarea') || document.body).focus()"
            )
            await dt.key("s")
            await until(
                lambda: asyncio.sleep(0, (folder / "latest.pt").exists()),
                "the snapshot the s key saves",
            )
            after = await dt.screenshot()
            (tmp_path / "serve_screenshot_after_s.png").write_bytes(after)
