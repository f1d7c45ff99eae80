"""Portfolio queries: metrics from the latest equity point, positions from the ledger."""

from __future__ import annotations

import pytest

from strategy_agent.models import interval_ms
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.portfolio import last_prices, overview, symbol_chart
from tests.app.helpers import Populated, request


def test_fresh_strategy_shows_its_capital_and_no_position(store: SqliteStore) -> None:
    sid = store.create_strategy(request("Fresh", "noop"), 1)
    view = overview(store, sid)
    assert not view.started
    assert view.equity == view.cash == 10_000.0
    assert view.return_pct == 0.0 and view.positions.empty and view.equity_curve.empty


def test_metrics_match_the_latest_equity_point(store: SqliteStore, history: Populated) -> None:
    view = overview(store, history.hold_id)
    latest = store.latest_equity(history.hold_id)
    assert latest is not None
    assert view.equity == latest.equity and view.cash == latest.cash
    assert view.return_pct == pytest.approx((latest.equity / 10_000 - 1) * 100)
    assert view.exposure_pct == pytest.approx(latest.gross_exposure / latest.equity * 100)
    assert len(view.equity_curve) == 40


def test_positions_are_the_ledger_marked_at_the_last_prices(
    store: SqliteStore, history: Populated
) -> None:
    view = overview(store, history.hold_id)
    latest = store.latest_equity(history.hold_id)
    assert latest is not None
    positions = view.positions.set_index("Symbol")
    assert list(positions.index) == ["BTC/USDT", "ETH/USDT"]
    prices = last_prices(store, history.hold_id)
    for symbol, row in positions.iterrows():
        assert row["Mark (USDT)"] == prices[symbol]
        bought = sum(f.quantity for f in store.load_fills(history.hold_id) if f.symbol == symbol)
        assert row["Quantity"] == pytest.approx(bought)
    unrealized = positions["Unrealized P&L (USDT)"].sum()
    assert unrealized == pytest.approx(latest.unrealized_pnl)
    assert set(positions["Holding time"]) == {"1 d 15 h"}  # 40 cycles of 1h, bought at the first


def test_symbol_chart_ends_at_the_last_cycle_with_its_fills(
    store: SqliteStore, history: Populated
) -> None:
    chart = symbol_chart(store, history.trend_id, "ETH/USDT", bars=100)
    last_ts = store.last_cycle_ts(history.trend_id)
    assert last_ts is not None
    step = interval_ms("1h")
    assert len(chart.candles) == 100
    assert int(chart.candles["ts"].iloc[-1]) + step == last_ts  # the last closed candle
    fills = [
        f
        for f in store.load_fills(history.trend_id)
        if f.symbol == "ETH/USDT" and f.ts > int(chart.candles["ts"].iloc[0])
    ]
    assert len(chart.fills) == len(fills)
    assert set(chart.fills["side"]) <= {"buy", "sell"}


def test_symbol_chart_before_any_cycle_is_empty(store: SqliteStore) -> None:
    sid = store.create_strategy(request("Fresh", "noop"), 1)
    chart = symbol_chart(store, sid, "BTC/USDT")
    assert chart.candles.empty and chart.fills.empty
