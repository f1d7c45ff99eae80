"""A stepped market's candles, built once and served as slices (replays and backtests).

A stepped run (the simulated market, a replay) asks its source for the same
candles again and again: each cycle the last ``lookback`` closed candles of
every symbol, one newer than the cycle before. Building them (pydantic
``Candle`` objects) costs more than the rest of a built-in rule's cycle.
``SeriesCandleSource`` asks the wrapped source once per chunk of candles, on a
clock of its own, keeps the candles it got, and answers each cycle with a
slice of them: the very candles the wrapped source gives, in its order.

Why the answers are the same: the wrapped source answers "the last ``n``
candles closed at time ``T``" from a deterministic, recorded or seeded path
(its answer depends only on ``T`` and ``n``); the cache holds one contiguous
run of that path (each new chunk overlaps the previous one, checked) and
knows up to which time it is complete, so a slice of it is the answer at any
time it covers. Anything else (an earlier time than the cache holds, another
interval, a symbol the cache cannot answer for) is asked of the wrapped source
directly, at that time.

``SymbolSeries`` also gives the cached candles as numpy columns, for the
feature computer that serves a whole replay's indicators
(``features.replay_features``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import numpy as np

from strategy_agent.clock import ManualClock
from strategy_agent.data.interfaces import ClosedCandles, MarketDataSource
from strategy_agent.models import Candle, interval_ms

CHUNK_BARS = 8192
OHLCV = ("open", "high", "low", "close", "volume")


class SymbolSeries:
    """The cached candles of one symbol: a contiguous run of the wrapped source's path.

    ``candles`` are oldest first (strictly increasing ``ts``); every candle of
    the source that closed at or before ``complete_until`` (epoch ms) and opened
    at or after ``candles[0].ts`` is here. ``from_start``: the source has no
    candle before ``candles[0]``.
    """

    def __init__(self) -> None:
        self.candles: list[Candle] = []
        self.stamps: list[int] = []
        self.complete_until: int | None = None
        self.from_start = False
        self._columns: dict[str, np.ndarray] | None = None

    def extend(self, candles: list[Candle], complete_until: int, from_start: bool) -> None:
        """Append the candles newer than the last cached one (``candles`` overlap it)."""
        last = self.stamps[-1] if self.stamps else None
        fresh = candles if last is None else [c for c in candles if c.ts > last]
        self.candles.extend(fresh)
        self.stamps.extend(c.ts for c in fresh)
        self.complete_until = complete_until
        self.from_start = self.from_start or from_start

    def columns(self) -> dict[str, np.ndarray]:
        """``ts`` (int64) and open, high, low, close, volume (float64), one row per candle
        (candles cached since the last call are appended to the previous columns)."""
        built = 0 if self._columns is None else len(self._columns["ts"])
        if self._columns is None or built != len(self.candles):
            fresh = self.candles[built:]
            columns = {"ts": np.array(self.stamps[built:], dtype=np.int64)}
            for name in OHLCV:
                columns[name] = np.array([getattr(c, name) for c in fresh], dtype=float)
            if self._columns is not None:
                columns = {k: np.concatenate((self._columns[k], v)) for k, v in columns.items()}
            self._columns = columns
        return self._columns

    def locate(self, group: list[Candle]) -> int | None:
        """``end`` when ``group`` is exactly ``candles[end - len(group):end]`` (the same
        objects, so the same values), else ``None``."""
        if not group:
            return None
        start = bisect.bisect_left(self.stamps, group[0].ts)
        end = start + len(group)
        if end > len(self.candles) or self.candles[start] is not group[0]:
            return None
        return end if self.candles[start:end] == group else None


class SeriesCandleSource(MarketDataSource):
    """``inner``'s answers as of ``clock``, served from candles fetched once per chunk.

    ``clock`` is the stepped clock ``inner`` reads its time from (the run's own:
    one runtime, one thread). To fetch a chunk ahead, this object sets it to the
    chunk's end for the one call to ``inner`` and puts it back before returning.
    ``interval`` is the one the run trades; other intervals are passed through.
    ``end_ms`` (a replay's end: when its last candle closes) keeps chunks from
    reaching past it.
    """

    def __init__(
        self,
        inner: MarketDataSource,
        clock: ManualClock,
        interval: str,
        chunk_bars: int = CHUNK_BARS,
        end_ms: int | None = None,
    ) -> None:
        if chunk_bars < 1:
            raise ValueError(f"chunk_bars must be >= 1, got {chunk_bars}")
        self.inner = inner
        self._clock = clock
        self.interval = interval
        self._step = interval_ms(interval)
        self._chunk = chunk_bars
        self._end_ms = end_ms
        self._series: dict[str, SymbolSeries] = {}
        # The last answer served from the cache and where each symbol's part of it ends.
        self._last: tuple[list[Candle], list[tuple[str, int, int]]] | None = None

    def available_symbols(self) -> list[str]:
        return self.inner.available_symbols()

    def series(self, symbol: str) -> SymbolSeries | None:
        """The cached series of ``symbol`` (``None`` before it was first asked)."""
        return self._series.get(symbol)

    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        """What ``inner`` answers at ``clock``'s now (see the module doc)."""
        now = self._clock.now_ms()
        if interval != self.interval or lookback < 0 or not _clean(symbols):
            return self._direct(symbols, interval, lookback, now)
        candles: list[Candle] = []
        parts: list[tuple[str, int, int]] = []
        latest: dict[str, Candle] = {}
        for symbol in dict.fromkeys(symbols):
            span = self._span(symbol, now, lookback)
            if span is None:
                self._last = None
                return self._direct(symbols, interval, lookback, now)
            series, start, end = span
            part = series.candles[start:end]
            candles += part
            parts.append((symbol, start, end))
            if part:
                latest[symbol] = part[-1]
        self._last = (candles, parts)
        return ClosedCandles(candles, closed_at=now, latest=latest)

    def recognize(self, candles: list[Candle]) -> list[tuple[str, int, int]] | None:
        """``(symbol, start, end)`` of each symbol's slice when ``candles`` equal the last
        answer served from the cache (same order), else ``None``."""
        last = self._last
        if last is None or len(candles) != len(last[0]) or candles != last[0]:
            return None  # (equal lists of the same objects compare by identity: fast)
        return last[1]

    def _span(self, symbol: str, now: int, lookback: int) -> tuple[SymbolSeries, int, int] | None:
        """Where the last ``lookback`` candles of ``symbol`` closed at ``now`` are cached:
        the series and the slice ``start:end`` of its candles."""
        series = self._series.get(symbol)
        if series is None or series.complete_until is None or now > series.complete_until:
            series = self._fetch(symbol, now, lookback)
        end = bisect.bisect_right(series.stamps, now - self._step)
        start = end - lookback
        if start < 0:
            if not series.from_start:
                return None  # earlier candles than the cache holds: ask the source
            start = 0
        if series.complete_until is None or now > series.complete_until:
            return None
        return series, start, end

    def _fetch(self, symbol: str, now: int, lookback: int) -> SymbolSeries:
        """Cache the next chunk of ``symbol`` (a new series when there is none)."""
        series = self._series.setdefault(symbol, SymbolSeries())
        previous = series.complete_until
        if previous is not None and now < previous:
            return series
        until = now + self._chunk * self._step
        if self._end_ms is not None and now <= self._end_ms:
            until = min(until, self._end_ms)
        if not series.stamps:
            count = lookback + self._chunk + 1
            got = self._ask(symbol, until, count)
            series.extend(got, until, from_start=len(got) < count)
            return series
        count = (until - series.stamps[-1]) // self._step + 2
        while True:
            got = self._ask(symbol, until, count)
            overlaps = bool(got) and got[0].ts <= series.stamps[-1]
            if overlaps or len(got) < count:
                break
            count *= 2  # denser than one candle per interval: ask for more
        if not overlaps:  # the source no longer holds the cached candles: start over
            fresh = SymbolSeries()
            fresh.extend(got, until, from_start=True)
            self._series[symbol] = fresh
            return fresh
        series.extend(got, until, from_start=False)
        return series

    def next_open(self, symbol: str, interval: str, ts: int) -> tuple[int, float] | None:
        """``inner``'s ``next_open`` (the fill price of the next-open rule), unchanged."""
        next_open = getattr(self.inner, "next_open", None)
        if next_open is None:
            raise AttributeError(f"{type(self.inner).__name__} has no next_open")
        found: tuple[int, float] | None = next_open(symbol, interval, ts)
        return found

    def _ask(self, symbol: str, at_ms: int, count: int) -> list[Candle]:
        """``inner``'s last ``count`` candles of ``symbol`` closed at ``at_ms``."""
        now = self._clock.now_ms()
        self._clock.set(at_ms)
        try:
            return self.inner.get_recent_candles([symbol], self.interval, count)
        finally:
            self._clock.set(now)

    def _direct(self, symbols: list[str], interval: str, lookback: int, now: int) -> list[Candle]:
        return self.inner.get_recent_candles(symbols, interval, lookback)


def _clean(symbols: Iterable[str]) -> bool:
    """Symbols a source takes as they are (the simulated market strips blanks)."""
    return all(symbol and symbol == symbol.strip() for symbol in symbols)
