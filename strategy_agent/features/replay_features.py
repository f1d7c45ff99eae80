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
  all windows side by side (one row per window), seeded with the same mean and
  updated with pandas' own ``ewm(adjust=False)`` arithmetic:
  ``s = ((1 - a) * s + a * x) / ((1 - a) + a)``, skipped when ``s == x``, with
  ``a = 1 / (1 + (1 - alpha) / alpha)``.
- Everything else (Bollinger bands, returns, realised volatility, volume
  z-score) depends only on the last 25 candles of a window, so it is computed
  once on the candles of the chunk, with the very functions of
  ``technical_indicators``.

A window the table does not hold (not a slice of the cached series, shorter
than ``MIN_WINDOW``, another interval) is computed per cycle as before.
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

CHUNK_WINDOWS = 4096
# The window-independent indicators need the last 25 candles (24 log returns);
# shorter windows are computed per cycle.
MIN_WINDOW = 60
_RECURSIVE = ("ema_12", "ema_26", "ema_50", "rsi_14", "macd", "macd_signal", "macd_hist", "atr_14")


@dataclass
class _Table:
    """Indicators of the windows ending at ``first_end .. first_end + rows - 1`` (exclusive
    ends into the series), one row per window: ``values`` in ``FEATURE_NAMES`` order and
    every RSI of each window (for the RSI series the prompt shows)."""

    first_end: int
    values: np.ndarray  # (rows, len(FEATURE_NAMES))
    rsi: np.ndarray  # (rows, window)

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
    values = {name: v for name, v in zip(FEATURE_NAMES, row, strict=True) if math.isfinite(v)}
    rsi = table.rsi[:, index]
    latest = series.candles[end - 1]
    closes = series.columns()["close"]
    meta: dict[str, Any] = {
        "interval": interval,
        "candle_ts": latest.ts,
        "series": {
            "close": closes[max(end - SERIES_LENGTH, 0) : end].tolist(),
            "rsi_14": rsi[np.isfinite(rsi)][-SERIES_LENGTH:].tolist(),
        },
    }
    # Every field is already what validation would make of it (finite floats, the
    # cached candle's validated instrument), so the vector is built without re-checking.
    return FeatureVector.model_construct(
        ts=latest.ts + interval_ms(interval), instrument=latest.instrument, values=values, meta=meta
    )


def _compute_table(series: SymbolSeries, window: int, end: int, chunk: int) -> _Table:
    """The table of the chunk of windows (``window`` candles each) whose first ends at ``end``."""
    columns = series.columns()
    last_end = min(end + chunk, len(series.candles) + 1)
    lo = end - window  # the candles the chunk's windows cover: [lo, last_end - 1)
    part = {name: columns[name][lo : last_end - 1] for name in ("high", "low", "close", "volume")}
    rows = last_end - end
    flat = _window_free(part["close"], part["volume"])
    recursive = _windowed(part, window, rows)
    values = np.empty((rows, len(FEATURE_NAMES)))
    for index, name in enumerate(FEATURE_NAMES):
        column = recursive[name][-1] if name in recursive else flat[name][window - 1 :]
        values[:, index] = np.where(np.isfinite(column), column, np.nan)
    rsi = recursive["rsi_14"]
    return _Table(end, values, np.where(np.isfinite(rsi), rsi, np.nan))


def _window_free(close: np.ndarray, volume: np.ndarray) -> dict[str, np.ndarray]:
    """The indicators that only see a window's last 25 candles, as ``indicator_arrays``."""
    return {"close": close, **window_free_arrays(close, volume)}


def _windowed(part: dict[str, np.ndarray], window: int, rows: int) -> dict[str, np.ndarray]:
    """The window-seeded indicators of the ``rows`` windows of ``part``.

    Arrays are (position in the window, window): row ``j`` holds position ``j``
    of every window, so each recursion step is one contiguous row. Position 0
    of the derived series (change, true range) differs from the per-window
    computation (there it has no previous close) but is never read: Wilder's
    smoothing starts at position 1.
    """
    close = part["close"]
    previous = _shift(close, 1)
    out: dict[str, np.ndarray] = {}
    for period in (12, 26, 50):
        out[f"ema_{period}"] = _ewm_positions(
            _by_position(close, window, rows),
            period,
            2.0 / (period + 1),
            _seeds(close, 0, period, rows),
        )
    change = close - previous
    with np.errstate(invalid="ignore"):
        gain = np.where(change > 0, change, 0.0)
        loss = np.where(change < 0, -change, 0.0)
    gain_avg = _ewm_positions(
        _by_position(gain, window, rows), 14, 1.0 / 14, _seeds(gain, 1, 14, rows), first=1
    )
    loss_avg = _ewm_positions(
        _by_position(loss, window, rows), 14, 1.0 / 14, _seeds(loss, 1, 14, rows), first=1
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rsi_14"] = 100.0 * gain_avg / (gain_avg + loss_avg)
    by_position = _by_position(close, window, rows)
    slow = _ewm_positions(by_position, 26, 2.0 / 27, _seeds(close, 0, 26, rows))
    fast = _ewm_positions(
        by_position, 12, 2.0 / 13, _seeds(close, 26 - 12, 12, rows), first=26 - 12
    )
    line = fast - slow
    seeds = np.ascontiguousarray(line[26 - 1 : 26 - 1 + 9].T).mean(axis=1)
    signal = _ewm_positions(line, 9, 2.0 / 10, seeds, first=26 - 1)
    out.update(macd=line, macd_signal=signal, macd_hist=line - signal)
    high, low = part["high"], part["low"]
    true_range = np.maximum(high - low, np.maximum(np.abs(high - previous), np.abs(low - previous)))
    out["atr_14"] = _ewm_positions(
        _by_position(true_range, window, rows),
        14,
        1.0 / 14,
        _seeds(true_range, 1, 14, rows),
        first=1,
    )
    return out


def _by_position(values: np.ndarray, window: int, rows: int) -> np.ndarray:
    """(window, rows) view: ``[j, r]`` is position ``j`` of window ``r`` (``values[r + j]``)."""
    return np.lib.stride_tricks.sliding_window_view(values, rows)[:window]


def _seeds(values: np.ndarray, first: int, period: int, rows: int) -> np.ndarray:
    """Per window ``r``, the mean of its positions ``first .. first + period - 1``.

    Each window's block is a C-contiguous row, so ``mean(axis=1)`` sums it as
    numpy sums the 1-D slice ``technical_indicators._seeded_ewm`` averages.
    """
    blocks = np.lib.stride_tricks.sliding_window_view(values, period)[first : first + rows]
    return np.ascontiguousarray(blocks).mean(axis=1)


def _ewm_positions(
    by_position: np.ndarray, period: int, alpha: float, seeds: np.ndarray, first: int = 0
) -> np.ndarray:
    """``technical_indicators._seeded_ewm`` of every window at once: (window, rows), NaN
    before the seed.

    The seed (the mean of each window's ``first .. first + period - 1``) sits at
    position ``first + period - 1``; then pandas' ``ewm(alpha, adjust=False).mean()``
    recursion runs position by position, with pandas' own arithmetic.
    """
    width, rows = by_position.shape
    seed_at = first + period - 1
    out = np.full((width, rows), np.nan)
    if width <= seed_at:
        return out
    com = (1 - alpha) / alpha  # pandas: get_center_of_mass
    a = 1.0 / (1.0 + com)  # pandas: window.aggregations.ewm
    keep = 1.0 - a
    denominator = keep + a
    weighted = out[seed_at]
    weighted[:] = seeds
    updated = np.empty(rows)
    scaled = np.empty(rows)
    for position in range(seed_at + 1, width):
        current = by_position[position]
        np.multiply(keep, weighted, out=updated)
        np.multiply(a, current, out=scaled)
        updated += scaled
        if denominator != 1.0:  # x / 1.0 == x exactly, so the division is skipped then
            updated /= denominator
        row = out[position]
        row[:] = weighted
        np.copyto(row, updated, where=weighted != current)  # pandas skips when equal
        weighted = row
    return out


__all__ = ["MIN_WINDOW", "ReplayFeatureComputer"]
