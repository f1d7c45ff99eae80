"""Replay recorded candles (the candle store or CSV files) as of a simulated clock.

``ReplayMarketDataSource`` answers like a live source at the time its clock
shows: only candles closed by then (``ts + interval <= clock.now_ms()``), the
newest last. Moving a ``ManualClock`` forward one interval at a time replays
the market candle by candle; a candle that had not closed at the simulated
time is never shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from strategy_agent.clock import Clock
from strategy_agent.data.candle_csv import read_candle_csv
from strategy_agent.data.interfaces import MarketDataSource
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import Candle, InstrumentRef, interval_ms
from strategy_agent.trading_history.candle_store import CandleSeries, read_candles
from strategy_agent.trading_history.connection import StoreConnection

_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


class ReplayMarketDataSource(MarketDataSource):
    """Closed candles of recorded series at one interval, as of ``clock``.

    ``frames`` maps each symbol to its candles: columns ``ts`` (open time,
    epoch ms, strictly increasing) and open, high, low, close, volume.
    """

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        interval: str,
        *,
        clock: Clock,
        exchange_id: str = "replay",
    ) -> None:
        self._step = interval_ms(interval)
        self._interval = interval
        self._clock = clock
        self._exchange_id = exchange_id
        self._series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for symbol, frame in frames.items():
            stamps = frame["ts"].to_numpy(dtype=np.int64)
            if len(stamps) > 1 and not (np.diff(stamps) > 0).all():
                raise ConfigurationError(f"replay candles of {symbol} are not sorted by ts")
            values = frame[_COLUMNS[1:]].to_numpy(dtype=float)
            self._series[symbol] = (stamps, values)

    @classmethod
    def from_store(
        cls,
        store: StoreConnection,
        exchange_id: str,
        symbols: Sequence[str],
        interval: str,
        *,
        clock: Clock,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> ReplayMarketDataSource:
        """Replay downloaded candles; ``ConfigurationError`` for a symbol with none stored."""
        frames = {}
        for symbol in dict.fromkeys(symbols):
            rows = read_candles(
                store, CandleSeries(exchange_id, symbol, interval), start_ms, end_ms
            )
            if not rows:
                raise ConfigurationError(
                    f"no stored {interval} candles of {symbol} from {exchange_id}: download them "
                    f"first (python -m strategy_agent download --exchange {exchange_id} "
                    f"--symbols {symbol} --interval {interval} --since YYYY-MM-DD)"
                )
            frames[symbol] = pd.DataFrame(rows, columns=_COLUMNS)
        return cls(frames, interval, clock=clock, exchange_id=exchange_id)

    @classmethod
    def from_csv(
        cls,
        files: Mapping[str, str | Path],
        interval: str,
        *,
        clock: Clock,
        exchange_id: str = "csv",
    ) -> ReplayMarketDataSource:
        """Replay CSV files, one per symbol (``{"BTC/USDT": "btc_1h.csv"}``); see ``candle_csv``."""
        frames = {symbol: read_candle_csv(path, interval) for symbol, path in files.items()}
        return cls(frames, interval, clock=clock, exchange_id=exchange_id)

    @property
    def interval(self) -> str:
        return self._interval

    def available_symbols(self) -> list[str]:
        return list(self._series)

    def span(self, symbol: str) -> tuple[int, int]:
        """Open times of the first and last recorded candle of ``symbol`` (epoch ms)."""
        stamps, _ = self._symbol(symbol)
        return int(stamps[0]), int(stamps[-1])

    def next_open(self, symbol: str, interval: str, ts: int) -> tuple[int, float] | None:
        """``(open time, open)`` of the recorded candle opening at or after ``ts`` and before
        ``ts + interval``, whatever the clock shows: only a fill price reads this
        (``NextOpenPrices``), never a decision. ``None`` after the last recorded candle
        (or across a hole in the data)."""
        stamps, values = self._symbol(symbol)
        index = int(np.searchsorted(stamps, ts, side="left"))
        if index >= len(stamps) or stamps[index] >= ts + interval_ms(interval):
            return None
        return int(stamps[index]), float(values[index, 0])

    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        """The last ``lookback`` candles of each symbol closed at the clock's now, oldest first."""
        if lookback < 0:
            raise ValueError(f"lookback must be >= 0, got {lookback}")
        if interval != self._interval:
            raise ConfigurationError(
                f"this replay holds {self._interval} candles, not {interval}: download or load "
                f"{interval} candles, or set the strategy's interval to {self._interval}"
            )
        latest_open = self._clock.now_ms() - self._step  # closed iff ts <= now - interval
        candles: list[Candle] = []
        for symbol in dict.fromkeys(symbols):
            stamps, values = self._symbol(symbol)
            end = int(np.searchsorted(stamps, latest_open, side="right"))
            start = max(end - lookback, 0)
            instrument = InstrumentRef(
                symbol=symbol, exchange_id=self._exchange_id, quote_ccy=_quote(symbol)
            )
            for ts, (open_, high, low, close, volume) in zip(
                stamps[start:end].tolist(), values[start:end].tolist(), strict=True
            ):
                candles.append(
                    Candle(
                        ts=ts,
                        instrument=instrument,
                        open=open_,
                        high=high,
                        low=low,
                        close=close,
                        volume=volume,
                        interval=interval,  # type: ignore[arg-type]  # checked by interval_ms
                    )
                )
        return candles

    def _symbol(self, symbol: str) -> tuple[np.ndarray, np.ndarray]:
        series = self._series.get(symbol)
        if series is None or not len(series[0]):
            known = ", ".join(self._series) or "none"
            raise ConfigurationError(f"this replay has no candles of {symbol!r} (it has {known})")
        return series


def _quote(symbol: str) -> str | None:
    return symbol.split(":", 1)[0].partition("/")[2] or None
