"""The command line: thin, it parses flags into a RunConfig and hands over.

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
import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import BACKENDS, DEFAULT_METHOD, METHOD_FIELDS, RunConfig, registered_methods
from engine.errors import FreqtuiError
from engine.options import option_lines, parse_assignment
from engine.store.sessions import (
    AUTOSAVE_MIN_ROWS,
    list_sessions,
    resolve,
    sessions_dir,
)
from freqtui import __version__
from freqtui import serve as serve_defaults  # its defaults; textual-serve loads on use
from freqtui.export import columns_help
from freqtui.sweep import CONNECT_TIMEOUT_S, SNAPSHOT_EVERY_S
from freqtui.text import eval_json, eval_table, sessions_table

if TYPE_CHECKING:  # torch, numba and textual load only in the commands that use them
    from engine.run import TrainingRun


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


# (RunConfig field, flag, type, help); "%s" in a help is its default, from RunConfig or,
# for lr, clip and epochs, from each method's declaration
FLAGS: list[tuple[str, str, type, str]] = [
    ("epochs", "--epochs", int, "epochs to train (%s)"),
    ("lr", "--lr", float, "Adam learning rate (%s)"),
    ("method", "--method", str, "training method (default %s; see `freqtui methods`)"),
    (
        "backend",
        "--backend",
        str,
        "fused (compiled) or torch (reference), where the method has it (default %s)",
    ),
    ("phase_scale", "--phase-scale", float, "phase noise scale (default %s: the task as written)"),
    ("duration", "--duration", float, "seconds of signal per block (default %s)"),
    ("fs", "--fs", float, "sampling rate in Hz (default %s)"),
    ("hidden_size", "--hidden", int, "LSTM hidden size (default %s)"),
    ("num_layers", "--layers", int, "LSTM layers (default %s)"),
    ("clip", "--clip", float, "gradient clipping by total norm, 0 = off (%s)"),
    ("torch_seed", "--seed", int, "seed of the weight init (default %s)"),
    ("train_seed", "--train-seed", int, "noise seed of the train set (default %s)"),
    ("test_seed", "--test-seed", int, "noise seed of the test set (default %s)"),
]
FIELDS = [f for f, *_ in FLAGS]
FLAG_OF = {f: flag for f, flag, *_ in FLAGS}


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


def config_from(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    base = base or RunConfig()
    changes = {f: getattr(args, f) for f in FIELDS if getattr(args, f, None) is not None}
    if getattr(args, "option", None):
        changes["options"] = {**base.options, **dict(args.option)}
    elif "method" in changes and changes["method"] != base.method:
        changes["options"] = {}  # another method's options would not apply
    return base.replace(**changes).validated(FLAG_OF)  # a bad value named by its flag


def resumed_run(
    id_or_path: str | Path, args: argparse.Namespace, root: Path | None = None, **kw: Any
) -> TrainingRun:
    """`TrainingRun.resume` with the command line's flags as the changes asked for: the
    engine refuses one that would change the science of the saved run, naming its flag;
    --epochs may grow."""
    from engine.run import TrainingRun

    changes = {f: getattr(args, f, None) for f in FIELDS}
    changes["options"] = dict(getattr(args, "option", None) or {}) or None
    names = {**FLAG_OF, "options": "--option"}
    return TrainingRun.resume(id_or_path, changes=changes, names=names, root=root, **kw)


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


def sweep_config_for(args: argparse.Namespace):
    """For `freqtui sweep`: the RunConfig of one cell, i.e. the sweep's run flags with the
    cell's grid values (run flags by their name without --, anything else a -O option)."""
    probe = _Parser(prog="freqtui sweep")
    add_config_flags(probe)
    flags = {flag[2:]: field for field, flag, *_ in FLAGS}  # "phase-scale": "phase_scale"

    def config_for(values: dict[str, str], seed: int) -> RunConfig:
        tokens: list[str] = []
        options = list(args.option or [])
        for key, value in values.items():
            if key in flags:
                tokens += [f"--{key}", value]
            else:
                options.append(_option(f"{key}={value}"))
        cell = probe.parse_args(tokens)
        merged = argparse.Namespace(**vars(args))
        for dest in flags.values():
            if getattr(cell, dest) is not None:
                setattr(merged, dest, getattr(cell, dest))
        merged.torch_seed = seed
        merged.option = options or None
        try:
            return config_from(merged)
        except FreqtuiError as exc:
            raise FreqtuiError(f"grid cell {values}: {exc}") from None

    return config_for


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
        from freqtui.headless import quiet_stdout

        quiet_stdout()
        return 141  # 128 + SIGPIPE, as a tool killed by the signal would report
    except OSError as exc:  # a path the checks above did not foresee: still one line
        where = f"{str(exc.filename)[:300]}: " if exc.filename else ""
        sys.stderr.write(f"freqtui: error: {where}{exc.strerror or exc}\n")
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    from engine.limits import check_autosave

    check_autosave(getattr(args, "autosave", None))  # config flags: RunConfig.validated
    if args.command == "data":
        return cmd_data(args)
    if args.command == "eval":
        return cmd_eval(args)
    if args.command == "sessions" and args.sessions_command == "rm":
        from freqtui.housekeeping import cmd_sessions_rm

        return cmd_sessions_rm(args)
    if args.command == "sessions":
        return cmd_sessions(args)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "sweep":
        from freqtui.sweep import cmd_sweep

        return cmd_sweep(args, sweep_config_for(args))
    if args.command == "serve":
        from freqtui.serve import serve

        if args.resume:  # a session that is not there fails here, not in every tab
            resolve(args.resume, sessions_dir(getattr(args, "sessions", None)))
        else:
            config_from(args)  # bad flags fail here, before the server starts
        return serve(console_argv(args), args.host, args.port, args.token, args.max_consoles)
    if args.command == "compare":
        from freqtui.compare import cmd_compare

        return cmd_compare(args)
    if args.command == "export":
        from freqtui.export import cmd_export

        return cmd_export(args)
    if args.command == "methods":
        print(methods_text())
        return 0
    config = config_from(args)  # bad flags fail here, before the console opens
    from engine.run import TrainingRun

    root = getattr(args, "sessions", None)
    resume = getattr(args, "resume", None)
    if resume:
        run = resumed_run(resume, args, root, save_on_end=True)
    else:
        run = TrainingRun(config, sessions_root=root, save_on_end=True)
    run.set_autosave(getattr(args, "autosave", None))
    if args.command == "train" and args.headless:
        from freqtui.headless import train_headless

        return train_headless(run, args.out, resumed=bool(resume))
    from freqtui.app import run_app

    return run_app(run)


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


def cmd_data(args: argparse.Namespace) -> int:
    from engine.signals import test_set, train_set, write_csv
    from engine.store.writable import check_out_folder

    config = config_from(args)
    out: Path = args.out
    # a read-only or full folder, a fifo or a link as train.csv: one line before any work
    check_out_folder(out, ["train.csv", "test.csv"], "--out", "CSV files")
    for name, signal in (("train", train_set(config)), ("test", test_set(config))):
        try:
            write_csv(signal, out / f"{name}.csv")
        except OSError as exc:
            raise FreqtuiError(
                f"{out / f'{name}.csv'}: not written ({exc.strerror or exc})"
            ) from None
        print(f"wrote {out / f'{name}.csv'}: {signal.n_blocks * signal.n_samples} rows")
    return 0


def resolve_path(args: argparse.Namespace) -> Path:
    """The file a PATH|ID argument names, sessions looked up in --sessions."""
    return resolve(args.path, sessions_dir(getattr(args, "sessions", None)))


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.store.files import read

    path = resolve_path(args)
    snap = read(path)  # a file refused before torch.load is refused without torch
    from engine.evaluation import evaluate

    config = snap.config
    result = evaluate(snap.build_model(), config)
    note = snap.weights_note
    if args.json:
        print(json.dumps(eval_json(path, config, result, note), indent=2))
    else:
        print(f"{path}: method {config.method}, phase scale {config.phase_scale:g}")
        print(f"weights: {note}")
        print(eval_table(result.train, result.test, config.frequencies))
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    root = sessions_dir(getattr(args, "sessions", None))
    infos = list_sessions(root)
    if args.json:
        rows = [
            {**{k: v for k, v in vars(i).items() if k != "path"}, "path": str(i.path)}
            for i in infos
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not infos:
        print(f"no sessions in {root}")
        return 0
    print(sessions_table(infos))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from freqtui.report import write_report

    path = resolve_path(args)
    for p in write_report(path, args.out):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
