"""Technical features: equal to TA-Lib after warm-up, no look-ahead, warm-up omitted."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

from strategy_agent.clock import ManualClock
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.features.technical_indicators import (
    FEATURE_NAMES,
    TechnicalFeatureComputer,
    candle_frame,
    indicator_frame,
)
from strategy_agent.models import Candle, InstrumentRef

HOUR_MS = 3_600_000
WARM_UP = 100


def _market(bars: int) -> tuple[SimulatedMarketDataSource, ManualClock]:
    clock = ManualClock(DEFAULT_ORIGIN_MS + bars * HOUR_MS)
    return SimulatedMarketDataSource(clock=clock), clock


def _candles(symbol: str, bars: int, interval: str = "1h") -> list[Candle]:
    source, _ = _market(bars * 24 if interval == "1d" else bars)
    return source.get_recent_candles([symbol], interval, bars)


def _talib_reference(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    close = frame["close"].to_numpy()
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    macd, macd_signal, macd_hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    return {
        "ema_12": talib.EMA(close, 12),
        "ema_26": talib.EMA(close, 26),
        "ema_50": talib.EMA(close, 50),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "atr_14": talib.ATR(high, low, close, 14),
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
    }


# -- equal to TA-Lib --------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT", "DOGE/USDT"])
def test_indicators_match_talib_after_warm_up(symbol):
    source, _ = _market(1_500)
    frame = source.history(symbol, "1h")
    ours = indicator_frame(frame)

    for name, reference in _talib_reference(frame).items():
        expected = reference[WARM_UP:]
        got = ours[name].to_numpy()[WARM_UP:]
        scale = np.max(np.abs(expected))
        assert np.isfinite(got).all(), name
        assert np.max(np.abs(got - expected)) / scale < 1e-6, name


def test_warm_up_starts_where_talib_starts():
    source, _ = _market(200)
    frame = source.history("SOL/USDT", "1h")
    ours = indicator_frame(frame)

    for name, reference in _talib_reference(frame).items():
        first_talib = int(np.argmax(~np.isnan(reference)))
        first_ours = int(np.argmax(ours[name].notna().to_numpy()))
        # TA-Lib hides the MACD line until the signal exists; ours shows it from bar 25.
        assert first_ours == (25 if name == "macd" else first_talib), name


def test_feature_vector_holds_the_last_row_of_the_indicator_frame():
    candles = _candles("ETH/USDT", 300)
    [vector] = TechnicalFeatureComputer().compute_features(candles)
    last = indicator_frame(candle_frame(candles)).iloc[-1]
    reference = _talib_reference(candle_frame(candles))

    assert set(vector.values) == set(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        assert vector.values[name] == pytest.approx(float(last[name]), rel=1e-12)
    for name, series in reference.items():
        assert vector.values[name] == pytest.approx(series[-1], rel=1e-9)


def test_return_volatility_and_volume_definitions():
    candles = _candles("BTC/USDT", 60)
    frame = candle_frame(candles)
    close, volume = frame["close"].to_numpy(), frame["volume"].to_numpy()
    [vector] = TechnicalFeatureComputer().compute_features(candles)
    log_returns = np.diff(np.log(close))[-24:]
    window = volume[-20:]

    assert vector.values["close"] == close[-1]
    assert vector.values["ret_1"] == pytest.approx(close[-1] / close[-2] - 1)
    assert vector.values["ret_4"] == pytest.approx(close[-1] / close[-5] - 1)
    assert vector.values["ret_24"] == pytest.approx(close[-1] / close[-25] - 1)
    assert vector.values["realized_vol_24"] == pytest.approx(np.std(log_returns, ddof=1))
    assert vector.values["volume_z_20"] == pytest.approx(
        (volume[-1] - window.mean()) / window.std(ddof=1)
    )
    lower, upper = vector.values["bb_lower"], vector.values["bb_upper"]
    assert vector.values["bb_pct_b"] == pytest.approx((close[-1] - lower) / (upper - lower))


# -- no look-ahead ---------------------------------------------------------------------------


def test_indicator_rows_do_not_change_when_later_candles_arrive():
    source, _ = _market(400)
    full = indicator_frame(source.history("BTC/USDT", "1h"))
    for cut in (30, 120, 250):
        partial = indicator_frame(source.history("BTC/USDT", "1h", 0, cut))
        pd.testing.assert_frame_equal(partial, full.iloc[:cut], check_exact=False, rtol=1e-12)


def test_features_at_time_t_ignore_candles_not_closed_at_t():
    source, clock = _market(300)
    now_candles = source.get_recent_candles(["BTC/USDT"], "1h", 300)
    before = TechnicalFeatureComputer().compute_features(now_candles)

    clock.advance(50 * HOUR_MS)
    with_future = source.get_recent_candles(["BTC/USDT"], "1h", 350)
    clock.advance(-50 * HOUR_MS)
    after = TechnicalFeatureComputer(clock=clock).compute_features(with_future)

    assert after == before
    assert after[0].meta["candle_ts"] == now_candles[-1].ts


# -- warm-up and shape ---------------------------------------------------------------------------


def test_warm_up_values_are_omitted():
    [short] = TechnicalFeatureComputer().compute_features(_candles("BTC/USDT", 20))
    [enough] = TechnicalFeatureComputer().compute_features(_candles("BTC/USDT", 26))

    assert {"close", "ema_12", "rsi_14", "atr_14", "bb_middle", "ret_4"} <= set(short.values)
    assert not {"ema_26", "ema_50", "macd", "ret_24", "realized_vol_24"} & set(short.values)
    assert "ema_26" in enough.values and "macd" in enough.values
    assert "macd_signal" not in enough.values
    assert all(math.isfinite(v) for v in short.values.values())


def test_a_single_candle_gives_only_the_close():
    [vector] = TechnicalFeatureComputer().compute_features(_candles("ETH/USDT", 1))

    assert vector.values == {"close": vector.meta["series"]["close"][0]}
    assert vector.meta["series"]["rsi_14"] == []


def test_flat_prices_give_only_finite_values():
    instrument = InstrumentRef(symbol="FLAT/USDT")
    candles = [
        Candle(
            ts=DEFAULT_ORIGIN_MS + i * HOUR_MS,
            instrument=instrument,
            open=10.0,
            high=10.0,
            low=10.0,
            close=10.0,
            volume=5.0,
            interval="1h",
        )
        for i in range(80)
    ]
    [vector] = TechnicalFeatureComputer().compute_features(candles)

    assert all(math.isfinite(v) for v in vector.values.values())
    assert "rsi_14" not in vector.values  # 0/0: undefined, so omitted
    assert "volume_z_20" not in vector.values and "bb_pct_b" not in vector.values
    assert vector.values["ema_50"] == 10.0 and vector.values["atr_14"] == 0.0


def test_meta_carries_interval_candle_time_and_short_series():
    candles = _candles("SOL/USDT", 120)
    [vector] = TechnicalFeatureComputer().compute_features(candles)
    rsi = talib.RSI(candle_frame(candles)["close"].to_numpy(), 14)

    assert vector.meta["interval"] == "1h"
    assert vector.meta["candle_ts"] == candles[-1].ts
    assert vector.ts == candles[-1].ts + HOUR_MS  # known when the candle closed
    assert vector.meta["series"]["close"] == [c.close for c in candles[-12:]]
    assert vector.meta["series"]["rsi_14"] == pytest.approx(list(rsi[-12:]), rel=1e-9)
    assert vector.instrument == candles[-1].instrument


def test_symbols_and_intervals_are_computed_separately():
    source, _ = _market(24 * 60)
    btc = source.get_recent_candles(["BTC/USDT"], "1h", 120)
    eth = source.get_recent_candles(["ETH/USDT"], "1h", 120)
    btc_daily = source.get_recent_candles(["BTC/USDT"], "1d", 40)
    interleaved = [c for pair in zip(btc, eth, strict=True) for c in pair] + btc_daily

    vectors = TechnicalFeatureComputer().compute_features(interleaved)
    by_key = {(v.instrument.symbol, v.meta["interval"]): v for v in vectors}
    computer = TechnicalFeatureComputer()

    assert len(vectors) == 3
    assert by_key["BTC/USDT", "1h"] == computer.compute_features(btc)[0]
    assert by_key["ETH/USDT", "1h"] == computer.compute_features(eth)[0]
    assert by_key["BTC/USDT", "1d"] == computer.compute_features(btc_daily)[0]
    assert "ema_50" not in by_key["BTC/USDT", "1d"].values


def test_unsorted_and_repeated_candles_are_put_in_order():
    candles = _candles("BTC/USDT", 80)
    shuffled = candles[40:] + candles[:40] + candles[10:20]

    assert TechnicalFeatureComputer().compute_features(shuffled) == (
        TechnicalFeatureComputer().compute_features(candles)
    )


def test_no_candles_no_features():
    assert TechnicalFeatureComputer().compute_features([]) == []
