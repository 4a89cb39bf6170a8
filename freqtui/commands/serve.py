"""`freqtui serve`: the console in a web browser, through textual-serve, behind a secret.

Every browser tab that opens the page starts its own `freqtui` process with the flags
given here (textual-serve runs it with Textual's web driver and relays the terminal over
a websocket), so each tab is a console on its own run, saving into the same sessions
folder. Anyone who can open a console can train, read and overwrite those sessions, so:

- A token, like Jupyter's: random per server (or --token), in the URL printed at start.
  Every HTTP request and the websocket need it, as `?token=` or as the cookie the page
  sets (HttpOnly, SameSite=Strict: a page of another site never sends it); else 403.
- The websocket must come from a page of this server: its Origin names the served host.
- At most --max-consoles consoles at once; past that, a page (and a websocket refusal,
  503) says so. A console's slot is free once its process has ended.
- The terminal size a client asks for is clamped to MAX_COLUMNS x MAX_ROWS.
- A client that goes away ends its console: textual-serve asks the app to quit (it stops
  and saves); one that has not ended CONSOLE_QUIT_S later gets SIGTERM (stop, save, exit
  143), and SIGKILL CONSOLE_TERM_S after that.
- A console that cannot start (a session in use, a bad file) shows its error in the tab.
- --host other than loopback is served with a warning naming the risk; a bad port or a
  port in use is one line, exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import html
import ipaddress
import logging
import math
import re
import secrets
import shlex
import signal
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

from engine.errors import FreqtuiError

INSTALL_HINT = (
    "freqtui serve needs textual-serve, an optional extra: "
    "python -m pip install -e '.[serve]' (or: python -m pip install textual-serve)"
)
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8000
DEFAULT_MAX_CONSOLES = 4  # each console is a training process: a few per core at most
MAX_CONSOLES = 64
# measured on 2 loaded cores: at 300 x 100 a console showed its state check in 7 s; at
# 500 x 200 its UI still had not after 40 s (each frame is 100,000 cells)
MAX_COLUMNS, MAX_ROWS = 300, 100
TOKEN_BYTES = 24  # secrets.token_urlsafe: 32 characters
TOKEN_FORM = re.compile(r"[A-Za-z0-9._~-]{16,256}")  # it goes in a URL as it is
CONSOLE_QUIT_S = 6.0  # a console whose client left gets this long to stop and save
CONSOLE_TERM_S = 3.0  # then SIGTERM (which saves too); SIGKILL this long after that
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
HOST_FORM = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?")


# ---- the checks, before anything is bound ---------------------------------------------
def check_flags(port: int, token: str | None, max_consoles: int) -> None:
    """FreqtuiError, one line, for a flag that cannot be served."""
    if not 1 <= port <= 65535:
        raise FreqtuiError(f"--port {port}: a port is a number from 1 to 65535")
    if token is not None and not TOKEN_FORM.fullmatch(token):
        raise FreqtuiError(
            "--token: use 16 to 256 letters, digits or . _ ~ - (it goes in the URL as it is)"
        )
    if not 1 <= max_consoles <= MAX_CONSOLES:
        raise FreqtuiError(
            f"--max-consoles {max_consoles}: from 1 to {MAX_CONSOLES} (each console trains)"
        )


def is_loopback(host: str) -> bool:
    """True when `host` names only this machine's loopback addresses."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    if name in WILDCARDS:
        return False
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name).is_loopback
    try:  # a name: loopback if everything it resolves to is
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def host_warning(host: str, port: int) -> str | None:
    """The warning for a --host others can reach; None for loopback."""
    if is_loopback(host):
        return None
    where = (
        "every network interface of this machine"
        if host.strip("[]") in WILDCARDS
        else f"{host}, an address other machines can reach"
    )
    return (
        f"freqtui: warning: --host {host} serves on {where}: whoever reaches port {port} "
        "and has the token runs consoles that train, read and overwrite your sessions, "
        "and plain HTTP carries the token and every key unencrypted; use --host 127.0.0.1 "
        "(the default, localhost) with an SSH tunnel instead"
    )


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address of `host` (both of localhost's), bound before
    the server starts so that a port in use is one line; FreqtuiError otherwise."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise FreqtuiError(f"cannot serve on {where}: {exc.strerror or exc}") from None
    socks: list[socket.socket] = []
    unavailable: OSError | None = None
    seen = set()
    for family, kind, proto, _, addr in infos:
        if (family, addr) in seen:
            continue
        seen.add((family, addr))
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not a port in use
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) and unavailable is None:
                unavailable = exc  # e.g. ::1 without IPv6: the other address may do
                continue
            for s in socks:
                s.close()
            if exc.errno == errno.EADDRINUSE:
                raise FreqtuiError(
                    f"cannot serve on {where}: the port is in use (another server?); "
                    "choose another with --port"
                ) from None
            raise FreqtuiError(f"cannot serve on {where}: {exc.strerror or exc}") from None
        socks.append(sock)
    if not socks:
        reason = unavailable.strerror if unavailable is not None else "no address"
        raise FreqtuiError(f"cannot serve on {where}: {reason}")
    return socks


def bounded(value: Any, high: int, default: int) -> int:
    """A terminal dimension a client asked for, as an int in 1..high."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return min(max(int(value), 1), high)


def origin_ok(origin: str | None, host_header: str, names: frozenset[str] | None) -> bool:
    """A websocket's Origin must be the page this server served: the same host and port
    the browser asked for, and (unless serving on every interface) a name of the host."""
    if not origin:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != host_header.lower():
        return False
    return names is None or (parts.hostname or "") in names


def url_host(host: str) -> str:
    """`host` as it goes in a URL (IPv6 in brackets); a wildcard as loopback."""
    name = host.strip("[]")
    if name in WILDCARDS:
        name = "127.0.0.1" if name != "::" else "::1"
    return f"[{name}]" if ":" in name else name


# ---- the server -----------------------------------------------------------------------
def serve(
    app_argv: list[str],
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    max_consoles: int = DEFAULT_MAX_CONSOLES,
) -> int:
    """Serve `freqtui <app_argv>` at http://host:port/?token=... until Ctrl-C."""
    check_flags(port, token, max_consoles)
    try:
        import textual_serve.server  # noqa: F401
    except ImportError:
        sys.stderr.write(f"freqtui: {INSTALL_HINT}\n")
        return 2
    warning = host_warning(host, port)
    if warning:
        sys.stderr.write(warning + "\n")
        sys.stderr.flush()
    socks = bind(host, port)
    # exec: the console is the shell's process itself, so a SIGTERM reaches it
    command = "exec " + shlex.join([sys.executable, "-m", "freqtui.cli", *app_argv])
    server = _server_class()(
        command,
        host=host,
        port=port,
        token=token or secrets.token_urlsafe(TOKEN_BYTES),
        max_consoles=max_consoles,
    )
    server.serve_on(socks)
    return 0


def _server_class():  # textual-serve is optional: imported only when serving
    import aiohttp_jinja2
    from aiohttp import web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server, to_int

    class Console(AppService):
        """One console process: its terminal size bounded, its end bounded in time, and
        its error shown in the tab when it could not start."""

        stderr_tail = b""

        async def _open_app_process(self, width: int = 80, height: int = 24):
            process = await super()._open_app_process(width, height)
            process.stderr = _Tee(process.stderr, self)
            return process

        async def start(self, width: int, height: int) -> None:
            await super().start(bounded(width, MAX_COLUMNS, 80), bounded(height, MAX_ROWS, 24))

        async def set_terminal_size(self, width: int, height: int) -> None:
            await super().set_terminal_size(
                bounded(width, MAX_COLUMNS, 80), bounded(height, MAX_ROWS, 24)
            )

        async def run(self) -> None:
            await super().run()  # until the console's output ends
            process = self._process
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), CONSOLE_QUIT_S)
            if process.returncode not in (None, 0) and self.stderr_tail.strip():
                # e.g. `serve --resume ID` of a session another console owns: say so in
                # the tab, not only in the server's log
                text = self.stderr_tail.decode("utf-8", "replace").strip()
                text = "\r\n".join(text.splitlines()[-6:])
                with contextlib.suppress(Exception):
                    await self.remote_write_bytes(
                        b"\x1b[?1049l\x1b[2J\x1b[H\x1b[1;31m"
                        + text.encode()
                        + b"\x1b[0m\r\n\r\n(reload the page for a new console)\r\n"
                    )
            with contextlib.suppress(Exception):
                await self.remote_close()  # the tab shows "Session ended", not a blank

        async def end(self) -> None:
            """Ask the app to quit (it saves); SIGTERM, then SIGKILL, if it does not."""
            process = self._process
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(self.stop(), CONSOLE_QUIT_S)
            if process is None or process.returncode is not None:
                return
            for kill, wait in ((process.terminate, CONSOLE_TERM_S), (process.kill, None)):
                with contextlib.suppress(ProcessLookupError):
                    kill()
                try:
                    await asyncio.wait_for(process.wait(), wait)
                    return
                except asyncio.TimeoutError:
                    continue

    class GuardedServer(Server):
        def __init__(self, command: str, *, token: str, max_consoles: int, **kw: Any) -> None:
            super().__init__(command, title="freqtui", **kw)
            self.token = token
            self.max_consoles = max_consoles
            self.consoles = 0
            self.sockets: set[web.WebSocketResponse] = set()
            self.cookie = f"freqtui-token-{self.port}"  # cookies are shared across ports
            name = self.host.strip("[]").lower()
            if name in WILDCARDS:
                self.origin_names: frozenset[str] | None = None  # any name of this machine
            elif is_loopback(name):
                self.origin_names = LOOPBACK_NAMES | {name}
            else:
                self.origin_names = frozenset({name})
            self.public_url = f"http://{url_host(self.host)}:{self.port}"
            self.url = f"{self.public_url}/?token={self.token}"

        def has_token(self, request: web.Request) -> bool:
            for given in (request.query.get("token"), request.cookies.get(self.cookie)):
                if given and hmac.compare_digest(given.encode(), self.token.encode()):
                    return True
            return False

        @web.middleware
        async def guard(self, request: web.Request, handler):
            if not self.has_token(request):
                return forbidden(
                    "this freqtui server needs its token: open the URL it printed "
                    "when it started (…/?token=…)"
                )
            response = await handler(request)
            if request.query.get("token") and not response.prepared:
                response.set_cookie(
                    self.cookie, self.token, httponly=True, samesite="Strict", path="/"
                )
            return response

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(self.guard)
            return app

        async def on_startup(self, app: web.Application) -> None:
            print(f"freqtui serve: open {self.url}", flush=True)
            print(
                f"freqtui serve: each tab is a console of its own (at most {self.max_consoles} "
                "at once); Ctrl-C stops the server",
                flush=True,
            )

        async def on_shutdown(self, app: web.Application) -> None:
            # Ctrl-C, SIGTERM: every tab's socket closes, so every console quits and saves
            # now rather than after aiohttp's shutdown timeout
            for websocket in list(self.sockets):
                with contextlib.suppress(Exception):
                    await websocket.close(code=1001, message=b"the server stops")

        def full(self) -> bool:
            return self.consoles >= self.max_consoles

        def full_text(self) -> str:
            return (
                f"All {self.max_consoles} consoles of this server are in use. Quit one "
                "(q in its tab) or close its tab, then reload this page."
            )

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            if self.full():
                return page(503, "freqtui: no console free", self.full_text())
            if not HOST_FORM.fullmatch(request.host):
                return page(400, "freqtui: bad request", "a Host header this server cannot serve")
            # the page's own host (not --host): the cookie and the Origin then match
            context = {
                "font_size": bounded(request.query.get("fontsize", "16"), 64, 16),
                "app_websocket_url": f"ws://{request.host}/ws",
                "config": {"static": {"url": "/static/"}},
                "application": {"name": self.title},
            }
            response = aiohttp_jinja2.render_template("app_index.html", request, context)
            response.headers["Cache-Control"] = "no-store"
            response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
            return response

        async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
            if not origin_ok(request.headers.get("Origin"), request.host, self.origin_names):
                return forbidden("the console's websocket opens only from this server's page")
            if self.full():
                return web.Response(status=503, text=self.full_text())
            self.consoles += 1  # held until the console's process has ended
            try:
                return await self._console(request)
            finally:
                self.consoles -= 1

        async def _console(self, request: web.Request) -> web.WebSocketResponse:
            """textual-serve's handle_websocket, with the Console above."""
            websocket = web.WebSocketResponse(heartbeat=15)
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            console: Console | None = None
            self.sockets.add(websocket)
            try:
                await websocket.prepare(request)
                console = Console(
                    self.command,
                    write_bytes=websocket.send_bytes,
                    write_str=websocket.send_str,
                    close=websocket.close,
                    download_manager=self.download_manager,
                    debug=self.debug,
                )
                await console.start(width, height)
                with contextlib.suppress(Exception):  # a bad message ends the console
                    await self._process_messages(websocket, console)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await websocket.close()
            finally:
                self.sockets.discard(websocket)
                if console is not None:
                    await console.end()
            return websocket

        def serve_on(self, socks: list[socket.socket]) -> None:
            """Server.serve, on sockets bound already."""
            self.initialize_logging()
            logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # no tokens logged
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            for s in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(s, self.request_exit)
            web.run_app(
                self._make_app(),
                sock=socks,
                handle_signals=False,
                loop=loop,
                print=lambda *args: None,
            )

    def forbidden(text: str) -> web.Response:
        return page(403, "freqtui: forbidden", text)

    def page(status: int, title: str, text: str) -> web.Response:
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body style='font-family: sans-serif; margin: 3em'>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
        )
        return web.Response(status=status, text=body, content_type="text/html")

    return GuardedServer


class _Tee:
    """A console's stderr stream, read by textual-serve, whose last bytes are kept."""

    KEEP = 4096

    def __init__(self, stream: asyncio.StreamReader, owner: Any) -> None:
        self._stream = stream
        self._owner = owner

    async def read(self, n: int = -1) -> bytes:
        data = await self._stream.read(n)
        self._owner.stderr_tail = (self._owner.stderr_tail + data)[-self.KEEP :]
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
