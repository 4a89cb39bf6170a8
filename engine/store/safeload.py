"""Files are data, bounded: what a freqtui file may cost before it is trusted.

engine/store/files.py calls `check_archive` before `torch.load` and `check_payload` on what it
returned, before the checksum or anything else walks it (then `Snapshot.from_dict`,
engine/store/snapshot.py, checks what each field means):

- the archive: a size cap on the file, and on each zip member, compressed and not
  (torch writes every member stored, never deflated, so a deflated member is refused
  before anything inflates it: a 1 MB zip bomb costs nothing);
- the structure: a walk with a node budget and a depth limit that stops early, so a list
  that holds itself, or shared nested lists that would take 2^60 steps to walk, are
  refused in microseconds, before the checksum recurses into them;
- the schema: top-level keys and types, the history's shape and ranges, and the config
  validated by RunConfig (engine/config.py bounds every size) before any tensor or array
  is made from it.

`precheck` runs the structure and schema checks before torch is even imported: it reads
the archive's pickle with an unpickler that knows only the four names a freqtui file uses
(tensors become placeholders, their bytes are never read). A hostile file is then refused
in a tenth of a second instead of the second and a half torch's import takes; a file it
cannot judge that way (another name, a plain pickle) goes on to torch.load and the same
checks, as before.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import stat
import zipfile
from pathlib import Path
from typing import Any

from engine.errors import FreqtuiError

MAX_FILE_BYTES = 256 * 2**20  # a hidden-512, 4-layer snapshot with Adam state is ~90 MB
MAX_MEMBER_BYTES = 64 * 2**20  # the largest tensor of that model is 4 MB
MAX_MEMBERS = 4096
MAX_NODES = 1_000_000  # containers and values in the payload; a real snapshot has ~30,000
MAX_DEPTH = 8  # a real snapshot nests 6 deep (trainer, optimizer, param_groups, params)
MAX_HISTORY = 200_000  # online points (thinned to 4,000) and evaluations


def refuse(path: Path, why: str) -> FreqtuiError:
    return FreqtuiError(f"{path}: refused: {why}")


def check_regular(path: Path) -> None:
    """A file to read must be a regular file: /dev/null, a fifo or a socket is not one."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # the caller's own checks say "no such file" or "cannot read"
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise FreqtuiError(f"{path}: not a regular file (a device, fifo or socket)")


def check_archive(path: Path) -> None:
    """Sizes before torch.load: the file, and each member of its zip, compressed and not."""
    path = Path(path)
    check_regular(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise refuse(path, f"{size / 2**20:,.0f} MB is larger than any freqtui file")
    if not zipfile.is_zipfile(path):
        return  # a plain pickle or garbage: the safe unpickler and the walk below bound it
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # torch.load says it more precisely ("truncated", ...)
    if len(members) > MAX_MEMBERS:
        raise refuse(path, f"the archive holds {len(members):,} members")
    total = 0
    for m in members:
        if m.compress_type != zipfile.ZIP_STORED:
            raise refuse(
                path, f"member {m.filename[:60]!r} is compressed (torch never writes that)"
            )
        if m.file_size > MAX_MEMBER_BYTES or m.compress_size > MAX_MEMBER_BYTES:
            raise refuse(path, f"member {m.filename[:60]!r} is {m.file_size / 2**20:,.0f} MB")
        if m.file_size != m.compress_size:
            raise refuse(path, f"member {m.filename[:60]!r} has inconsistent sizes")
        total += m.file_size
    if total > MAX_FILE_BYTES:
        raise refuse(path, f"the archive unpacks to {total / 2**20:,.0f} MB")


def check_structure(path: Path, obj: Any) -> None:
    """Count at most MAX_NODES values, at most MAX_DEPTH deep; stop at the first excess.
    Values are counted when their container is opened, so a wide or shared structure is
    refused after a few containers, not after walking its leaves one by one."""
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        o, depth = stack.pop()
        if isinstance(o, dict):
            items: Any = [v for kv in o.items() for v in kv]
        elif isinstance(o, (list, tuple, set, frozenset)):
            items = o
        else:
            continue
        if depth >= MAX_DEPTH:
            raise refuse(path, f"nested deeper than {MAX_DEPTH} levels (or holds itself)")
        budget -= len(items)
        if budget < 0:
            raise refuse(path, f"more than {MAX_NODES:,} values (shared or repeated nesting)")
        stack.extend((v, depth + 1) for v in items if isinstance(v, CONTAINERS))


CONTAINERS = (dict, list, tuple, set, frozenset)


TOP = {  # key: (types, required in a snapshot)
    "format": (str, True),
    "version": (int, True),
    "kind": (str, True),
    "saved_at": (str, False),
    "run_id": (str, False),
    "config": (dict, True),
    "model": (dict, True),
    "trainer": (dict, False),
    "torch_rng": ("Tensor", False),  # torch.Tensor: looked up late (checks before it need none)
    "history": (dict, False),
    "rows_per_epoch": (int, False),
    "weights": (str, False),  # which weights a snapshot holds (final, best at row R, ...)
    "checksum": (str, False),
}


def check_payload(path: Path, obj: dict[str, Any], tensor: type | None = None) -> None:
    """Structure, then schema, then the config through RunConfig; FreqtuiError on one line.
    `tensor`: what stands for a tensor (torch.Tensor unless given: `precheck`'s placeholder)."""
    if tensor is None:
        import torch  # late: the checks before torch.load run without it

        tensor = torch.Tensor
    path = Path(path)
    check_structure(path, obj)
    for key, (declared, _) in TOP.items():
        kind = tensor if declared == "Tensor" else declared
        if key in obj and not (isinstance(obj[key], kind) and not isinstance(obj[key], bool)):
            raise refuse(path, f"{key} is a {type(obj[key]).__name__}, not a {kind.__name__}")
    for key in ("saved_at", "run_id", "checksum", "format", "kind", "weights"):
        if isinstance(obj.get(key), str) and len(obj[key]) > 200:
            raise refuse(path, f"{key} is {len(obj[key]):,} characters long")
    run_id = obj.get("run_id")
    if isinstance(run_id, str) and (not run_id or "/" in run_id or run_id in (".", "..")):
        raise refuse(path, f"run id {run_id!r} is not a folder name")
    model = obj.get("model")
    if isinstance(model, dict):
        for k, v in model.items():
            if not isinstance(k, str) or not isinstance(v, tensor):
                raise refuse(path, "model weights are not a dict of named tensors")
    if "history" in obj:
        check_history(path, obj["history"])
    if "config" in obj:
        check_config(path, obj["config"])


class Placeholder:
    """A tensor or storage before torch is loaded: its type, never its bytes."""

    def __init__(self, *_: Any) -> None:
        pass


class _Unknown(Exception):
    """The pickle names something a freqtui file does not: leave it to torch.load."""


class _Unpickler(pickle.Unpickler):
    NAMES = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): Placeholder,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.NAMES:
            return self.NAMES[module, name]
        if module == "torch" and name.endswith("Storage") and name.isidentifier():
            return Placeholder
        raise _Unknown(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Placeholder:
        return Placeholder()


def precheck(path: Path) -> None:
    """Before torch: the archive's pickle through the checks `check_payload` makes, the
    header first (engine/store/snapshot.py); FreqtuiError on one line for what they
    refuse. Silent for what it cannot judge: torch.load and the checks after it decide."""
    from engine.store.snapshot import check_header

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(names) != 1:
                return
            data = z.read(names[0])  # its size is bounded by check_archive
        obj = _Unpickler(io.BytesIO(data)).load()
    except Exception:  # a name it does not know, a corrupt archive or pickle: torch.load
        return  # decides, and says it in its own words
    check_header(obj, path)
    check_payload(path, obj, tensor=Placeholder)


def check_config(path: Path, d: Any) -> None:
    """The config through RunConfig (types, finiteness, the sizes engine/config.py bounds) before
    any model, tensor or array is built from it."""
    from engine.config import RunConfig

    try:
        RunConfig.from_dict(d)
    except (FreqtuiError, TypeError, ValueError, OverflowError) as exc:
        raise FreqtuiError(f"{path}: its config is invalid ({_first(exc)})") from None


def check_history(path: Path, h: Any) -> None:
    """The metric history: lists of the expected records, finite numbers, bounded lengths."""

    def bad(why: str) -> FreqtuiError:
        return FreqtuiError(f"{path}: bad history ({why})")

    if not isinstance(h, dict):
        raise bad("not a dict")
    online = h.get("online", [])
    if not isinstance(online, list) or len(online) > MAX_HISTORY:
        raise bad("online is not a list of points")
    for p in online:
        if not (
            isinstance(p, (list, tuple))
            and len(p) == 3
            and _count(p[0])
            and _count(p[1])
            and _real(p[2])
        ):
            raise bad(f"an online point is {_show(p)}, not [rows, block, loss]")
    evals = h.get("evals", [])
    if not isinstance(evals, list) or len(evals) > MAX_HISTORY:
        raise bad("evals is not a list")
    for e in evals:
        if not isinstance(e, dict):
            raise bad(f"an evaluation is {_show(e)}, not a record")
        for key in ("epoch", "row", "rows_total"):
            if (key in e or key != "rows_total") and not _count(e.get(key)):
                raise bad(f"an evaluation's {key} is {_show(e.get(key))}")
        for key in ("train", "test"):
            m = e.get(key)
            if not isinstance(m, dict) or not _real(m.get("overall")):
                raise bad(f"an evaluation's {key} MSE is {_show(m)}")
            per = m.get("per_frequency", [])
            if not isinstance(per, list) or len(per) > 64 or not all(_real(v) for v in per):
                raise bad(f"an evaluation's {key} per-frequency MSE is {_show(per)}")
    by_block = h.get("online_by_block", [])
    if not isinstance(by_block, list) or len(by_block) > MAX_HISTORY:
        raise bad("online_by_block is not a list")
    for b in by_block:
        if not (
            isinstance(b, (list, tuple)) and len(b) <= 64 and all(v is None or _real(v) for v in b)
        ):
            raise bad(f"an online point by block is {_show(b)}")
    schedule = h.get("schedule", [])
    if not isinstance(schedule, list) or len(schedule) > MAX_HISTORY:
        raise bad("schedule is not a list")
    for c in schedule:
        if not isinstance(c, dict) or not all(
            _count(c.get(k)) for k in ("rows_total", "epoch", "row")
        ):
            raise bad(f"a schedule change is {_show(c)}, not a record")
        pairs = c.get("schedule")
        if (
            not isinstance(pairs, list)
            or len(pairs) > 64
            or not all(
                isinstance(p, (list, tuple))
                and len(p) == 2
                and all(isinstance(v, str) and len(v) <= 200 for v in p)
                for p in pairs
            )
        ):
            raise bad(f"a schedule change's labels are {_show(pairs)}")
    for key in ("rows_total", "stride"):
        if key in h and not _count(h[key]):
            raise bad(f"{key} is {_show(h[key])}")
    if "stride" in h and h["stride"] < 1:
        raise bad("stride must be >= 1")
    if "train_seconds" in h and not (_real(h["train_seconds"]) and h["train_seconds"] >= 0):
        raise bad(f"train_seconds is {_show(h['train_seconds'])}")


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**62


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _show(v: Any) -> str:
    text = repr(v) if not isinstance(v, (list, dict, tuple)) else type(v).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
