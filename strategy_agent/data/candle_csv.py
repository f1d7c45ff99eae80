"""Candles from a CSV file, checked row by row; a bad row is refused with its line number.

The file has a header naming ``ts, open, high, low, close, volume`` (any
order, any case; other columns are ignored) and one candle per line:
``ts`` is the open time, as epoch milliseconds (``1735689600000``) or ISO 8601
(``2025-01-01T00:00:00Z``; a time without an offset is read as UTC), prices
in the quote currency, volume in the base currency. The series must be
complete: sorted by ``ts``, one row per interval, no repeated or missing
candle, no empty or NaN value. Line numbers count the header as line 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import INTERVAL_MS, interval_ms

COLUMNS = ("ts", "open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")
_FIRST_LINE = 2  # the header is line 1
_EPOCH_MS_MIN = 100_000_000_000  # below this an epoch number is in seconds, not ms


class CandleFileError(ConfigurationError):
    """A candle file that cannot be used as it is; the message names the line."""


def read_candle_csv(path: str | Path, interval: str) -> pd.DataFrame:
    """The candles of a CSV file as a frame: ``ts`` (int64 epoch ms), open..volume (float64).

    Raises ``CandleFileError`` naming the file and line of the first problem.
    """
    step = interval_ms(interval)
    where = str(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError:
        raise CandleFileError(f"{where}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CandleFileError(f"{where}: not a readable CSV file ({error})") from error
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise CandleFileError(
            f"{where}: line 1 (the header) lacks {', '.join(missing)}; the header must name "
            f"{', '.join(COLUMNS)}"
        )
    raw = _drop_trailing_blank_lines(raw)
    if raw.empty:
        raise CandleFileError(f"{where}: no candles after the header")
    frame = pd.DataFrame({"ts": _timestamps(raw["ts"], where)})
    for column in COLUMNS[1:]:
        frame[column] = _numbers(raw[column], column, where)
    _check_values(frame, where)
    _check_sequence(frame["ts"].to_numpy(), step, interval, where)
    return frame


def _drop_trailing_blank_lines(raw: pd.DataFrame) -> pd.DataFrame:
    filled = raw.apply(lambda column: column.str.strip().ne("")).any(axis=1).to_numpy()
    last = int(np.flatnonzero(filled)[-1]) + 1 if filled.any() else 0
    return raw.iloc[:last]


def _line(position: int) -> int:
    return int(position) + _FIRST_LINE


def _timestamps(cells: pd.Series, where: str) -> np.ndarray:
    text = cells.str.strip()
    empty = np.flatnonzero(text.eq("").to_numpy())
    if len(empty):
        raise CandleFileError(f"{where}: line {_line(empty[0])}: ts is empty")
    numeric = pd.to_numeric(text, errors="coerce")
    is_number = numeric.notna().to_numpy()
    result = np.zeros(len(text), dtype=np.int64)
    if is_number.any():
        values = numeric[is_number].to_numpy(dtype=float)
        bad = np.flatnonzero((values != np.floor(values)) | (values < _EPOCH_MS_MIN))
        if len(bad):
            position = np.flatnonzero(is_number)[bad[0]]
            raise CandleFileError(
                f"{where}: line {_line(position)}: ts {text.iloc[position]} is not epoch "
                f"milliseconds (a whole number like 1735689600000; seconds are too small)"
            )
        result[is_number] = values.astype(np.int64)
    if (~is_number).any():
        parsed = pd.to_datetime(text[~is_number], utc=True, errors="coerce", format="ISO8601")
        bad_iso = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad_iso):
            position = np.flatnonzero(~is_number)[bad_iso[0]]
            raise CandleFileError(
                f"{where}: line {_line(position)}: ts {text.iloc[position]!r} is neither epoch "
                f"milliseconds nor an ISO 8601 time like 2025-01-01T00:00:00Z"
            )
        result[~is_number] = parsed.dt.as_unit("ms").astype("int64").to_numpy()
    return result


def _numbers(cells: pd.Series, column: str, where: str) -> np.ndarray:
    text = cells.str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        position = bad[0]
        shown = text.iloc[position]
        what = "is empty" if shown == "" else f"is {shown!r}, not a finite number"
        raise CandleFileError(f"{where}: line {_line(position)}: {column} {what}")
    return values


def _check_values(frame: pd.DataFrame, where: str) -> None:
    """Refuse the first row whose prices or volume cannot be a candle."""
    body_low = frame[["open", "close"]].min(axis=1)
    body_high = frame[["open", "close"]].max(axis=1)
    checks = (
        ((frame[list(_PRICES)] <= 0).any(axis=1), "prices must be > 0"),
        (frame["volume"] < 0, "volume must be >= 0"),
        (
            (frame["low"] > body_low) | (frame["high"] < body_high),
            "need low <= open, close <= high",
        ),
    )
    bad = np.zeros(len(frame), dtype=bool)
    for mask, _ in checks:
        bad |= mask.to_numpy()
    if not bad.any():
        return
    first = int(np.flatnonzero(bad)[0])
    message = next(text for mask, text in checks if mask.iloc[first])
    row = frame.iloc[first]
    raise CandleFileError(
        f"{where}: line {_line(first)}: {message} (open {row['open']:g}, high {row['high']:g}, "
        f"low {row['low']:g}, close {row['close']:g}, volume {row['volume']:g})"
    )


def _check_sequence(stamps: np.ndarray, step: int, interval: str, where: str) -> None:
    """Refuse a file at another spacing, a row off the interval's grid, out of order,
    repeated or after a hole."""
    _check_spacing(np.diff(stamps), step, interval, where)
    off_grid = np.flatnonzero(stamps % step)
    if len(off_grid):
        raise CandleFileError(
            f"{where}: line {_line(off_grid[0])}: ts {_iso(stamps[off_grid[0]])} is not the "
            f"open time of a {interval} candle (open times are multiples of {interval} in UTC)"
        )
    deltas = np.diff(stamps)
    # unsorted first (sorting is the fix, and it explains holes and repeats), then repeats
    for problem in (deltas < 0, deltas == 0, deltas > step):
        bad = np.flatnonzero(problem)
        if len(bad):
            raise CandleFileError(f"{where}: {_sequence_problem(stamps, int(bad[0]) + 1, step)}")


def _check_spacing(deltas: np.ndarray, step: int, interval: str, where: str) -> None:
    """Refuse a file none of whose candles follow each other at ``step`` ms but most at one
    other spacing, twice or more (a 1h file read for a 15m config), naming both."""
    ahead = deltas[deltas > 0]
    if not len(ahead) or (ahead == step).any():
        return
    values, counts = np.unique(ahead, return_counts=True)
    spacing, count = int(values[np.argmax(counts)]), int(counts.max())
    if count < 2 or 2 * count < len(ahead):
        return  # no regular spacing: the row-by-row checks name the first bad row
    named = next((name for name, ms in INTERVAL_MS.items() if ms == spacing), None)
    apart = named or (
        f"{spacing // 60_000} minutes" if spacing % 60_000 == 0 else f"{spacing / 1000:g} seconds"
    )
    fix = f"use a {interval} file" + (f' or set interval = "{named}"' if named else "")
    raise CandleFileError(
        f"{where}: the file's candles are {apart} apart; the config's interval is {interval}: {fix}"
    )


def _sequence_problem(stamps: np.ndarray, index: int, step: int) -> str:
    line, previous = _line(index), _line(index - 1)
    ts, previous_ts = _iso(stamps[index]), _iso(stamps[index - 1])
    delta = int(stamps[index] - stamps[index - 1])
    if delta < 0:
        return (
            f"line {line} ({ts}) comes before line {previous} ({previous_ts}): sort the file by ts"
        )
    if delta == 0:
        return f"line {line} repeats the candle of line {previous} ({ts})"
    missing = delta // step - 1
    return f"line {line} ({ts}): {missing} candle(s) missing after line {previous} ({previous_ts})"


def _iso(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
