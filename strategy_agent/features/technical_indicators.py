"""Technical indicators of closed candles, vectorised (numpy windows, pandas ``ewm``).

The moving averages are seeded as TA-Lib seeds them (a simple average of the
first ``period`` values, then the recursive update), so after the warm-up the
values equal TA-Lib's to float precision:

- EMA n: seeded at bar n-1 with the mean of bars 0..n-1; alpha 2/(n+1).
- RSI 14 and ATR 14: Wilder smoothing (alpha 1/14) seeded with the mean of the
  first 14 gains/losses or true ranges (bars 1..14); first value at bar 14.
- MACD 12/26/9: as TA-Lib, the fast EMA is seeded at the slow EMA's first bar
  (bar 25, mean of bars 14..25), so it differs from ``ema_12`` early on; the
  signal is an EMA 9 of the MACD line (first value at bar 33).
- Bollinger 20/2: population standard deviation (ddof=0), like TA-Lib.

Not in TA-Lib: ``ret_n`` simple returns over n bars, ``realized_vol_24`` the
sample standard deviation of 24 one-bar log returns (per bar, not annualised),
``volume_z_20`` the volume's z-score against the last 20 bars (sample std).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from strategy_agent.clock import Clock
from strategy_agent.features.interfaces import FeatureComputer
from strategy_agent.models import Candle, FeatureVector, interval_ms

FEATURE_NAMES = (
    "close",
    "ema_12",
    "ema_26",
    "ema_50",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "atr_14",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "bb_pct_b",
    "ret_1",
    "ret_4",
    "ret_24",
    "realized_vol_24",
    "volume_z_20",
)
SERIES_LENGTH = 12


def indicator_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every indicator column (``FEATURE_NAMES``) for a frame of candles, oldest first.

    ``df`` needs columns open, high, low, close, volume (a ``ts`` column is
    carried over). Row i uses rows 0..i only; warm-up rows hold NaN.
    """
    columns = indicator_arrays(
        df["close"].to_numpy(dtype=float),
        df["high"].to_numpy(dtype=float),
        df["low"].to_numpy(dtype=float),
        df["volume"].to_numpy(dtype=float),
    )
    out = pd.DataFrame(columns, index=df.index)
    if "ts" in df:
        out.insert(0, "ts", df["ts"])
    return out


def window_free_arrays(close: np.ndarray, volume: np.ndarray) -> dict[str, np.ndarray]:
    """The indicators that only see the last 25 candles (Bollinger bands, returns, realized
    volatility, volume z-score), as arrays like ``close``; the first bars are NaN or inf
    where the window is short (the callers clean them)."""
    columns: dict[str, np.ndarray] = {}
    middle = _rolling(close, 20, np.mean)
    band = 2.0 * _rolling(close, 20, np.std)
    upper, lower = middle + band, middle - band
    columns.update(bb_upper=upper, bb_middle=middle, bb_lower=lower)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["bb_pct_b"] = (close - lower) / (upper - lower)
        for bars in (1, 4, 24):
            columns[f"ret_{bars}"] = close / _shift(close, bars) - 1.0
        log_returns = np.log(close) - np.log(_shift(close, 1))
        columns["realized_vol_24"] = _rolling(log_returns, 24, _sample_std)
        volume_mean, volume_std = _rolling(volume, 20, np.mean), _rolling(volume, 20, _sample_std)
        columns["volume_z_20"] = (volume - volume_mean) / volume_std
    return columns


def indicator_arrays(
    close: np.ndarray, high: np.ndarray, low: np.ndarray, volume: np.ndarray
) -> dict[str, np.ndarray]:
    """``indicator_frame`` on plain arrays: one array per name of ``FEATURE_NAMES``."""
    close, high, low, volume = (np.asarray(a, dtype=float) for a in (close, high, low, volume))
    columns: dict[str, np.ndarray] = {"close": close}
    for period in (12, 26, 50):
        columns[f"ema_{period}"] = _seeded_ema(close, period)
    columns["rsi_14"] = _rsi(close, 14)
    columns["macd"], columns["macd_signal"], columns["macd_hist"] = _macd(close, 12, 26, 9)
    columns["atr_14"] = _atr(high, low, close, 14)
    columns.update(window_free_arrays(close, volume))
    return {
        name: np.where(np.isfinite(columns[name]), columns[name], np.nan) for name in FEATURE_NAMES
    }


def _shift(values: np.ndarray, bars: int) -> np.ndarray:
    """``values`` moved ``bars`` rows later (NaN in front), like ``Series.shift``."""
    shifted = np.full_like(values, np.nan)
    if bars < len(values):
        shifted[bars:] = values[: len(values) - bars]
    return shifted


def _sample_std(windows: np.ndarray, axis: int) -> np.ndarray:
    return np.std(windows, axis=axis, ddof=1)


def _rolling(values: np.ndarray, window: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """``reduce`` over each trailing window of ``window`` rows (NaN until the first is full)."""
    result = np.full_like(values, np.nan)
    if len(values) >= window:
        windows = np.lib.stride_tricks.sliding_window_view(values, window)
        result[window - 1 :] = reduce(windows, axis=1)
    return result


def _seeded_ewm(values: np.ndarray, period: int, alpha: float, first: int = 0) -> np.ndarray:
    """Exponential average seeded with the mean of ``values[first : first + period]``."""
    seed_at = first + period - 1
    result = np.full_like(values, np.nan)
    if len(values) <= seed_at:
        return result
    tail = values[seed_at:].copy()
    tail[0] = values[first : seed_at + 1].mean()
    # pandas runs the recursion in C; adjust=False is the plain s = s + alpha * (x - s).
    result[seed_at:] = pd.Series(tail).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return result


def _seeded_ema(values: np.ndarray, period: int, first: int = 0) -> np.ndarray:
    return _seeded_ewm(values, period, 2.0 / (period + 1), first)


def _wilder(values: np.ndarray, period: int) -> np.ndarray:
    """Wilder smoothing of a series whose first value (bar 0) is undefined."""
    return _seeded_ewm(values, period, 1.0 / period, first=1)


def _rsi(close: np.ndarray, period: int) -> np.ndarray:
    change = close - _shift(close, 1)
    gain = _wilder(np.where(change > 0, change, 0.0), period)
    loss = _wilder(np.where(change < 0, -change, 0.0), period)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * gain / (gain + loss)


def _macd(
    close: np.ndarray, fast: int, slow: int, signal: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    slow_ema = _seeded_ema(close, slow)
    fast_ema = _seeded_ema(close, fast, first=slow - fast)  # TA-Lib aligns both on bar slow-1
    line = fast_ema - slow_ema
    signal_line = _seeded_ema(line, signal, first=slow - 1)
    return line, signal_line, line - signal_line


def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    previous = _shift(close, 1)
    true_range = np.maximum(high - low, np.maximum(np.abs(high - previous), np.abs(low - previous)))
    return _wilder(true_range, period)


class TechnicalFeatureComputer(FeatureComputer):
    """One ``FeatureVector`` per (symbol, interval) from its candles' latest closed bar.

    With a ``clock``, candles not yet closed at ``clock.now_ms()`` are dropped
    first. ``FeatureVector.ts`` is the close time of the latest candle (when its
    values became known); ``meta["candle_ts"]`` is its open time.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock

    def compute_features(self, candles: list[Candle]) -> list[FeatureVector]:
        now_ms = self._clock.now_ms() if self._clock is not None else None
        vectors = []
        for (_, interval), group in _groups(candles).items():
            step_ms = interval_ms(interval)
            closed = [c for c in group if now_ms is None or c.ts + step_ms <= now_ms]
            if closed:
                vectors.append(_feature_vector(closed, interval, step_ms))
        return vectors


def _groups(candles: Iterable[Candle]) -> dict[tuple[str, str], list[Candle]]:
    groups: dict[tuple[str, str], list[Candle]] = {}
    for candle in candles:
        groups.setdefault((candle.instrument.symbol, candle.interval), []).append(candle)
    return groups


def _in_time_order(candles: list[Candle]) -> list[Candle]:
    """Sorted by open time, one candle per ts (the last given wins)."""
    by_ts = {candle.ts: candle for candle in candles}
    return [by_ts[ts] for ts in sorted(by_ts)]


def candle_frame(candles: list[Candle]) -> pd.DataFrame:
    """Candles of one symbol and interval as a frame, sorted by time, one row per ts."""
    ordered = _in_time_order(candles)
    return pd.DataFrame(
        {
            "ts": np.array([c.ts for c in ordered], dtype=np.int64),
            "open": np.array([c.open for c in ordered], dtype=float),
            "high": np.array([c.high for c in ordered], dtype=float),
            "low": np.array([c.low for c in ordered], dtype=float),
            "close": np.array([c.close for c in ordered], dtype=float),
            "volume": np.array([c.volume for c in ordered], dtype=float),
        }
    )


def _feature_vector(candles: list[Candle], interval: str, step_ms: int) -> FeatureVector:
    ordered = _in_time_order(candles)
    indicators = indicator_arrays(
        np.array([c.close for c in ordered]),
        np.array([c.high for c in ordered]),
        np.array([c.low for c in ordered]),
        np.array([c.volume for c in ordered]),
    )
    values = {
        name: float(series[-1]) for name, series in indicators.items() if np.isfinite(series[-1])
    }
    rsi = indicators["rsi_14"]
    latest = ordered[-1]
    meta: dict[str, Any] = {
        "interval": interval,
        "candle_ts": latest.ts,
        "series": {
            "close": indicators["close"][-SERIES_LENGTH:].tolist(),
            "rsi_14": rsi[np.isfinite(rsi)][-SERIES_LENGTH:].tolist(),
        },
    }
    return FeatureVector(
        ts=latest.ts + step_ms, instrument=latest.instrument, values=values, meta=meta
    )
