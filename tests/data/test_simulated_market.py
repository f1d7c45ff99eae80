"""The simulated market: deterministic, realistic enough, closed candles only, fast."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from strategy_agent.clock import ManualClock, SystemClock
from strategy_agent.data.simulated_market import (
    BLOCK_BARS,
    DEFAULT_ORIGIN_MS,
    DEFAULT_SYMBOLS,
    SimulatedMarketDataSource,
    pricing_key,
)
from strategy_agent.models import Candle, interval_ms

ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000
TRIO = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def _source(
    bars: int = 0, seed: int = 42, interval: str = "1h", **kwargs
) -> SimulatedMarketDataSource:
    clock = ManualClock(DEFAULT_ORIGIN_MS + bars * interval_ms(interval))
    return SimulatedMarketDataSource(seed=seed, clock=clock, **kwargs)


def _log_returns(source: SimulatedMarketDataSource, symbol: str, interval: str, bars: int):
    frame = source.history(symbol, interval, 0, bars, closed_only=False)
    return np.diff(np.log(frame["close"].to_numpy()))


# -- determinism -------------------------------------------------------------------


def test_same_seed_gives_same_candles_and_another_seed_differs():
    first = _source(500).get_recent_candles(TRIO, "1h", 200)
    again = _source(500).get_recent_candles(TRIO, "1h", 200)
    other = _source(500, seed=7).get_recent_candles(TRIO, "1h", 200)

    assert len(first) == 600
    assert first == again
    assert [c.close for c in first] != [c.close for c in other]
    assert [c.ts for c in first] == [c.ts for c in other]


def test_far_request_first_does_not_change_near_candles():
    near_alone = _source().history("BTC/USDT", "1h", 100, 300, closed_only=False)
    far_first = _source()
    far_first.history("BTC/USDT", "1h", 3 * BLOCK_BARS, 3 * BLOCK_BARS + 10, closed_only=False)
    near_after = far_first.history("BTC/USDT", "1h", 100, 300, closed_only=False)

    assert near_after.equals(near_alone)


def test_block_by_block_generation_equals_one_shot():
    stepped = _source()
    for end in range(BLOCK_BARS // 2, 3 * BLOCK_BARS, BLOCK_BARS // 2):
        stepped.history("ETH/USDT", "1h", 0, end, closed_only=False)
    stepped_frame = stepped.history("ETH/USDT", "1h", 0, 3 * BLOCK_BARS, closed_only=False)
    one_shot = _source().history("ETH/USDT", "1h", 0, 3 * BLOCK_BARS, closed_only=False)

    assert stepped_frame.equals(one_shot)


def test_adding_symbols_does_not_change_existing_paths():
    alone = _source(300, symbols=["BTC/USDT"]).get_recent_candles(["BTC/USDT"], "1h", 300)
    crowded_source = _source(300, symbols=["NEW/USDT", "ZZZ/USDT", "ETH/USDT"])
    crowded = crowded_source.get_recent_candles(["NEW/USDT", "BTC/USDT", "ZZZ/USDT"], "1h", 300)

    assert [c for c in crowded if c.instrument.symbol == "BTC/USDT"] == alone


def test_bars_continue_from_the_previous_close_across_blocks():
    frame = _source().history("SOL/USDT", "1h", 0, 3 * BLOCK_BARS, closed_only=False)

    assert np.array_equal(frame["open"].to_numpy()[1:], frame["close"].to_numpy()[:-1])


def test_perpetual_and_other_usd_quotes_share_the_spot_path():
    source = _source(100)
    spot = source.history("BTC/USDT", "1h")
    assert source.history("BTC/USDT:USDT", "1h").equals(spot)
    assert source.history("BTC/USDC", "1h").equals(spot)
    assert pricing_key("eth/usdt") == "ETH"
    assert pricing_key("ETH/BTC") == "ETH/BTC"


# -- shape of the market -----------------------------------------------------------


@pytest.mark.parametrize("interval", ["1m", "15m", "1h", "4h", "1d"])
def test_ohlcv_is_valid_over_10000_bars(interval):
    source = _source()
    for symbol in ["BTC/USDT", "DOGE/USDT", "ODD/EUR"]:
        frame = source.history(symbol, interval, 0, 10_000, closed_only=False)
        o, h, low, c, v = (
            frame[col].to_numpy() for col in ("open", "high", "low", "close", "volume")
        )

        assert len(frame) == 10_000
        assert np.isfinite(frame[["open", "high", "low", "close", "volume"]].to_numpy()).all()
        assert (low > 0).all() and (v > 0).all()
        assert (low <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
        assert (h > low).all()


def test_served_candles_pass_full_validation():
    candles = _source(2 * BLOCK_BARS).get_recent_candles([*TRIO, "ANY/USDT"], "1h", BLOCK_BARS)

    assert len(candles) == 4 * BLOCK_BARS
    assert all(Candle.model_validate(c.model_dump()) == c for c in candles)


def test_starting_prices():
    source = _source(1)
    first = {
        c.instrument.symbol: c.open
        for c in source.get_recent_candles(list(DEFAULT_SYMBOLS), "1h", 1)
    }

    assert first["BTC/USDT"] == 60_000.0
    assert first["ETH/USDT"] == 3_000.0
    assert first["SOL/USDT"] == 150.0
    others = [price for symbol, price in first.items() if symbol not in TRIO]
    assert len(others) == 7 and all(1.0 <= p <= 100.0 for p in others)
    assert len(set(others)) == 7
    assert _source(1, seed=9).history("XRP/USDT", "1h")["open"][0] == first["XRP/USDT"]


def test_btc_and_eth_are_correlated_but_not_identical():
    source = _source()
    btc = _log_returns(source, "BTC/USDT", "1h", 5_000)
    eth = _log_returns(source, "ETH/USDT", "1h", 5_000)

    assert 0.5 <= np.corrcoef(btc, eth)[0, 1] <= 0.95


@pytest.mark.parametrize(("interval", "bars"), [("1m", 20_000), ("1h", 5_000), ("1d", 3_000)])
def test_btc_annualised_volatility_is_plausible_at_every_interval(interval, bars):
    returns = _log_returns(_source(), "BTC/USDT", interval, bars)
    bars_per_year = 365.25 * 86_400_000 / interval_ms(interval)

    assert 0.3 <= returns.std() * np.sqrt(bars_per_year) <= 1.2


def test_volatility_clusters_and_has_fat_tails():
    returns = _log_returns(_source(), "BTC/USDT", "1h", 10_000)
    size = np.abs(returns)
    standardised = (returns - returns.mean()) / returns.std()

    assert np.corrcoef(size[1:], size[:-1])[0, 1] > 0.05  # calm and stressed regimes
    assert np.mean(standardised**4) > 4.0  # kurtosis above the normal's 3 (regimes, jumps)


def test_volume_is_higher_in_volatile_bars():
    frame = _source().history("ETH/USDT", "1h", 0, 5_000, closed_only=False)
    size = np.abs(np.log(frame["close"] / frame["open"]).to_numpy())
    notional = (frame["volume"] * frame["open"]).to_numpy()

    assert np.corrcoef(size, notional)[0, 1] > 0.3


# -- the clock decides what is closed ------------------------------------------------


def test_only_candles_closed_at_the_clock_are_served():
    clock = ManualClock(DEFAULT_ORIGIN_MS + 5 * HOUR_MS + HOUR_MS // 2)
    source = SimulatedMarketDataSource(clock=clock)

    candles = source.get_recent_candles(["BTC/USDT"], "1h", 100)
    assert [c.ts for c in candles] == [DEFAULT_ORIGIN_MS + i * HOUR_MS for i in range(5)]
    assert source.latest_closed_index("1h") == 4

    clock.set(DEFAULT_ORIGIN_MS + 6 * HOUR_MS - 1)
    assert len(source.get_recent_candles(["BTC/USDT"], "1h", 100)) == 5
    clock.set(DEFAULT_ORIGIN_MS + 6 * HOUR_MS)
    latest = source.get_recent_candles(["BTC/USDT"], "1h", 100)[-1]
    assert latest.ts + HOUR_MS == clock.now_ms()


def test_closed_only_holds_at_every_step_of_a_stepped_run():
    clock = ManualClock(DEFAULT_ORIGIN_MS)
    source = SimulatedMarketDataSource(clock=clock)
    for _ in range(300):
        clock.advance(7 * 60_000)  # 7 minutes: not aligned with any interval
        for interval in ("5m", "15m", "1h"):
            step = interval_ms(interval)
            candles = source.get_recent_candles(["ETH/USDT"], interval, 30)
            assert all(c.ts + step <= clock.now_ms() for c in candles)
            expected = min(30, (clock.now_ms() - DEFAULT_ORIGIN_MS) // step)
            assert len(candles) == expected


def test_lookback_is_cut_at_the_origin_and_before_the_origin_nothing_exists():
    assert len(_source(10).get_recent_candles(TRIO, "1h", 120)) == 30
    before = SimulatedMarketDataSource(clock=ManualClock(DEFAULT_ORIGIN_MS - HOUR_MS))
    assert before.get_recent_candles(TRIO, "1h", 120) == []
    assert before.latest_closed_index("1h") == -1
    assert before.history("BTC/USDT", "1h").empty


def test_candles_are_grouped_by_symbol_oldest_first():
    candles = _source(50).get_recent_candles(["SOL/USDT", "BTC/USDT", "SOL/USDT"], "1h", 10)

    assert [c.instrument.symbol for c in candles] == ["SOL/USDT"] * 10 + ["BTC/USDT"] * 10
    assert [c.ts for c in candles[:10]] == sorted(c.ts for c in candles[:10])
    assert candles[0].instrument.exchange_id == "simulated"
    assert candles[0].instrument.quote_ccy == "USDT"
    assert candles[0].interval == "1h"


def test_live_pace_with_a_sped_up_system_clock():
    clock = SystemClock(speed=3600, origin_ms=DEFAULT_ORIGIN_MS)  # one hour per second
    source = SimulatedMarketDataSource(clock=clock)

    assert source.get_recent_candles(["BTC/USDT"], "1h", 10) == []
    time.sleep(1.1)
    assert len(source.get_recent_candles(["BTC/USDT"], "1h", 10)) == 1
    time.sleep(1.1)
    assert len(source.get_recent_candles(["BTC/USDT"], "1h", 10)) == 2


# -- interface details ---------------------------------------------------------------


def test_history_matches_the_candles_and_stops_at_the_clock():
    source = _source(300)
    frame = source.history("ETH/USDT", "1h", 250, 10_000)
    candles = source.get_recent_candles(["ETH/USDT"], "1h", 50)

    assert list(frame.columns) == ["ts", "open", "high", "low", "close", "volume"]
    assert len(frame) == 50
    assert frame["ts"].tolist() == [c.ts for c in candles]
    assert frame["close"].tolist() == [c.close for c in candles]
    assert len(source.history("ETH/USDT", "1h", 250, 10_000, closed_only=False)) == 9_750


def test_available_symbols_lists_defaults_then_extras():
    source = _source(symbols=["PEPE/USDT", "BTC/USDT"])

    assert source.available_symbols() == [*DEFAULT_SYMBOLS, "PEPE/USDT"]


def test_bad_requests_say_how_to_fix_them():
    source = _source(10)
    with pytest.raises(ValueError, match="unknown interval '2d'"):
        source.get_recent_candles(["BTC/USDT"], "2d", 10)
    with pytest.raises(ValueError, match="lookback"):
        source.get_recent_candles(["BTC/USDT"], "1h", -1)
    with pytest.raises(ValueError, match="blank"):
        source.get_recent_candles(["  "], "1h", 10)
    assert source.get_recent_candles(["BTC/USDT"], "1h", 0) == []


def test_concurrent_requests_see_the_same_market():
    source = _source(4 * BLOCK_BARS)
    results: dict[int, list[float]] = {}

    def read(worker: int) -> None:
        results[worker] = source.history("BTC/USDT", "1h")["close"].tolist()

    threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = _source(4 * BLOCK_BARS).history("BTC/USDT", "1h")["close"].tolist()
    assert all(closes == expected for closes in results.values())


def test_a_cycle_of_120_candles_for_3_symbols_is_fast_after_warm_up():
    clock = ManualClock(DEFAULT_ORIGIN_MS + 1_000 * HOUR_MS)
    source = SimulatedMarketDataSource(clock=clock)
    source.get_recent_candles(TRIO, "1h", 120)
    timings = []
    for _ in range(30):
        clock.advance(HOUR_MS)
        started = time.perf_counter()
        candles = source.get_recent_candles(TRIO, "1h", 120)
        timings.append(time.perf_counter() - started)
        assert len(candles) == 360

    assert statistics.median(timings) < 0.005


def test_paths_do_not_depend_on_the_process_hash_seed():
    script = (
        "from strategy_agent.clock import ManualClock\n"
        "from strategy_agent.data.simulated_market import SimulatedMarketDataSource as S\n"
        "s = S(clock=ManualClock(0), origin_ms=0)\n"
        "print(repr(float(s.history('NEW/COIN', '1h', 0, 50, closed_only=False)['close'].sum())))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }

    assert len(outputs) == 1
    assert float(outputs.pop()) > 0
