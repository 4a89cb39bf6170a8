"""A training method's options (`-O NAME=VALUE`): each declared once, as an `Option`.

From that one declaration come its default, its type, its bounds (checked before any
work, one line naming the option and its bounds), its line in `freqtui methods` and in
the help. The declarations themselves are in engine/methods.py. This module imports no
torch: listing or checking options loads nothing heavy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import FreqtuiError

MAX_INT_OPTION = 10**9  # the size bound of an option without a high bound of its own


@dataclass(frozen=True)
class Option:
    """One `-O NAME=VALUE`: its default, its kind (int, float or str), its bounds (None:
    none on that side; `above` makes the low bound exclusive; an option without a high
    bound is still held to MAX_INT_OPTION in size) or, for a str, its choices,
    and one line saying what it does."""

    name: str
    default: int | float | str
    kind: type
    low: float | None = None
    high: float | None = None
    help: str = ""
    above: bool = False  # the value must be > low, not >= low
    choices: tuple[str, ...] = ()  # the words a str option takes

    def value(self, raw: Any, method: str) -> int | float | str:
        """`raw` as this option's kind, checked; FreqtuiError names the option and its
        bounds on one line."""
        where = f"{method} option {self.name}"
        if self.kind is str:
            if raw not in self.choices:
                raise FreqtuiError(f"{where} must be {self.bounds}, got {raw!r}")
            return str(raw)
        try:
            number = float(raw)
        except (TypeError, ValueError, OverflowError):
            raise FreqtuiError(f"{where} must be a number, got {raw!r}") from None
        if not math.isfinite(number):
            raise FreqtuiError(f"{where} must be a finite number, got {raw!r}")
        v: int | float = number
        if self.kind is int:
            if not number.is_integer():
                raise FreqtuiError(f"{where} must be an integer, got {raw!r}")
            v = raw if isinstance(raw, int) and not isinstance(raw, bool) else int(number)
        low_ok = self.low is None or (v > self.low if self.above else v >= self.low)
        high_ok = v <= (MAX_INT_OPTION if self.high is None else self.high)
        if not low_ok or not high_ok:
            if low_ok and self.high is None:
                raise FreqtuiError(f"{where} must be at most {MAX_INT_OPTION:g}, got {_num(v)}")
            raise FreqtuiError(f"{where} must be {self.bounds}, got {_num(v)}")
        return v

    @property
    def bounds(self) -> str:
        """The values it takes, as `freqtui methods` and its errors say them: `1..64`,
        `0 or 1`, `(0, 1]`, `> 1`, `>= 0`, `block or carry`."""
        if self.kind is str:
            *rest, last = self.choices
            return f"{', '.join(rest)} or {last}" if rest else last
        low, high = self.low, self.high
        if low is None and high is None:
            return "any number"
        if high is None:
            return f"{'>' if self.above else '>='} {_num(low)}"
        if low is None:
            return f"<= {_num(high)}"
        if self.kind is int and not self.above:
            return "0 or 1" if (low, high) == (0, 1) else f"in {_num(low)}..{_num(high)}"
        return f"in {'(' if self.above else '['}{_num(low)}, {_num(high)}]"

    @property
    def assignment(self) -> str:
        """NAME=DEFAULT, as it would be typed."""
        return f"{self.name}={self.default}"


def resolve(options: tuple[Option, ...], given: Mapping[str, Any], method: str) -> dict[str, Any]:
    """Every option's value (given, else its default), typed and checked. FreqtuiError
    names an option the method does not have, or the first bad value."""
    names = [o.name for o in options]
    unknown = set(given) - set(names)
    if unknown:
        takes = f"it takes: {', '.join(names)}" if names else "it takes none"
        raise FreqtuiError(f"method {method!r} has no option {', '.join(sorted(unknown))}; {takes}")
    return {o.name: o.value(given.get(o.name, o.default), method) for o in options}


def option_lines(options: tuple[Option, ...], indent: str = "") -> list[str]:
    """One line per option, aligned: `NAME=DEFAULT  BOUNDS  what it does`."""
    if not options:
        return []
    wide = max(len(o.assignment) for o in options)
    bounds = max(len(o.bounds) for o in options)
    return [f"{indent}{o.assignment:<{wide}}  {o.bounds:<{bounds}}  {o.help}" for o in options]


def _num(v: float | None) -> str:
    """A bound or a value: integers with thousands separators, others as %g."""
    if v is None:
        return ""
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:g}"


def parse_assignment(text: str) -> tuple[str, int | float | str]:
    """`NAME=VALUE` as typed after -O: the value an int if it reads as one, else a float,
    else the word (the method's declaration decides its kind later)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise FreqtuiError(f"expected NAME=VALUE, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value
