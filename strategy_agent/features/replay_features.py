"""Indicators of a whole replay computed at once, served per cycle: the same numbers, faster.

``TechnicalFeatureComputer`` computes each cycle's indicators from that
cycle's window of candles (the last ``lookback`` closed candles). In a stepped
run the windows are known in advance (``SeriesCandleSource`` holds them), so
``ReplayFeatureComputer`` computes the indicators of a whole chunk of windows
in a few numpy operations and serves each cycle's ``FeatureVector`` from the
table. The numbers are those of the per-cycle computation, operation for
operation (``tests/features/test_replay_features.py`` compares every indicator
over thousands of windows):

- The moving averages (EMA 12/26/50, MACD and its signal, RSI's and ATR's
  Wilder smoothing) depend on where the window starts: each is seeded with the
  mean of the window's first ``period`` values. They are computed per window,
  all windows and all seven averages side by side (one numpy step per position
  in the window; MACD's slow average is ``ema_26`` itself), seeded with the
  same mean and updated with pandas' own ``ewm(adjust=False)`` arithmetic:
  ``s = ((1 - a) * s + a * x) / ((1 - a) + a)``, skipped when ``s == x``, with
  ``a = 1 / (1 + (1 - alpha) / alpha)``: element by element the operations of
  one series alone, so the same bits.
- Everything else (Bollinger bands, returns, realised volatility, volume
  z-score) depends only on the last 25 candles of a window, so it is computed
  once on the candles of the chunk, with the very functions of
  ``technical_indicators``.

A window the table does not hold (not a slice of the cached series, shorter
than ``MIN_WINDOW``, another interval) is computed per cycle as before.

Each served vector is built without validation (``prevalidated.builder``): its
values are finite Python floats from the table and its instrument the cached
candle's, already validated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from strategy_agent.data.series_source import SeriesCandleSource, SymbolSeries
from strategy_agent.features.interfaces import FeatureComputer
from strategy_agent.features.technical_indicators import (
    FEATURE_NAMES,
    SERIES_LENGTH,
    TechnicalFeatureComputer,
    _groups,
    _shift,
    window_free_arrays,
)
from strategy_agent.models import Candle, FeatureVector, interval_ms
from strategy_agent.prevalidated import builder

CHUNK_WINDOWS = 4096
# The window-independent indicators need the last 25 candles (24 log returns);
# shorter windows are computed per cycle.
MIN_WINDOW = 60
_build_vector = builder(FeatureVector)


@dataclass
class _Table:
    """Indicators of the windows ending at ``first_end .. first_end + rows - 1`` (exclusive
    ends into the series), one row per window: ``values`` in ``FEATURE_NAMES`` order (NaN
    where not finite) and whether all are finite; the last ``SERIES_LENGTH`` RSIs and
    whether all are finite; every RSI of each window, ``rsi`` (window, rows), for the
    prompt's RSI series of a window whose last RSIs are not all finite."""

    first_end: int
    values: np.ndarray  # (rows, len(FEATURE_NAMES))
    finite: list[bool]
    rsi_tails: np.ndarray  # (rows, SERIES_LENGTH)
    tail_finite: list[bool]
    rsi: np.ndarray

    def holds(self, end: int) -> bool:
        return self.first_end <= end < self.first_end + len(self.values)


class ReplayFeatureComputer(FeatureComputer):
    """``TechnicalFeatureComputer``'s vectors, from a table per chunk of windows.

    ``source`` is the run's ``SeriesCandleSource``: a window served from the
    table must be exactly a slice of its cached candles.
    """

    def __init__(self, source: SeriesCandleSource, chunk_windows: int = CHUNK_WINDOWS) -> None:
        self._source = source
        self._chunk = chunk_windows
        self._fallback = TechnicalFeatureComputer()
        self._tables: dict[tuple[str, int], _Table] = {}
        self.served = 0  # vectors served from a table (the rest were computed per cycle)

    def compute_features(self, candles: list[Candle]) -> list[FeatureVector]:
        # The source's last answer (the usual case): its slices, without a pass over candles.
        parts = self._source.recognize(candles)
        if parts is not None and all(end - start >= MIN_WINDOW for _, start, end in parts):
            interval = self._source.interval
            return [
                self._served(symbol, end - start, end, interval) for symbol, start, end in parts
            ]
        vectors = []
        for (symbol, interval), group in _groups(candles).items():
            vector = self._from_table(symbol, interval, group)
            if vector is None:
                vectors.extend(self._fallback.compute_features(group))
            else:
                vectors.append(vector)
        return vectors

    def _from_table(self, symbol: str, interval: str, group: list[Candle]) -> FeatureVector | None:
        series = self._source.series(symbol)
        window = len(group)
        if interval != self._source.interval or series is None or window < MIN_WINDOW:
            return None
        end = series.locate(group)
        if end is None:
            return None
        return self._served(symbol, window, end, interval)

    def _served(self, symbol: str, window: int, end: int, interval: str) -> FeatureVector:
        """The vector of ``symbol``'s window of ``window`` cached candles ending at ``end``."""
        series = self._source.series(symbol)
        assert series is not None
        key = (symbol, window)
        table = self._tables.get(key)
        if table is None or not table.holds(end):
            table = _compute_table(series, window, end, self._chunk)
            self._tables[key] = table
        self.served += 1
        return _vector(series, table, end, interval)


def _vector(series: SymbolSeries, table: _Table, end: int, interval: str) -> FeatureVector:
    """The ``FeatureVector`` of the window ending at ``end`` (as ``_feature_vector`` builds it)."""
    index = end - table.first_end
    row = table.values[index].tolist()
    if table.finite[index]:
        values = dict(zip(FEATURE_NAMES, row, strict=True))
    else:
        values = {name: v for name, v in zip(FEATURE_NAMES, row, strict=True) if math.isfinite(v)}
    if table.tail_finite[index]:  # then the last finite RSIs are the last RSIs
        rsi = table.rsi_tails[index].tolist()
    else:
        column = table.rsi[:, index]
        rsi = column[np.isfinite(column)][-SERIES_LENGTH:].tolist()
    latest = series.candles[end - 1]
    closes = series.columns()["close"][end - SERIES_LENGTH : end]  # MIN_WINDOW > SERIES_LENGTH
    meta: dict[str, Any] = {
        "interval": interval,
        "candle_ts": latest.ts,
        "series": {"close": closes.tolist(), "rsi_14": rsi},
    }
    # Every field is already what validation would make of it (finite floats, the
    # cached candle's validated instrument), so the vector is built without re-checking.
    return _build_vector(
        {
            "ts": latest.ts + interval_ms(interval),
            "instrument": latest.instrument,
            "values": values,
            "meta": meta,
        }
    )


def _compute_table(series: SymbolSeries, window: int, end: int, chunk: int) -> _Table:
    """The table of the chunk of windows (``window`` candles each) whose first ends at ``end``."""
    columns = series.columns()
    last_end = min(end + chunk, len(series.candles) + 1)
    lo = end - window  # the candles the chunk's windows cover: [lo, last_end - 1)
    part = {name: columns[name][lo : last_end - 1] for name in ("high", "low", "close", "volume")}
    rows = last_end - end
    flat = _window_free(part["close"], part["volume"])
    last, rsi = _windowed(part, window, rows)
    values = np.empty((rows, len(FEATURE_NAMES)))
    for index, name in enumerate(FEATURE_NAMES):
        column = last[name] if name in last else flat[name][window - 1 :]
        values[:, index] = np.where(np.isfinite(column), column, np.nan)
    tails = np.ascontiguousarray(rsi[-SERIES_LENGTH:].T)  # (rows, SERIES_LENGTH)
    return _Table(
        first_end=end,
        values=values,
        finite=_finite_rows(values),
        rsi_tails=tails,
        tail_finite=_finite_rows(tails),
        rsi=rsi,
    )


def _finite_rows(table: np.ndarray) -> list[bool]:
    """Per row of a 2-D table: every value finite."""
    finite: list[bool] = np.isfinite(table).all(axis=1).tolist()
    return finite


def _window_free(close: np.ndarray, volume: np.ndarray) -> dict[str, np.ndarray]:
    """The indicators that only see a window's last 25 candles, as ``indicator_arrays``."""
    return {"close": close, **window_free_arrays(close, volume)}


# The window-seeded averages, computed side by side: (input, period, alpha, first), seeded
# with the mean of each window's positions first .. first + period - 1. MACD's slow average
# is ema_26 itself (same input, period and seed); its fast one is aligned on position 25.
_AVERAGES = (
    ("close", 12, 2.0 / (12 + 1), 0),  # ema_12
    ("close", 26, 2.0 / (26 + 1), 0),  # ema_26, MACD's slow average
    ("close", 50, 2.0 / (50 + 1), 0),  # ema_50
    ("close", 12, 2.0 / (12 + 1), 26 - 12),  # MACD's fast average
    ("gain", 14, 1.0 / 14, 1),  # RSI's Wilder averages
    ("loss", 14, 1.0 / 14, 1),
    ("true_range", 14, 1.0 / 14, 1),  # ATR
)
_SIGNAL = (9, 2.0 / 10, 26 - 1)  # MACD's signal: period, alpha, first


def _windowed(
    part: dict[str, np.ndarray], window: int, rows: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The window-seeded indicators of the ``rows`` windows of ``part``: each one's value
    at the windows' last position (``rows`` values), and every RSI of each window
    (``(window, rows)``: row ``j`` is position ``j`` of every window).

    Position 0 of the derived series (change, true range) differs from the
    per-window computation (there it has no previous close) but is never read:
    Wilder's smoothing starts at position 1.
    """
    close = part["close"]
    previous = _shift(close, 1)
    change = close - previous
    with np.errstate(invalid="ignore"):
        gain = np.where(change > 0, change, 0.0)
        loss = np.where(change < 0, -change, 0.0)
    high, low = part["high"], part["low"]
    true_range = np.maximum(high - low, np.maximum(np.abs(high - previous), np.abs(low - previous)))
    inputs = {"close": close, "gain": gain, "loss": loss, "true_range": true_range}
    stacked = np.stack([inputs[name] for name, _, _, _ in _AVERAGES])
    seeds = np.stack(
        [_seeds(inputs[name], first, period, rows) for name, period, _, first in _AVERAGES]
    )
    averages = _ewm_positions(
        _by_position(stacked, window, rows), [spec[1:] for spec in _AVERAGES], seeds
    )
    ema_12, ema_26, ema_50, fast, gain_avg, loss_avg, atr = averages.transpose(1, 0, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 * gain_avg / (gain_avg + loss_avg)
    line = fast - ema_26
    period, _, first = _SIGNAL
    seeds = np.ascontiguousarray(line[first : first + period].T).mean(axis=1)
    signal = _ewm_positions(line[:, np.newaxis], [_SIGNAL], seeds[np.newaxis])[-1, 0]
    last = {
        "ema_12": ema_12[-1],
        "ema_26": ema_26[-1],
        "ema_50": ema_50[-1],
        "rsi_14": rsi[-1],
        "macd": line[-1],
        "macd_signal": signal,
        "macd_hist": line[-1] - signal,
        "atr_14": atr[-1],
    }
    return last, rsi


def _by_position(values: np.ndarray, window: int, rows: int) -> np.ndarray:
    """(window, series, rows) view of ``values`` (series, candles): ``[j, g, r]`` is position
    ``j`` of window ``r`` of series ``g`` (``values[g, r + j]``)."""
    view = np.lib.stride_tricks.sliding_window_view(values, rows, axis=-1)[:, :window]
    return view.transpose(1, 0, 2)


def _seeds(values: np.ndarray, first: int, period: int, rows: int) -> np.ndarray:
    """Per window ``r``, the mean of its positions ``first .. first + period - 1``.

    Each window's block is a C-contiguous row, so ``mean(axis=1)`` sums it as
    numpy sums the 1-D slice ``technical_indicators._seeded_ewm`` averages.
    """
    blocks = np.lib.stride_tricks.sliding_window_view(values, period)[first : first + rows]
    return np.ascontiguousarray(blocks).mean(axis=1)


def _ewm_positions(
    by_position: np.ndarray, specs: list[tuple[int, float, int]], seeds: np.ndarray
) -> np.ndarray:
    """``technical_indicators._seeded_ewm`` of every window of several series at once.

    ``by_position``: (window, series, rows); ``specs``: per series ``(period, alpha,
    first)``; ``seeds``: (series, rows). Returns (window, series, rows), NaN before
    each series' seed. The seed (the mean of each window's ``first .. first + period
    - 1``) sits at position ``first + period - 1``; then pandas' ``ewm(alpha,
    adjust=False).mean()`` recursion runs position by position, with pandas' own
    arithmetic, element by element as for one series alone (a series not seeded yet
    stays NaN: NaN in, NaN out, until its seed replaces it).
    """
    width, count, rows = by_position.shape
    seed_at = [first + period - 1 for period, _, first in specs]
    out = np.empty((width, count, rows))
    begin = min(seed_at)
    out[: begin + 1] = np.nan
    if width <= begin:
        return out
    coefficients = [_pandas_ewm(alpha) for _, alpha, _ in specs]
    keep = np.array([[k] for k, _, _ in coefficients])
    a = np.array([[a] for _, a, _ in coefficients])
    denominator = np.array([[d] for _, _, d in coefficients])
    divide = any(d != 1.0 for _, _, d in coefficients)  # x / 1.0 == x exactly: skipped then
    scaled = np.empty((count, rows))
    equal = np.empty((count, rows), dtype=bool)
    for position in range(begin, width):
        row = out[position]
        if position > begin:
            weighted = out[position - 1]
            current = by_position[position]
            np.multiply(keep, weighted, out=row)
            np.multiply(a, current, out=scaled)
            row += scaled
            if divide:
                row /= denominator
            np.equal(weighted, current, out=equal)
            np.copyto(row, weighted, where=equal)  # pandas keeps the average when equal
        for index, at in enumerate(seed_at):
            if at == position:
                row[index] = seeds[index]
    return out


def _pandas_ewm(alpha: float) -> tuple[float, float, float]:
    """pandas' ``ewm(alpha=alpha, adjust=False)`` weights: ``(1 - a, a, (1 - a) + a)``."""
    com = (1 - alpha) / alpha  # pandas: get_center_of_mass
    a = 1.0 / (1.0 + com)  # pandas: window.aggregations.ewm
    return 1.0 - a, a, (1.0 - a) + a


__all__ = ["MIN_WINDOW", "ReplayFeatureComputer"]
