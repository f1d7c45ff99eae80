"""The cached candle source answers exactly what the market it wraps answers."""

from __future__ import annotations

import numpy as np

from strategy_agent.clock import ManualClock
from strategy_agent.cycle_records import closed_candles, last_candles, latest_closes
from strategy_agent.data.interfaces import ClosedCandles
from strategy_agent.data.series_source import SeriesCandleSource
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource

H = 3_600_000
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def pair(chunk_bars: int = 50) -> tuple[ManualClock, SimulatedMarketDataSource, SeriesCandleSource]:
    clock = ManualClock(DEFAULT_ORIGIN_MS + 30 * H)
    inner = SimulatedMarketDataSource(SYMBOLS, seed=5, clock=clock)
    return clock, inner, SeriesCandleSource(inner, clock, "1h", chunk_bars=chunk_bars)


def test_every_step_forward_gets_the_wrapped_sources_candles() -> None:
    clock, inner, fast = pair()
    for _ in range(230):  # several chunks
        clock.advance(H)
        before = clock.now_ms()
        got = fast.get_recent_candles(SYMBOLS, "1h", 24)
        assert clock.now_ms() == before  # a chunk fetch puts the clock back
        assert got == inner.get_recent_candles(SYMBOLS, "1h", 24)
        assert isinstance(got, ClosedCandles) and got.closed_at == before


def test_back_in_time_longer_lookbacks_and_other_intervals_are_asked_directly() -> None:
    clock, inner, fast = pair()
    clock.advance(100 * H)
    fast.get_recent_candles(SYMBOLS, "1h", 10)
    for now, lookback, interval in [
        (DEFAULT_ORIGIN_MS + 5 * H, 10, "1h"),  # before the cache starts
        (DEFAULT_ORIGIN_MS + 131 * H, 125, "1h"),  # more than the cache holds
        (DEFAULT_ORIGIN_MS + 130 * H, 10, "4h"),
        (DEFAULT_ORIGIN_MS + 10 * H, 0, "1h"),
    ]:
        clock.set(now)
        assert fast.get_recent_candles(SYMBOLS, interval, lookback) == (
            inner.get_recent_candles(SYMBOLS, interval, lookback)
        )
    clock.set(DEFAULT_ORIGIN_MS + 2 * H)  # fewer candles than asked exist: all of them
    assert fast.get_recent_candles(SYMBOLS, "1h", 48) == inner.get_recent_candles(SYMBOLS, "1h", 48)


def test_the_cycles_helpers_read_the_answer_without_scanning_it_and_agree() -> None:
    clock, _, fast = pair()
    clock.advance(7 * H)
    answer = fast.get_recent_candles(SYMBOLS, "1h", 12)
    plain = list(answer)
    assert closed_candles(answer, clock.now_ms()) is answer
    assert closed_candles(answer, clock.now_ms() - 1) == closed_candles(plain, clock.now_ms() - 1)
    assert latest_closes(answer) == latest_closes(plain)
    assert last_candles(answer) == last_candles(plain)
    assert list(latest_closes(answer)) == SYMBOLS  # the symbols' order, as a scan gives it


def test_the_columns_grow_with_the_cache_and_equal_the_cached_candles() -> None:
    """Columns are extended chunk by chunk (not rebuilt): they stay the candles' values."""
    clock, _, fast = pair(chunk_bars=40)
    seen = []
    for _ in range(150):  # several chunks, the columns read between them
        clock.advance(H)
        fast.get_recent_candles(SYMBOLS, "1h", 24)
        series = fast.series("BTC/USDT")
        assert series is not None
        columns = series.columns()
        seen.append(len(columns["ts"]))
        assert columns["ts"].dtype == np.int64 and columns["ts"].tolist() == series.stamps
        for name in ("open", "high", "low", "close", "volume"):
            assert columns[name].dtype == np.float64
            assert columns[name].tolist() == [getattr(c, name) for c in series.candles]
    assert len(set(seen)) > 3  # the cache grew several times
