"""Candles built from checked columns are the candles ``Candle(...)`` validates, or its error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from strategy_agent.clock import ManualClock
from strategy_agent.data.candle_rows import candles_from_columns
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.models import Candle, InstrumentRef

H = 3_600_000
INSTRUMENT = InstrumentRef(symbol="ETH/USDT", exchange_id="simulated", quote_ccy="USDT")
COLUMNS = ("open", "high", "low", "close", "volume")


def plain(instrument: Any, interval: str, stamps: Any, ohlcv: np.ndarray) -> list[Candle] | str:
    """The candles validated one by one, or the errors of the first one that fails (their
    repr: an error's input may be NaN, which equals nothing)."""
    rows = ohlcv.tolist()
    candles = []
    for offset, ts in enumerate(stamps):
        fields = dict(zip(COLUMNS, (row[offset] for row in rows), strict=True))
        try:
            candles.append(Candle(ts=ts, instrument=instrument, **fields, interval=interval))
        except ValidationError as error:
            return repr(error.errors(include_url=False))
    return candles


def built(instrument: Any, interval: str, stamps: Any, ohlcv: np.ndarray) -> list[Candle] | str:
    try:
        return candles_from_columns(instrument, interval, stamps, ohlcv)
    except ValidationError as error:
        return repr(error.errors(include_url=False))


def assert_same(got: list[Candle] | str, want: list[Candle] | str) -> None:
    assert got == want
    if isinstance(got, str) or isinstance(want, str):
        return
    for have, expected in zip(got, want, strict=True):
        assert list(have.__dict__.items()) == list(expected.__dict__.items())
        assert have.model_fields_set == expected.model_fields_set
        assert have.instrument is expected.instrument


PRICES = st.floats(min_value=1e-6, max_value=1e9)
BROKEN = st.one_of(
    PRICES, st.sampled_from([0.0, -1.0, -0.0, float("nan"), float("inf"), 5e-324, 1e308])
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[Any, np.ndarray]:
    """Consistent candles (low <= open, close <= high); in about half the tables one value
    is replaced by another (maybe breaking a rule, maybe not)."""
    count = draw(st.integers(min_value=0, max_value=6))
    rows = []
    for _ in range(count):
        open_, close = draw(PRICES), draw(PRICES)
        spread_up, spread_down = draw(st.floats(0, 0.1)), draw(st.floats(0, 0.1))
        high = max(open_, close) * (1 + spread_up)
        low = min(open_, close) * (1 - spread_down)
        rows.append([open_, high, low, close, draw(st.floats(0, 1e12))])
    if count and draw(st.booleans()):
        row = draw(st.integers(0, count - 1))
        rows[row][draw(st.integers(0, 4))] = draw(BROKEN)
    ohlcv = np.array(rows, dtype=float).reshape(count, 5).T.copy()
    start = draw(st.sampled_from([0, DEFAULT_ORIGIN_MS, -H]))
    stamps: Any = range(start, start + count * H, H)
    if draw(st.booleans()):
        stamps = list(stamps)  # a plain list of ints (a replay's stamps)
    return stamps, ohlcv


@settings(max_examples=300)
@given(table=tables(), interval=st.sampled_from(["1h", "1d", "2d", "5m"]))
def test_built_candles_equal_validated_ones_or_fail_with_the_same_errors(
    table: tuple[Any, np.ndarray], interval: str
) -> None:
    stamps, ohlcv = table
    want = plain(INSTRUMENT, interval, stamps, ohlcv)
    event("refused" if isinstance(want, str) else "built")
    assert_same(built(INSTRUMENT, interval, stamps, ohlcv), want)


@pytest.mark.parametrize(
    ("instrument", "stamps"),
    [
        ({"symbol": "ETH/USDT"}, range(0, 2 * H, H)),  # a dict: validation makes the instrument
        (INSTRUMENT, [0, np.int64(H)]),  # a numpy int: validation makes it an int
        (INSTRUMENT, [0.0, float(H)]),  # floats: likewise
    ],
)
def test_inputs_validation_would_convert_are_validated(instrument: Any, stamps: Any) -> None:
    ohlcv = np.array([[100.0, 101.0], [102.0, 103.0], [99.0, 100.0], [101.0, 102.0], [5, 6]])
    got = built(instrument, "1h", stamps, ohlcv)
    assert not isinstance(got, str)
    assert got == plain(instrument, "1h", stamps, ohlcv)
    assert all(type(candle.ts) is int for candle in got)


def test_the_simulated_markets_candles_are_the_validated_candles_of_its_history() -> None:
    clock = ManualClock(DEFAULT_ORIGIN_MS + 600 * H)
    source = SimulatedMarketDataSource(["BTC/USDT", "ETH/USDT"], seed=11, clock=clock)
    candles = source.get_recent_candles(["BTC/USDT", "ETH/USDT"], "1h", 500)
    expected = []
    for symbol in ("BTC/USDT", "ETH/USDT"):
        frame = source.history(symbol, "1h", 100, 600)
        instrument = InstrumentRef(symbol=symbol, exchange_id="simulated", quote_ccy="USDT")
        for row in frame.itertuples(index=False):
            values = {name: float(getattr(row, name)) for name in COLUMNS}
            expected.append(Candle(ts=int(row.ts), instrument=instrument, interval="1h", **values))
    assert len(candles) == 1000
    assert [c.model_dump() for c in candles] == [c.model_dump() for c in expected]


def test_an_interval_that_is_a_str_subclass_or_no_str_is_left_to_validation() -> None:
    instrument = InstrumentRef(symbol="BTC/USDT")
    ohlcv = np.array([[1.0], [2.0], [0.5], [1.5], [3.0]])
    (built,) = candles_from_columns(instrument, np.str_("1h"), [0], ohlcv)  # type: ignore[arg-type]
    assert type(built.interval) is str and built == Candle(
        ts=0,
        instrument=instrument,
        open=1.0,
        high=2.0,
        low=0.5,
        close=1.5,
        volume=3.0,
        interval="1h",
    )
    with pytest.raises(ValidationError):  # not an unhashable-type TypeError
        candles_from_columns(instrument, ["1h"], [0], ohlcv)  # type: ignore[arg-type]
