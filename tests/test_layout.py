"""The boundary between engine and console, as the README's layout draws it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI = {"textual", "rich", "plotext", "textual_plotext", "argparse"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_the_engine_imports_no_ui_and_no_argparse():
    for path in (ROOT / "engine").rglob("*.py"):
        found = {m for m in imports(path) if m.split(".")[0] in UI}
        assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"


def test_nothing_in_the_console_imports_the_cli():
    for path in (ROOT / "freqtui").rglob("*.py"):
        if path.name == "cli.py":
            continue
        found = {m for m in imports(path) if m == "freqtui.cli" or m.startswith("freqtui.cli.")}
        assert not found, f"{path.relative_to(ROOT)} imports the CLI"
