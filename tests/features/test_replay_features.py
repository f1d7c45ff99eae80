"""The replay's indicator table gives the per-cycle computation's numbers, every indicator."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from strategy_agent.clock import ManualClock
from strategy_agent.data.replay_market import ReplayMarketDataSource
from strategy_agent.data.series_source import SeriesCandleSource
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.features.replay_features import MIN_WINDOW, ReplayFeatureComputer
from strategy_agent.features.technical_indicators import FEATURE_NAMES, TechnicalFeatureComputer
from strategy_agent.models import FeatureVector

H = 3_600_000
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
REL = 1e-12


def assert_same(expected: list[FeatureVector], got: list[FeatureVector], seen: set[str]) -> int:
    """Every field equal; floats exactly or within ``REL`` relative. Returns values compared."""
    compared = 0
    assert [v.instrument for v in got] == [v.instrument for v in expected]
    for want, have in zip(expected, got, strict=True):
        assert (have.ts, have.meta["candle_ts"], have.meta["interval"]) == (  # type: ignore[index]
            want.ts,
            want.meta["candle_ts"],  # type: ignore[index]
            want.meta["interval"],  # type: ignore[index]
        )
        assert list(have.values) == list(want.values)  # same names, same order (JSON records)
        pairs = list(zip(want.values.values(), have.values.values(), strict=True))
        for series in ("close", "rsi_14"):
            wanted = want.meta["series"][series]  # type: ignore[index]
            pairs += list(zip(wanted, have.meta["series"][series], strict=True))  # type: ignore[index]
            assert len(have.meta["series"][series]) == len(wanted)  # type: ignore[index]
        for a, b in pairs:
            assert a == b or math.isclose(a, b, rel_tol=REL, abs_tol=0.0), (a, b)
        compared += len(pairs)
        seen.update(have.values)
    return compared


def test_thousands_of_simulated_windows_match_the_per_cycle_computation() -> None:
    clock = ManualClock(DEFAULT_ORIGIN_MS + 120 * H)
    plain = SimulatedMarketDataSource(SYMBOLS, seed=7, clock=clock)  # the per-cycle source
    # small chunks: several fetches and several tables are crossed on the way
    fast = SeriesCandleSource(
        SimulatedMarketDataSource(SYMBOLS, seed=7, clock=clock), clock, "1h", chunk_bars=300
    )
    computer = ReplayFeatureComputer(fast, chunk_windows=200)
    reference = TechnicalFeatureComputer()
    seen: set[str] = set()
    compared = 0
    for _ in range(700):
        clock.advance(H)
        expected = reference.compute_features(plain.get_recent_candles(SYMBOLS, "1h", 120))
        got = computer.compute_features(fast.get_recent_candles(SYMBOLS, "1h", 120))
        compared += assert_same(expected, got, seen)
    assert computer.served == 700 * len(SYMBOLS)  # none fell back to the per-cycle path
    assert seen == set(FEATURE_NAMES)  # every indicator was compared, with a value
    assert compared > 700 * 3 * (len(FEATURE_NAMES) + 20)


@pytest.mark.parametrize("lookback", [MIN_WINDOW, 120, 200])
def test_replayed_csv_windows_match_including_warm_up_and_other_lengths(
    tmp_path: Path, lookback: int
) -> None:
    """A replay of recorded candles (a regular series): warm-up windows shorter than
    ``MIN_WINDOW`` are computed per cycle, the others come from the table, all equal."""
    rng = np.random.default_rng(3)
    bars = 500
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    frame = pd.DataFrame(
        {
            "ts": DEFAULT_ORIGIN_MS + np.arange(bars, dtype=np.int64) * H,
            "open": np.concatenate(([100.0], close[:-1])),
            "high": close * 1.01,
            "low": close * 0.98,
            "close": close,
            "volume": rng.uniform(1, 5, bars),
        }
    )
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    clock = ManualClock(DEFAULT_ORIGIN_MS)
    inner = ReplayMarketDataSource({"BTC/USDT": frame}, "1h", clock=clock)
    fast = SeriesCandleSource(inner, clock, "1h", chunk_bars=256)
    computer = ReplayFeatureComputer(fast, chunk_windows=200)
    reference = TechnicalFeatureComputer()
    seen: set[str] = set()
    for _ in range(bars + 3):  # past the end: the last candles again
        clock.advance(H)
        candles = inner.get_recent_candles(["BTC/USDT"], "1h", lookback)
        expected = reference.compute_features(candles)
        got = computer.compute_features(fast.get_recent_candles(["BTC/USDT"], "1h", lookback))
        assert_same(expected, got, seen)
    assert seen == set(FEATURE_NAMES)
    assert computer.served >= bars - lookback


def test_a_window_that_is_not_the_sources_last_answer_is_computed_per_cycle() -> None:
    clock = ManualClock(DEFAULT_ORIGIN_MS + 200 * H)
    fast = SeriesCandleSource(SimulatedMarketDataSource(SYMBOLS, clock=clock), clock, "1h")
    computer = ReplayFeatureComputer(fast)
    window = fast.get_recent_candles(SYMBOLS, "1h", 120)
    reversed_groups = window[240:] + window[:240]  # other symbol order: still served, in order
    expected = TechnicalFeatureComputer().compute_features(reversed_groups)
    assert computer.compute_features(reversed_groups) == expected
    assert computer.served == 3  # each group found as a slice of the cache
    edited = list(window[:120])
    edited[-1] = edited[-1].model_copy(update={"close": edited[-1].close * 1.5})
    assert computer.compute_features(edited) == TechnicalFeatureComputer().compute_features(edited)
    assert computer.served == 3  # not a slice of the cache: computed per cycle


def flat_stretch_frame(seed: int, bars: int, flat_from: int, flat_bars: int) -> pd.DataFrame:
    """Hourly candles of a random walk that stands still (one price, one volume) for
    ``flat_bars`` bars from ``flat_from``: windows there have undefined RSIs (no gain, no
    loss), volume z-scores and %B (no spread), so some vectors miss values."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.01, bars)
    steps[flat_from : flat_from + flat_bars] = 0.0
    close = 100 * np.exp(np.cumsum(steps))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.where(steps == 0.0, 1.0, 1.004)
    volume = rng.uniform(1, 5, bars)
    volume[flat_from : flat_from + flat_bars] = 2.0
    return pd.DataFrame(
        {
            "ts": DEFAULT_ORIGIN_MS + np.arange(bars, dtype=np.int64) * H,
            "open": open_,
            "high": np.maximum(open_, close) * wick,
            "low": np.minimum(open_, close) / wick,
            "close": close,
            "volume": volume,
        }
    )


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    flat_from=st.integers(0, 200),
    flat_bars=st.integers(0, 160),
    lookback=st.sampled_from([MIN_WINDOW, 75, 120]),
)
def test_windows_with_undefined_indicators_match_the_per_cycle_computation_exactly(
    seed: int, flat_from: int, flat_bars: int, lookback: int
) -> None:
    """The table's shortcuts (a row of finite values as one dict, the last RSIs as the
    prompt's RSI series) and their general paths (some value undefined, some of the last
    RSIs undefined) give the per-cycle vectors, bit for bit."""
    bars = 300
    frame = flat_stretch_frame(seed, bars, flat_from, flat_bars)
    clock = ManualClock(DEFAULT_ORIGIN_MS + (lookback - 1) * H)
    inner = ReplayMarketDataSource({"BTC/USDT": frame}, "1h", clock=clock)
    fast = SeriesCandleSource(inner, clock, "1h", chunk_bars=128)
    computer = ReplayFeatureComputer(fast, chunk_windows=100)
    reference = TechnicalFeatureComputer()
    missing = short_rsi = 0
    for _ in range(bars - lookback + 1):
        clock.advance(H)
        expected = reference.compute_features(
            inner.get_recent_candles(["BTC/USDT"], "1h", lookback)
        )
        got = computer.compute_features(fast.get_recent_candles(["BTC/USDT"], "1h", lookback))
        assert got == expected
        assert [repr(v.model_dump()) for v in got] == [repr(v.model_dump()) for v in expected]
        missing += len(got[0].values) < len(FEATURE_NAMES)
        short_rsi += len(got[0].meta["series"]["rsi_14"]) < 12  # type: ignore[index]
    assert computer.served == bars - lookback + 1
    event(f"windows missing values: {'some' if missing else 'none'}")
    event(f"windows with a short RSI series: {'some' if short_rsi else 'none'}")
