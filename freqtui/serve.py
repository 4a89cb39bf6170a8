"""`freqtui serve`: the console in a web browser, through textual-serve.

Every browser tab that opens the page starts its own `freqtui` process with the flags
given here (textual-serve runs it with Textual's web driver and relays the terminal over
a websocket), so each tab is a console on its own run, saving into the same sessions
folder."""

from __future__ import annotations

import shlex
import sys

INSTALL_HINT = (
    "freqtui serve needs textual-serve, an optional extra: "
    "python -m pip install -e '.[serve]' (or: python -m pip install textual-serve)"
)


def serve(app_argv: list[str], host: str, port: int) -> int:
    """Serve `freqtui <app_argv>` at http://host:port until Ctrl-C."""
    try:
        from textual_serve.server import Server
    except ImportError:
        sys.stderr.write(f"freqtui: {INSTALL_HINT}\n")
        return 2
    command = shlex.join([sys.executable, "-m", "freqtui.cli", *app_argv])
    Server(command, host=host, port=port, title="freqtui").serve()
    return 0
