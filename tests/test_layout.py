"""The house's layout as the README draws it: the engine imports no UI and no argparse,
the console reaches only the engine modules listed here, nothing imports the CLI, no
two modules import each other in a circle (late imports included), and every training
method is declared once, with one Trainer."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI = {"textual", "rich", "plotext", "textual_plotext", "argparse"}
PACKAGES = ("engine", "freqtui")

# the engine modules that freqtui/ imports (anywhere, late imports included). A new one
# is a new door between console and engine: the test fails so that it is a decision.
# (engine.options: `-O` parsing and the options' lines in `freqtui methods` and --help;
# engine.store.snapshot: the typed file the sweep's driver reads its cells' progress from;
# engine.sweep.*: the sweep's grid, cells, their state on disk and results, which the
# sweep command drives on Dask)
CONSOLE_REACHES = {
    "engine.sweep.cell",
    "engine.sweep.grid",
    "engine.sweep.results",
    "engine.sweep.state",
    "engine.store.compare",
    "engine.config",
    "engine.errors",
    "engine.evaluation",
    "engine.events",
    "engine.export",
    "engine.store.files",
    "engine.history",
    "engine.limits",
    "engine.store.lock",
    "engine.options",
    "engine.run",
    "engine.store.sessions",
    "engine.signals",
    "engine.store.snapshot",
    "engine.store.writable",
}

# the engine modules that the Textual console itself (freqtui/app.py, messages.py,
# screens/, widgets/) imports: the run (the one door), its events, config and errors.
# engine.store.* only where no run exists to ask: the session browser lists and deletes
# sessions (sessions), the compare screen reads their files (compare), and the app's
# session list (`action_open_sessions`: sessions, compare.list_models); the hand-over
# itself is TrainingRun.hand_over.
TUI_REACHES = {
    "engine.config",
    "engine.errors",
    "engine.events",
    "engine.run",
    "engine.store.compare",
    "engine.store.sessions",
}
TUI = ("freqtui/app.py", "freqtui/messages.py", "freqtui/screens", "freqtui/widgets")


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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def own_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def own_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project's modules that `path` imports: for each import the longest own module
    it names (`from a.b import c` is a.b.c when c is a module); relative imports too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()

    def add(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = name.split(".")[: None if path.name == "__init__.py" else -1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            for a in node.names:
                full = f"{mod}.{a.name}"
                add(full if full in known else mod)
    return out


def test_the_engine_imports_no_ui_and_no_argparse():
    for path in (ROOT / "engine").rglob("*.py"):
        found = {m for m in imports(path) if m.split(".")[0] in UI}
        assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"


def test_only_the_cli_parses_flags():
    # an argparse Namespace never leaves freqtui/cli.py: the commands take typed arguments
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if path == ROOT / "freqtui" / "cli.py":
                continue
            found = {m for m in imports(path) if m.split(".")[0] == "argparse"}
            assert not found, f"{path.relative_to(ROOT)} imports argparse"


def test_nothing_in_the_console_imports_the_cli():
    for path in (ROOT / "freqtui").rglob("*.py"):
        if path.name == "cli.py":
            continue
        found = {m for m in imports(path) if m == "freqtui.cli" or m.startswith("freqtui.cli.")}
        assert not found, f"{path.relative_to(ROOT)} imports the CLI"


def test_the_console_reaches_only_the_engine_modules_it_is_allowed():
    modules = own_modules()
    known = set(modules)
    reached: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name.startswith("freqtui"):
            for target in own_imports(path, name, known):
                if target.startswith("engine"):
                    reached.setdefault(target, set()).add(str(path.relative_to(ROOT)))
    new = {m: sorted(reached[m]) for m in set(reached) - CONSOLE_REACHES}
    assert not new, f"the console reaches new engine modules: {new}"


def test_the_tui_reaches_the_engine_through_the_run_its_events_config_and_errors():
    modules = own_modules()
    known = set(modules)
    reached: dict[str, set[str]] = {}
    for name, path in modules.items():
        rel = str(path.relative_to(ROOT))
        if not any(rel == part or rel.startswith(part + "/") for part in TUI):
            continue
        for target in own_imports(path, name, known):
            if target.startswith("engine"):
                reached.setdefault(target, set()).add(rel)
    assert "engine.run" in reached and "engine.events" in reached  # the check can see them
    new = {m: sorted(reached[m]) for m in set(reached) - TUI_REACHES}
    assert not new, f"the console reaches engine modules past its door: {new}"


def circles(graph: dict[str, set[str]]) -> list[str]:
    """Each import that closes a circle, as `a -> b -> ... -> a`."""

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo += graph.get(m, ())
        return False

    return sorted(f"{a} -> {b} -> ... -> {a}" for a in graph for b in graph[a] if reaches(b, a))


def test_no_import_circle():
    modules = own_modules()
    known = set(modules)
    graph = {name: own_imports(path, name, known) for name, path in modules.items()}
    assert len(graph) > 40 and not circles(graph), circles(graph)


def test_a_circle_through_a_late_import_is_seen(tmp_path):
    # the check above can fail: two modules that import each other, one of them late
    (tmp_path / "a.py").write_text("from engine import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from engine.a import x\n")
    known = {"engine.a", "engine.b", "engine.c"}
    graph = {
        "engine.a": own_imports(tmp_path / "a.py", "engine.a", known),
        "engine.b": own_imports(tmp_path / "b.py", "engine.b", known),
        "engine.c": {"engine.a"},
    }
    assert graph["engine.a"] == {"engine.b"} and graph["engine.b"] == {"engine.a"}
    assert len(circles(graph)) == 2  # a -> b and b -> a; c only leads in


def test_every_method_is_declared_once_with_one_trainer():
    from engine.methods import METHODS
    from engine.training import TRAINERS

    assert sorted(cls.spec.name for cls in TRAINERS) == sorted(METHODS)
    assert all(cls.method == cls.spec.name for cls in TRAINERS)
    # each option has one declaration (an Option named by it, in engine/methods.py),
    # and no dict elsewhere holds it as a key (a default, a type or a bound of its own)
    sources = {
        p.relative_to(ROOT): p.read_text(encoding="utf-8") for p in (ROOT / "engine").rglob("*.py")
    }
    for method in METHODS.values():
        for option in method.options:
            declared = [
                str(p) for p, text in sources.items()
                for _ in re.finditer(rf'Option\(\s*"{option.name}"', text)
            ]  # fmt: skip
            keyed = [str(p) for p, text in sources.items() if f'"{option.name}": ' in text]
            assert declared == ["engine/methods.py"] and not keyed, (option.name, declared, keyed)


def test_the_methods_and_their_options_load_without_torch():
    # `freqtui methods`, --help and the config's checks read the declarations: no torch
    code = (
        "import sys; from engine.config import RunConfig, registered_methods; "
        "RunConfig(method='clock', options={'thr': 0.1}).validated(); "
        "assert registered_methods(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "False", (out.stdout, out.stderr)
