from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy_agent.models import Fill, InstrumentRef, TradeDigest, TradeHistoryEntry
from strategy_agent.trading_history.digest import (
    DigestBuilder,
    IncrementalDigest,
    RebuildDigest,
    rebuild_digest,
)

# -- helpers -----------------------------------------------------------------------------------


def fill(ts: int, symbol: str, realized: float = 0.0, fee: float = 0.0) -> Fill:
    return Fill(
        ts=ts, symbol=symbol, side="buy", quantity=1.0, price=100.0, fee=fee, realized_pnl=realized
    )


def trade(
    symbol: str,
    realized: float | None,
    fees: float = 0.0,
    *,
    quantity: float = 1.0,
    entry_price: float | None = 100.0,
    pct: float | None = None,
    entry_ts: int | None = 0,
    exit_ts: int | None = 1_000,
    holding: int | None = None,
) -> TradeHistoryEntry:
    return TradeHistoryEntry(
        instrument=InstrumentRef(symbol=symbol),
        side="buy",
        type="long",
        quantity=quantity,
        entry_price=entry_price,
        realized_pnl=realized,
        realized_pnl_pct=pct,
        fees=fees,
        entry_ts=entry_ts,
        exit_ts=exit_ts,
        holding_ms=holding,
    )


FLOAT_FIELDS = (
    "realized_pnl",
    "win_rate",
    "avg_holding_ms",
    "avg_entry_price",
    "max_drawdown",
    "recent_performance_score",
)
EXACT_FIELDS = ("instrument", "trade_count", "last_trade_ts", "last_loss_ts")


def assert_same_digest(left: TradeDigest, right: TradeDigest) -> None:
    assert left.ts == right.ts
    assert list(left.by_instrument) == list(right.by_instrument)
    for symbol, a in left.by_instrument.items():
        b = right.by_instrument[symbol]
        for name in EXACT_FIELDS:
            assert getattr(a, name) == getattr(b, name), (symbol, name)
        for name in FLOAT_FIELDS:
            x, y = getattr(a, name), getattr(b, name)
            if x is None or y is None:
                assert x is y, (symbol, name, x, y)
            else:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-9), (symbol, name)


# -- hand-computed example ------------------------------------------------------------------------


def example_history() -> tuple[list[Fill], list[TradeHistoryEntry]]:
    fills = [
        fill(1_000, "BTC/USDT"),
        fill(2_000, "BTC/USDT", realized=10.0),
        fill(3_000, "BTC/USDT"),
        fill(4_000, "BTC/USDT", realized=-6.0),
        fill(5_000, "BTC/USDT"),
        fill(6_000, "BTC/USDT", realized=2.0),
        fill(6_500, "ETH/USDT"),  # open, never closed
    ]
    trades = [
        trade("BTC/USDT", 10.0, 1.0, quantity=1.0, entry_price=100.0, pct=10.0,
              entry_ts=1_000, exit_ts=2_000),
        trade("BTC/USDT", -6.0, 1.0, quantity=3.0, entry_price=200.0, pct=-2.0,
              entry_ts=3_000, exit_ts=4_000, holding=500),
        trade("BTC/USDT", 2.0, 1.5, quantity=1.0, entry_price=None, pct=None,
              entry_ts=5_000, exit_ts=6_000),
    ]  # fmt: skip
    return fills, trades


def test_digest_definitions_on_a_hand_computed_example() -> None:
    fills, trades = example_history()
    digest = rebuild_digest(fills, trades, ts=7_000)
    assert list(digest.by_instrument) == ["BTC/USDT", "ETH/USDT"]
    btc = digest.by_instrument["BTC/USDT"]
    assert btc.trade_count == 3
    assert btc.realized_pnl == pytest.approx(6.0)  # 10 - 6 + 2, before fees
    # nets: 9, -7, 0.5 -> two winners of three
    assert btc.win_rate == pytest.approx(2 / 3)
    # holdings: 1000 (exit - entry), 500 (given), 1000
    assert btc.avg_holding_ms == pytest.approx(2500 / 3)
    assert btc.last_trade_ts == 6_000
    # (1 * 100 + 3 * 200) / 4; the trade without entry price is left out
    assert btc.avg_entry_price == pytest.approx(175.0)
    # cumulative net: 0, 9, 2, 2.5 -> peak 9, trough 2
    assert btc.max_drawdown == pytest.approx(7.0)
    assert btc.recent_performance_score == pytest.approx(4.0)  # mean(10, -2)
    assert btc.last_loss_ts == 4_000

    eth = digest.by_instrument["ETH/USDT"]
    assert (eth.trade_count, eth.realized_pnl, eth.last_trade_ts) == (0, 0.0, 6_500)
    assert eth.win_rate is None and eth.avg_holding_ms is None and eth.avg_entry_price is None
    assert eth.max_drawdown is None and eth.recent_performance_score is None
    assert eth.last_loss_ts is None


def test_incremental_digest_matches_the_example() -> None:
    fills, trades = example_history()
    incremental = IncrementalDigest()
    closes = {1: [trades[0]], 3: [trades[1]], 5: [trades[2]]}  # fill index -> trades it closed
    for index, f in enumerate(fills):
        incremental.update(f, closes.get(index, []))
    assert_same_digest(incremental.digest(7_000), rebuild_digest(fills, trades, 7_000))
    assert incremental.digest(7_000).by_instrument["BTC/USDT"].max_drawdown == pytest.approx(7.0)


def test_recent_performance_uses_the_last_five_trades_only() -> None:
    pcts = [100.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    trades = [trade("SOL/USDT", 1.0, pct=p) for p in pcts]
    for builder in (IncrementalDigest(), RebuildDigest()):
        entry = builder.build([], trades, ts=1).by_instrument["SOL/USDT"]
        assert entry.recent_performance_score == pytest.approx(3.0)
        assert entry.last_trade_ts is None  # no fill given


def test_drawdown_is_zero_when_the_curve_only_rises_and_missing_pnl_counts_as_zero() -> None:
    rising = [trade("BTC/USDT", 5.0), trade("BTC/USDT", 1.0)]
    assert rebuild_digest([], rising, 1).by_instrument["BTC/USDT"].max_drawdown == 0.0
    unknown = [trade("BTC/USDT", None, fees=2.0, exit_ts=77)]
    entry = IncrementalDigest.from_history([], unknown).digest(1).by_instrument["BTC/USDT"]
    assert (entry.win_rate, entry.max_drawdown, entry.last_loss_ts) == (0.0, 2.0, 77)


def test_empty_history_gives_an_empty_digest() -> None:
    builders: list[DigestBuilder] = [IncrementalDigest(), RebuildDigest()]
    for builder in builders:
        assert builder.build([], [], ts=5) == TradeDigest(ts=5, by_instrument={})


def test_build_resets_the_incremental_state() -> None:
    fills, trades = example_history()
    digest = IncrementalDigest.from_history(fills, trades)
    rebuilt = digest.build(fills[:2], trades[:1], ts=3)
    assert rebuilt.by_instrument["BTC/USDT"].trade_count == 1
    assert_same_digest(rebuilt, rebuild_digest(fills[:2], trades[:1], 3))


# -- property: incremental == rebuilt ----------------------------------------------------------------

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
money = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def histories(draw: Any) -> list[tuple[Fill, list[TradeHistoryEntry]]]:
    """A time-ordered stream of fills; the last fill of each round trip closes it."""
    events: list[tuple[Fill, list[TradeHistoryEntry]]] = []
    now = 0
    for _ in range(draw(st.integers(0, 12))):
        symbol = draw(st.sampled_from(SYMBOLS))
        entry_ts = now = now + draw(st.integers(0, 10_000))
        n_fills = draw(st.integers(1, 3))
        realized_parts = []
        for i in range(n_fills):
            now += draw(st.integers(0, 10_000))
            realized = 0.0 if i == 0 else draw(money)
            realized_parts.append(realized)
            f = Fill(
                ts=now,
                symbol=symbol,
                side=draw(st.sampled_from(["buy", "sell"])),
                quantity=draw(st.floats(min_value=1e-6, max_value=1e3)),
                price=draw(st.floats(min_value=1e-3, max_value=1e5)),
                fee=draw(positive),
                realized_pnl=realized,
            )
            events.append((f, []))
        if draw(st.booleans()):  # the round trip closed with the last fill
            closed = TradeHistoryEntry(
                instrument=InstrumentRef(symbol=symbol),
                side="buy",
                type="long",
                quantity=draw(st.floats(min_value=0.0, max_value=1e3)),
                entry_price=draw(st.none() | st.floats(min_value=0.0, max_value=1e5)),
                realized_pnl=draw(st.none() | st.just(sum(realized_parts)) | money),
                realized_pnl_pct=draw(st.none() | st.floats(min_value=-100, max_value=1e3)),
                fees=draw(positive),
                entry_ts=draw(st.none() | st.just(entry_ts)),
                exit_ts=draw(st.none() | st.just(now)),
                holding_ms=draw(st.none() | st.integers(0, 10**9)),
            )
            events[-1] = (events[-1][0], [closed])
    return events


@settings(max_examples=300, deadline=None)
@given(events=histories(), ts=st.integers(0, 10**12))
def test_incremental_digest_equals_rebuild(
    events: list[tuple[Fill, list[TradeHistoryEntry]]], ts: int
) -> None:
    fills = [f for f, _ in events]
    trades = [t for _, closed in events for t in closed]
    incremental = IncrementalDigest()
    for f, closed in events:
        incremental.update(f, closed)
    rebuilt = rebuild_digest(fills, trades, ts)
    assert_same_digest(incremental.digest(ts), rebuilt)
    assert_same_digest(IncrementalDigest.from_history(fills, trades).digest(ts), rebuilt)
    assert_same_digest(RebuildDigest().build(fills, trades, ts), rebuilt)
    for symbol, entry in rebuilt.by_instrument.items():
        assert entry.trade_count == sum(1 for t in trades if t.instrument.symbol == symbol)
        assert entry.max_drawdown is None or entry.max_drawdown >= 0


@pytest.mark.parametrize("builder", [IncrementalDigest, RebuildDigest])
def test_realized_pnl_is_net_of_fees_like_the_win_rate(builder: type[DigestBuilder]) -> None:
    # bought with a fee of 3, sold 2 higher with a fee of 3: gross +2, net -4: a loss
    fills = [fill(1, "BTC/USDT", fee=3.0), fill(2, "BTC/USDT", realized=2.0, fee=3.0)]
    trades = [trade("BTC/USDT", 2.0, fees=6.0)]
    entry = builder().build(fills, trades, ts=3).by_instrument["BTC/USDT"]
    assert entry.realized_pnl == pytest.approx(-4.0)
    assert entry.win_rate == 0.0
