"""How the prompt writes numbers and times: few digits, never an exponent for large values, no -0.

A replay renders a prompt every cycle, so each writer is built once (its format
spec and limits worked out) and a few texts are remembered; a memo holds only
what the same pure function returned for the same input, and is emptied when full.
A table row or line of many numbers can be written in one ``%`` format whose
fixed-point numbers ``trim_fixed`` then trims as the writers do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from math import floor as _floor
from math import isfinite as _isfinite
from math import log10 as _log10
from typing import Any, TypeVar

MISSING = "-"
T = TypeVar("T")
MEMO_SIZE = 1_024  # entries of a memo; a full memo is emptied
_FLOAT_ONLY = frozenset({float})
_NUM_WRITERS: dict[int, Callable[[float], str]] = {}  # num's writer for each digits
_FIXED_WRITERS: dict[tuple[int, str], Callable[[float], str]] = {}  # fixed's, by (decimals, sign)
_TS_MEMO: dict[int, str] = {}
_DATE_MEMO: dict[int, str] = {}  # "YYYY-MM-DD" by day since 1970-01-01
_DAY_MS = 86_400_000


def num(value: float, digits: int = 6) -> str:
    """``digits`` significant digits, never in exponent form for large numbers."""
    writer = _NUM_WRITERS.get(digits)
    if writer is None:
        writer = _NUM_WRITERS[digits] = num_writer(digits)
    return writer(value)


def num_writer(digits: int) -> Callable[[float], str]:
    """``num(value, digits)`` as a function of ``value`` (the constants worked out once)."""
    limit = 10 ** (digits - 1)
    spec = f".{digits}g"
    top = digits - 1

    def write(value: float) -> str:
        size = abs(value)
        if size >= limit:
            places = top - _floor(_log10(size))
            # round(value, 0) and ".0f" both round half-even: only fewer places need round()
            return format(round(value, places) if places else value, ".0f")
        return format(value, spec)

    return write


def fixed(value: float, decimals: int, sign: str = "") -> str:
    """``value`` to ``decimals`` places without trailing zeros (``8.20`` -> ``8.2``, no ``-0``)."""
    writer = _FIXED_WRITERS.get((decimals, sign))
    if writer is None:
        writer = _FIXED_WRITERS[decimals, sign] = fixed_writer(decimals, sign)
    return writer(value)


def fixed_writer(decimals: int, sign: str = "", scale: int = 1) -> Callable[[float], str]:
    """``fixed(value * scale, decimals, sign)`` as a function of ``value``."""
    spec = f"{sign}.{decimals}f"
    zero = format(0.0, spec)  # how a value rounding to 0 is written
    zero = zero.rstrip("0").rstrip(".") if "." in zero else zero
    points = decimals > 0  # a finite value's text has a point (inf and nan have no zeros)

    def write(value: float) -> str:
        # format rounds the exact value half-even, as round() does (both correctly
        # rounded): the text of round(value, decimals), without the float in between
        text = format(value * scale if scale != 1 else value, spec)
        if text[0] == "-" and not text.lstrip("-0."):  # -0.001 is written 0, never -0
            return zero
        return text.rstrip("0").rstrip(".") if points else text

    return write


# Quote currency to the cent, trailing zeros dropped (``10030.00`` -> ``10030``); signed: ``+71.1``.
money = fixed_writer(2)
signed_money = fixed_writer(2, "+")


def signed_percent(percent: float) -> str:
    """A number already in percent (0.91) as ``+0.91%``."""
    return signed_money(percent) + "%"


def trim_fixed(text: str) -> str:
    """A ``%`` format's text with its marked numbers written as ``fixed_writer`` writes them.

    Marked numbers: ``%.1f~`` (the RSI cell) or ``%.2f~`` (``money``), ``%+.1f^`` or ``%+.2f^``
    (``signed_money``). Trailing zeros and a bare point are dropped (``0.60`` ->
    ``0.6``, ``5.00`` -> ``5``), a value that rounds to zero is ``0`` or ``+0``
    (never ``-0``), and the marks are removed. Many numbers written in one format
    cost far less than one writer call each; nothing else in ``text`` may be a mark.
    """
    if "0~" in text:  # else no unsigned number ends in a zero
        text = text.replace("0~", "~").replace("0~", "~").replace(".~", "~")
        text = text.replace("-0~", "0~")  # a whole number: "-10~" holds no "-0~"
    if "0^" in text:
        text = text.replace("0^", "^").replace("0^", "^").replace(".^", "^")
        text = text.replace("-0^", "+0^")
    return text.replace("~", "").replace("^", "")


def all_finite(numbers: Iterable[Any]) -> bool:
    """Every value is a finite number (``False`` for a ``None`` or a non-number)."""
    try:
        return _isfinite(sum(numbers))  # a NaN or an infinity makes the sum one too
    except (TypeError, OverflowError):
        return False


def finite_list(values: Any) -> list[float]:
    """The finite numbers of a list or tuple, as floats (bools and non-numbers left out)."""
    if not isinstance(values, list | tuple):
        return []
    if set(map(type, values)) <= _FLOAT_ONLY:  # the usual case: the same test, cheaper
        if all_finite(values):
            return list(values)
        return [v for v in values if _isfinite(v)]
    return [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]


def format_ts(ts_ms: int) -> str:
    """``1736168400000`` -> ``"2025-01-06 13:00 UTC"``."""
    if type(ts_ms) is not int:  # a float or numpy value: not remembered
        return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = _TS_MEMO.get(ts_ms)
    if text is None:
        # the day's date, then the minutes of the day: the same text as strftime (a
        # whole millisecond is far from a minute's edge, so the float division cannot
        # cross one); the date of each day is remembered
        day, ms = divmod(ts_ms, _DAY_MS)
        date = _DATE_MEMO.get(day)
        if date is None:
            date = datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")
            remember(_DATE_MEMO, day, date)
        hours, minutes = divmod(ms // 60_000, 60)
        text = f"{date} {hours:02d}:{minutes:02d} UTC"
        remember(_TS_MEMO, ts_ms, text)
    return text


def table(header: list[str], rows: list[list[str]]) -> str:
    """``|``-separated lines: the header, then one line per row."""
    return "\n".join("|".join(cells) for cells in [header, *rows])


def remember(memo: dict[Any, T], key: Any, value: T) -> None:
    """Keep ``value`` (a text, or what it was written from) under ``key`` (a full memo is
    emptied first)."""
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = value
