"""`freqtui methods`: every training method, its own defaults and its `-O` options, read
from their one declaration (engine/methods.py); no torch is loaded."""

from __future__ import annotations

from engine.config import DEFAULT_METHOD, registered_methods
from engine.options import option_lines


def methods_text() -> str:
    """Every method: its description, its own lr, clip and epochs, its backends and its
    `-O` options with their defaults, bounds and what each does (engine/methods.py)."""
    lines = []
    for m in registered_methods():
        mark = "  (the default method)" if m.name == DEFAULT_METHOD else ""
        lines.append(f"{m.name}{mark}: {m.description}")
        lines.append(
            f"    defaults: lr {m.lr:g}, clip {m.clip:g}, epochs {m.epochs}; "
            f"backends: {', '.join(m.backends)}"
        )
        lines += option_lines(m.options, "    -O ") or ["    no -O options"]
    return "\n".join(lines)


def methods() -> int:
    print(methods_text())
    return 0
