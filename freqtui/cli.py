"""The command line: thin, it parses flags into a RunConfig (or paths and values) and
hands them to one function of freqtui/commands/ per command. Nothing imports this module.

freqtui [flags]                      open the console and train
freqtui --resume ID|PATH             open the console on a saved session
freqtui train --headless [flags]     train without the console
freqtui train --headless --resume ID|PATH [--epochs N]   continue a saved session
freqtui sessions [--json]            list the saved sessions
freqtui sessions rm ID ... [--yes]    delete saved sessions (asks first, unless --yes)
freqtui data --out DIR               write train.csv and test.csv
freqtui eval PATH|ID [--json]        frozen MSE of saved weights or a snapshot
freqtui report PATH|ID --out DIR     Graph 1, Graph 2 (PNG) and metrics.json
freqtui compare ID|PATH ... [--png F]  compare sessions' frozen MSE (table, overlay PNG)
freqtui export ID|PATH [--csv|--json] [--out FILE]   the whole metric history
freqtui sweep --grid KEY=V1,V2 ... --seeds 0-4 [flags]  a grid of sessions on Dask
freqtui serve [--host H --port P --token T --max-consoles N] [flags]   the console in a browser

Sessions live in ./sessions/<run-id>/ unless --sessions DIR or $FREQTUI_SESSIONS says
otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
import textwrap
from pathlib import Path
from typing import Any

from engine.config import BACKENDS, DEFAULT_METHOD, METHOD_FIELDS, RunConfig, registered_methods
from engine.errors import FreqtuiError
from engine.options import option_lines, parse_assignment
from engine.store.sessions import AUTOSAVE_MIN_ROWS, resolve, sessions_dir
from engine.sweep.grid import Axis, parse_grid
from freqtui import __version__
from freqtui.commands import serve as serve_defaults  # its defaults; textual-serve loads on use
from freqtui.commands.sweep.cluster import CONNECT_TIMEOUT_S
from freqtui.commands.sweep.driver import SNAPSHOT_EVERY_S
from freqtui.export import columns_help
from freqtui.flags import FIELDS, FLAG_OF, FLAGS


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("allow_abbrev", False)  # a typo of one flag must not become another
        super().__init__(*args, **kw)

    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        sys.stderr.write(f"freqtui: error: {message}\n")
        raise SystemExit(2)


def _all_flags(p: argparse.ArgumentParser) -> set[str]:
    """Every long option string of `p` and of its subcommands."""
    flags = {s for s in p._option_string_actions if s.startswith("--")}
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _all_flags(sub)
    return flags


def check_flags(p: argparse.ArgumentParser, argv: list[str]) -> None:
    """Name an unknown flag, with the closest known one, before argparse reads the rest
    (which would take the flag's value for a subcommand: "invalid choice: '3'")."""
    known = _all_flags(p)
    for token in argv:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        flag = token.split("=", 1)[0]
        if flag in known:
            continue
        close = difflib.get_close_matches(flag, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; `freqtui --help` lists the flags"
        p.error(f"unknown flag {flag}{hint}")


# flags of the console (before any command) that a command also honours from there
TOP_FLAGS_EVERYWHERE = ("--sessions", "--autosave")


def check_flag_places(p: argparse.ArgumentParser, argv: list[str]) -> None:
    """A console flag written before a command (`freqtui --epochs 3 train`) would be
    dropped without a word: refuse it, naming where it goes."""
    given: list[str] = []
    skip = False
    commands: set[str] = set()
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands = set(action.choices)
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--":
            return
        if token.startswith("-"):
            flag, has_value = token.split("=", 1)[0], "=" in token
            action = p._option_string_actions.get(flag)
            if action is not None:
                given.append(flag)
                skip = action.nargs != 0 and not has_value
            continue
        if token in commands:
            wrong = [
                f for f in given if f not in TOP_FLAGS_EVERYWHERE and f not in ("-h", "--help")
            ]
            if wrong:
                p.error(
                    f"{wrong[0]} goes after the command: freqtui {token} {wrong[0]} ... "
                    f"(before a command it would be ignored)"
                )
        return


def _option(text: str) -> tuple[str, Any]:
    try:
        return parse_assignment(text)
    except FreqtuiError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _spec_default(name: str) -> Any:
    """A RunConfig field's default, read from the dataclass (the one home of defaults)."""
    f = {f.name: f for f in dataclasses.fields(RunConfig)}[name]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def _per_method(name: str) -> str:
    """'the method's own: clock 20 (the default method), handoff 1, tbptt 1'."""
    each = ", ".join(
        f"{m.name} {m.own_default(name):g}"
        + (" (the default method)" if m.name == DEFAULT_METHOD else "")
        for m in registered_methods()
    )
    return f"default: the method's own: {each}"


def _help(field: str, text: str) -> str:
    if field in METHOD_FIELDS:
        return text % _per_method(field)
    default = _spec_default(field)
    return text % (f"{default:g}" if isinstance(default, float) else default)


def options_help() -> str:
    """Every method's -O options, one line each: the help's epilog."""
    lines = ["-O options, by method (`freqtui methods` lists the methods):"]
    for m in registered_methods():
        lines += [f"  {m.name}:", *(option_lines(m.options, "    -O ") or ["    none"])]
    return "\n".join(lines)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    p.epilog = options_help()
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # the epilog's lines stay
    g = p.add_argument_group("run configuration (defaults: SPEC §1-2 and each method's own)")
    for field, flag, kind, text in FLAGS:
        extra: dict[str, Any] = {"choices": BACKENDS} if field == "backend" else {}
        g.add_argument(flag, type=kind, dest=field, help=_help(field, text), **extra)
    g.add_argument(
        "--option",
        "-O",
        type=_option,
        action="append",
        metavar="KEY=VALUE",
        help="a method-specific option, repeatable (listed below, by method)",
    )


def run_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The run flags given: RunConfig field -> value, and `options` -> the -O options."""
    changes = {f: getattr(args, f) for f in FIELDS if getattr(args, f, None) is not None}
    if getattr(args, "option", None):
        changes["options"] = dict(args.option)
    return changes


def base_config(args: argparse.Namespace) -> RunConfig:
    """RunConfig's defaults with the run flags given (a new method brings its own lr,
    clip and epochs, and no other method's options), not yet checked."""
    return RunConfig().replace(**run_changes(args))


def config_from(args: argparse.Namespace) -> RunConfig:
    return base_config(args).validated(FLAG_OF)  # a bad value named by its flag


def grid_axes(items: list[str]) -> list[Axis]:
    """`--grid KEY=V1,V2 ...`: each key a run flag without -- (its values typed as the
    flag's) or else a -O option (typed as -O types it)."""
    kinds = {flag[2:]: (field, kind) for field, flag, kind, _ in FLAGS}  # "phase-scale"
    axes = []
    for key, values in parse_grid(items).items():
        if key not in kinds:
            typed = [parse_assignment(f"{key}={v}")[1] for v in values]
            axes.append(Axis(key, tuple(values), tuple(typed)))
            continue
        field, kind = kinds[key]
        typed = []
        for v in values:
            try:
                typed.append(kind(v))
            except ValueError:
                raise FreqtuiError(f"--grid {key}: invalid {kind.__name__} value: {v!r}") from None
        axes.append(Axis(key, tuple(values), tuple(typed), field))
    return axes


SESSIONS_HELP = "sessions folder (default: $FREQTUI_SESSIONS, else ./sessions)"


def add_sessions_flag(p: argparse.ArgumentParser, top: bool = False) -> None:
    # SUPPRESS on subcommands: `freqtui --sessions D train` must not be reset to None
    p.add_argument(
        "--sessions",
        type=Path,
        metavar="DIR",
        help=SESSIONS_HELP,
        **({} if top else {"default": argparse.SUPPRESS}),
    )


def add_autosave_flag(p: argparse.ArgumentParser, top: bool = False) -> None:
    p.add_argument(
        "--autosave",
        type=int,
        metavar="ROWS",
        help=(
            f"save a snapshot every ROWS rows (default: every half epoch, at least "
            f"{AUTOSAVE_MIN_ROWS:,} rows; 0 = only at the end)"
        ),
        default=None if top else argparse.SUPPRESS,
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="freqtui", description="Train stateful LSTMs to extract pure frequencies.")
    p.add_argument("--version", action="version", version=f"freqtui {__version__}")
    add_config_flags(p)
    p.add_argument("--resume", metavar="ID|PATH", help="resume a saved session in the console")
    add_sessions_flag(p, top=True)
    add_autosave_flag(p, top=True)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train (with --headless: without the console)")
    add_config_flags(t)
    t.add_argument("--headless", action="store_true", help="no console: progress on stdout")
    t.add_argument("--out", type=Path, help="save the trained weights here")
    t.add_argument("--resume", metavar="ID|PATH", help="continue a saved session")
    add_sessions_flag(t)
    add_autosave_flag(t)

    d = sub.add_parser("data", help="write the train and test sets as CSV")
    add_config_flags(d)
    d.add_argument("--out", type=Path, required=True, help="folder for train.csv and test.csv")

    e = sub.add_parser("eval", help="frozen MSE of saved weights or a snapshot")
    e.add_argument("path", metavar="PATH|ID", help="a weights file, a snapshot or a session id")
    e.add_argument("--json", action="store_true", help="print JSON")
    add_sessions_flag(e)

    s = sub.add_parser("sessions", help="list the saved sessions (rm: delete some)")
    s.add_argument("--json", action="store_true", help="print JSON")
    add_sessions_flag(s)
    s_sub = s.add_subparsers(dest="sessions_command", metavar="rm", parser_class=_Parser)
    rm = s_sub.add_parser("rm", help="delete saved sessions (not a live one)")
    rm.add_argument("ids", nargs="+", metavar="ID", help="session ids, exactly as listed")
    rm.add_argument("--yes", action="store_true", help="delete without asking")
    add_sessions_flag(rm)

    r = sub.add_parser("report", help="Graph 1 and Graph 2 as PNG, and metrics.json")
    r.add_argument("path", metavar="PATH|ID", help="a snapshot, a weights file or a session id")
    r.add_argument("--out", type=Path, required=True, help="folder for the report files")
    add_sessions_flag(r)

    c = sub.add_parser("compare", help="compare sessions: frozen MSE table and overlay PNG")
    c.add_argument("items", nargs="+", metavar="ID|PATH", help="sessions, folders or snapshots")
    c.add_argument("--png", type=Path, metavar="FILE", help="write the overlaid histories here")
    add_sessions_flag(c)

    x = sub.add_parser(
        "export",
        help="the metric history (online loss, frozen MSE, schedule changes) as CSV or JSON",
        description=textwrap.fill(
            "Write the whole metric history of a session or snapshot: the online loss per "
            "frequency at every logged chunk and epoch, every frozen evaluation per "
            "frequency (train and test, with the epoch and row it was taken at) and the "
            "schedule's changes. CSV unless --json (or --out FILE.json); stdout unless --out.",
            79,
        ),
        epilog=columns_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    x.add_argument("path", metavar="ID|PATH", help="a session id, folder or snapshot file")
    fmt = x.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV, a header and one row per value")
    fmt.add_argument("--json", action="store_true", help="JSON: the columns and the rows")
    x.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    add_sessions_flag(x)

    w = sub.add_parser("sweep", help="train a grid of sessions on Dask (local or a cluster)")
    add_config_flags(w)
    w.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="a run flag (without --) or a -O option and its values (repeatable)",
    )
    w.add_argument("--seeds", default="0", help="torch seeds, e.g. 0-4 or 0,3 (default 0)")
    w.add_argument(
        "--address",
        help="Dask scheduler, tls://HOST:PORT or tcp://HOST:PORT, with the security of "
        "Dask's configuration (default: $DASK_SCHEDULER_ADDRESS, else a local TLS cluster)",
    )
    w.add_argument(
        "--connect-timeout",
        type=float,
        default=CONNECT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up on --address after this long (default {CONNECT_TIMEOUT_S:g})",
    )
    w.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    w.add_argument("--name", help="the sweep's id (default: derived from the grid and flags)")
    w.add_argument(
        "--snapshot-every",
        type=float,
        default=SNAPSHOT_EVERY_S,
        metavar="SECONDS",
        help=f"each cell sends its snapshot back this often (default {SNAPSHOT_EVERY_S:g})",
    )
    add_sessions_flag(w)

    v = sub.add_parser("serve", help="the console in a web browser (textual-serve)")
    add_config_flags(v)
    v.add_argument("--resume", metavar="ID|PATH", help="open the console on a saved session")
    v.add_argument(
        "--host",
        default=serve_defaults.DEFAULT_HOST,
        help=f"address to serve on (default {serve_defaults.DEFAULT_HOST}; others are warned)",
    )
    v.add_argument(
        "--port",
        type=int,
        default=serve_defaults.DEFAULT_PORT,
        help=f"port (default {serve_defaults.DEFAULT_PORT})",
    )
    v.add_argument(
        "--token",
        help="the secret in the served URL (default: a new random one, printed at start)",
    )
    v.add_argument(
        "--max-consoles",
        type=int,
        default=serve_defaults.DEFAULT_MAX_CONSOLES,
        metavar="N",
        help=f"consoles (tabs) at once (default {serve_defaults.DEFAULT_MAX_CONSOLES})",
    )
    add_sessions_flag(v)
    add_autosave_flag(v)

    sub.add_parser("methods", help="list the training methods, their defaults and their -O options")
    return p


def console_argv(args: argparse.Namespace) -> list[str]:
    """The flags of `freqtui serve` that the console it serves takes, as argv."""
    argv: list[str] = []
    for field, flag, *_ in FLAGS:
        value = getattr(args, field, None)
        if value is not None:
            argv += [flag, str(value)]
    for key, value in getattr(args, "option", None) or []:
        argv += ["-O", f"{key}={value}"]
    if getattr(args, "resume", None):
        argv += ["--resume", args.resume]
    if getattr(args, "sessions", None) is not None:
        argv += ["--sessions", str(Path(args.sessions).absolute())]
    if getattr(args, "autosave", None) is not None:
        argv += ["--autosave", str(args.autosave)]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    check_flags(parser, argv)
    check_flag_places(parser, argv)
    args = parser.parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except FreqtuiError as exc:
        sys.stderr.write(f"freqtui: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("freqtui: interrupted\n")
        return 130
    except BrokenPipeError:  # `freqtui sessions | head -1`: the reader has all it wants
        from freqtui.shutdown import quiet_stdout

        quiet_stdout()
        return 141  # 128 + SIGPIPE, as a tool killed by the signal would report
    except OSError as exc:  # a path the checks above did not foresee: still one line
        where = f"{str(exc.filename)[:300]}: " if exc.filename else ""
        sys.stderr.write(f"freqtui: error: {where}{exc.strerror or exc}\n")
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    from engine.limits import check_autosave

    # the config's flags are checked by RunConfig.validated
    check_autosave("--autosave", getattr(args, "autosave", None))
    sessions: Path | None = getattr(args, "sessions", None)
    if args.command == "data":
        from freqtui.commands.data import data

        return data(config_from(args), args.out)
    if args.command == "eval":
        from freqtui.commands.eval import evaluate_file

        return evaluate_file(args.path, args.json, sessions)
    if args.command == "sessions" and args.sessions_command == "rm":
        from freqtui.commands.sessions import remove

        return remove(args.ids, args.yes, sessions)
    if args.command == "sessions":
        from freqtui.commands.sessions import show

        return show(args.json, sessions)
    if args.command == "report":
        from freqtui.commands.report import report

        return report(args.path, args.out, sessions)
    if args.command == "sweep":
        from freqtui.commands.sweep import sweep

        return sweep(
            base_config(args),  # each cell's config is checked with the cell's values
            grid_axes(args.grid or []),
            args.seeds,
            given=[f for f in run_changes(args) if f != "options"],
            sessions=sessions,
            name=args.name,
            address=args.address,
            workers=args.workers,
            connect_timeout=args.connect_timeout,
            snapshot_every=args.snapshot_every,
        )
    if args.command == "serve":
        from freqtui.commands.serve import serve

        if args.resume:  # a session that is not there fails here, not in every tab
            resolve(args.resume, sessions_dir(sessions))
        else:
            config_from(args)  # bad flags fail here, before the server starts
        return serve(console_argv(args), args.host, args.port, args.token, args.max_consoles)
    if args.command == "compare":
        from freqtui.commands.compare import compare

        return compare(args.items, args.png, sessions)
    if args.command == "export":
        from freqtui.commands.export import export

        return export(args.path, args.out, as_json=args.json, as_csv=args.csv, sessions=sessions)
    if args.command == "methods":
        from freqtui.commands.methods import methods

        return methods()
    from freqtui.commands.train import train

    return train(
        config_from(args),  # bad flags fail here, before the console opens
        headless=args.command == "train" and args.headless,
        out=getattr(args, "out", None),
        sessions=sessions,
        autosave=getattr(args, "autosave", None),
        resume=getattr(args, "resume", None),
        changes=run_changes(args),
    )


if __name__ == "__main__":
    raise SystemExit(main())
