"""ReplayMarketDataSource: stored or CSV candles, never one that has not closed at the clock."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy_agent.clock import ManualClock
from strategy_agent.data.replay_market import ReplayMarketDataSource
from strategy_agent.errors import ConfigurationError
from strategy_agent.trading_history.candle_store import CandleSeries, write_candles
from strategy_agent.trading_history.store import SqliteStore

H = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z
BARS = 48


def _frame(bars: int = BARS, start: int = T0, step: int = H, base: float = 100.0) -> pd.DataFrame:
    rows = [
        (start + i * step, base + i, base + i + 2, base + i - 1, base + i + 1, 10.0 + i)
        for i in range(bars)
    ]
    return pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])


FRAMES = {"BTC/USDT": _frame(), "ETH/USDT": _frame(base=50.0, start=T0 + 5 * H, bars=30)}


@settings(max_examples=200, deadline=None)
@given(
    now=st.integers(T0 - 2 * H, T0 + (BARS + 3) * H),
    lookback=st.integers(0, BARS + 5),
)
def test_never_shows_a_candle_that_has_not_closed(now, lookback):
    source = ReplayMarketDataSource(FRAMES, "1h", clock=ManualClock(now))

    candles = source.get_recent_candles(["BTC/USDT", "ETH/USDT"], "1h", lookback)

    for symbol, frame in FRAMES.items():
        got = [c for c in candles if c.instrument.symbol == symbol]
        assert all(c.ts + H <= now for c in got)
        closed = frame[frame["ts"] + H <= now].tail(lookback) if lookback else frame.iloc[:0]
        assert [c.ts for c in got] == closed["ts"].tolist()  # the newest closed ones, in order
        assert [c.close for c in got] == closed["close"].tolist()


def test_stepping_the_clock_replays_one_candle_at_a_time():
    clock = ManualClock(T0 + H)
    source = ReplayMarketDataSource({"BTC/USDT": _frame()}, "1h", clock=clock)

    seen = []
    for _ in range(BARS + 2):
        latest = source.get_recent_candles(["BTC/USDT"], "1h", 1)
        seen.append(latest[-1].ts if latest else None)
        clock.advance(H - 1)  # one ms short of the next close: nothing new
        assert source.get_recent_candles(["BTC/USDT"], "1h", 1)[-1].ts == seen[-1]
        clock.advance(1)

    assert seen[:BARS] == [T0 + i * H for i in range(BARS)]
    assert seen[BARS:] == [T0 + (BARS - 1) * H] * 2  # the data ended: the last candle stays
    first = source.get_recent_candles(["BTC/USDT"], "1h", 1)[0]
    assert (first.instrument.exchange_id, first.instrument.quote_ccy, first.interval) == (
        "replay",
        "USDT",
        "1h",
    )


def test_replays_the_candle_store(db_path: Path):
    series = CandleSeries("binance", "BTC/USDT", "1h")
    rows = list(_frame(10).itertuples(index=False, name=None))
    with SqliteStore(db_path) as store:
        write_candles(store, series, rows)
        source = ReplayMarketDataSource.from_store(
            store, "binance", ["BTC/USDT"], "1h", clock=ManualClock(T0 + 4 * H)
        )
        with pytest.raises(ConfigurationError, match="no stored 1h candles of ETH/USDT"):
            ReplayMarketDataSource.from_store(
                store, "binance", ["ETH/USDT"], "1h", clock=ManualClock(T0)
            )

    candles = source.get_recent_candles(["BTC/USDT"], "1h", 100)
    assert [(c.ts, c.open, c.high, c.low, c.close, c.volume) for c in candles] == rows[:4]
    assert candles[0].instrument.exchange_id == "binance"
    assert source.span("BTC/USDT") == (T0, T0 + 9 * H)


def test_replays_a_csv_file(tmp_path: Path):
    path = tmp_path / "btc.csv"
    _frame(6).to_csv(path, index=False)

    source = ReplayMarketDataSource.from_csv(
        {"BTC/USDT": path}, "1h", clock=ManualClock(T0 + 3 * H + 5)
    )

    assert [c.ts for c in source.get_recent_candles(["BTC/USDT"], "1h", 10)] == [
        T0,
        T0 + H,
        T0 + 2 * H,
    ]
    assert source.available_symbols() == ["BTC/USDT"]


def test_a_wrong_interval_or_symbol_is_refused():
    source = ReplayMarketDataSource(FRAMES, "1h", clock=ManualClock(T0 + 10 * H))

    with pytest.raises(ConfigurationError, match="holds 1h candles, not 4h"):
        source.get_recent_candles(["BTC/USDT"], "4h", 5)
    with pytest.raises(ConfigurationError, match=r"no candles of 'SOL/USDT' \(it has BTC/USDT"):
        source.get_recent_candles(["SOL/USDT"], "1h", 5)
    with pytest.raises(ConfigurationError, match="not sorted"):
        ReplayMarketDataSource({"X/USDT": _frame().iloc[::-1]}, "1h", clock=ManualClock(T0))
