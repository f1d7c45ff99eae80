"""Portfolio queries: metrics from the latest equity point, positions from the ledger."""

from __future__ import annotations

import pytest

from strategy_agent.models import interval_ms
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.portfolio import last_prices, overview, symbol_chart
from tests.app.helpers import Populated, request, write_equity


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


def test_a_blown_book_shows_its_gross_exposure_not_zero_percent(
    store: SqliteStore, history: Populated
) -> None:
    sid = store.create_strategy(request("Blown", "noop"), 5)
    write_equity(history.db, sid, [10_000.0, 4_000.0, -2_000.0], gross=1_300_000.0)
    view = overview(store, sid)
    assert view.blown_up
    assert view.exposure_pct is None  # undefined on equity <= 0, never 0.0 %
    assert view.gross_exposure == 1_300_000.0
    assert view.return_pct == pytest.approx(-120.0)


def test_exposure_is_gross_over_equity_while_equity_is_positive(
    store: SqliteStore, history: Populated
) -> None:
    sid = store.create_strategy(request("Levered", "noop"), 5)
    write_equity(history.db, sid, [10_000.0, 8_000.0], gross=20_000.0)
    view = overview(store, sid)
    assert not view.blown_up
    assert view.exposure_pct == pytest.approx(250.0)


def test_candles_are_the_ones_the_cycles_recorded_without_building_a_market(
    store: SqliteStore, history: Populated, monkeypatch: pytest.MonkeyPatch
) -> None:
    import strategy_agent.factory as factory
    from strategy_agent.clock import ManualClock
    from strategy_agent.data.simulated_market import (
        DEFAULT_ORIGIN_MS,
        SimulatedMarketDataSource,
    )

    last_ts = store.last_cycle_ts(history.hold_id)
    assert last_ts is not None

    def no_market(*args: object, **kwargs: object) -> None:
        raise AssertionError("a page query built a market")

    monkeypatch.setattr(factory, "build_market", no_market)
    chart = symbol_chart(store, history.hold_id, "BTC/USDT", bars=25)
    source = SimulatedMarketDataSource(
        seed=42, clock=ManualClock(last_ts), origin_ms=DEFAULT_ORIGIN_MS
    )
    market = source.history("BTC/USDT", "1h").set_index("ts")
    assert len(chart.candles) == 25
    for candle in chart.candles.itertuples():
        expected = market.loc[candle.ts]
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
            pytest.approx(expected["open"]),
            pytest.approx(expected["high"]),
            pytest.approx(expected["low"]),
            pytest.approx(expected["close"]),
            pytest.approx(expected["volume"]),
        )


def test_equity_chart_drawdown_is_the_metric_from_the_initial_capital(
    store: SqliteStore, history: Populated
) -> None:
    from strategy_agent.trading_history import metrics
    from strategy_agent.views.charts import equity_figure

    sid = store.create_strategy(request("Down", "noop"), 5)
    write_equity(history.db, sid, [9_000.0, 9_500.0, 8_550.0])
    view = overview(store, sid)
    figure = equity_figure(view.equity_curve, view.initial_capital)
    drawdown = figure.data[1]
    expected = metrics.drawdown_pct([9_000.0, 9_500.0, 8_550.0], 10_000.0)
    assert list(drawdown.y) == pytest.approx(list(-expected))  # 10 % down on the first cycle
