"""The whole engine on the embedded default: many cycles, reconciliation, resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from strategy_agent.factory import StrategyRuntime, open_runtime
from strategy_agent.models import ExchangeConfig, TradingConfig, UserRequest
from strategy_agent.portfolio.ledger import Ledger
from strategy_agent.trading_history.digest import rebuild_digest
from strategy_agent.trading_history.store import SqliteStore

MARGIN = UserRequest(
    exchange=ExchangeConfig(market_type="margin", fee_bps=7, slippage_bps=3),
    trading=TradingConfig(
        strategy_name="ema margin",
        symbols=["BTC/USDT", "ETH/USDT"],
        interval="15m",
        max_leverage=2,
        max_position_pct=1.0,
        max_gross_exposure=2.0,
        max_net_exposure=2.0,
        allow_short=True,
        seed=7,
    ),
)


def run(store: SqliteStore, strategy_id: str, cycles: int) -> StrategyRuntime:
    runtime = open_runtime(store, strategy_id)
    for _ in range(cycles):
        report = runtime.step()
        assert report.ok, report.error
    return runtime


def state(runtime: StrategyRuntime) -> dict[str, object]:
    ledger = runtime.ledger
    return {
        "cash": ledger.cash,
        "realized": ledger.realized_pnl,
        "fees": ledger.fees_paid,
        "positions": {s: (p.quantity, p.avg_price) for s, p in ledger.positions.items()},
        "cycles": runtime.coordinator.cycles_done,
        "clock": runtime.clock.now_ms(),
    }


@pytest.mark.parametrize("request_", [UserRequest(), MARGIN], ids=["spot-default", "margin-short"])
def test_many_cycles_reconcile_with_fills_table(db_path: Path, request_: UserRequest) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(request_, now_ms=0)
    runtime = run(store, sid, 300)
    ledger = runtime.ledger
    capital = request_.trading.initial_capital
    totals = store.fill_totals(sid)
    assert totals["fills"] > 4, "the demo strategy should trade in 300 cycles"
    assert math.isclose(totals["realized_pnl"], ledger.realized_pnl, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(totals["fees"], ledger.fees_paid, rel_tol=1e-9)
    latest = store.latest_equity(sid)
    assert latest is not None
    assert math.isclose(
        latest.equity,
        capital + latest.realized_pnl + latest.unrealized_pnl - latest.fees_paid,
        rel_tol=1e-9,
    )
    assert math.isclose(latest.equity, ledger.equity, rel_tol=1e-12)
    # every equity point reconciles, not only the last
    for point in store.equity_series(sid, max_points=10_000):
        expected = capital + point.realized_pnl + point.unrealized_pnl - point.fees_paid
        assert math.isclose(point.equity, expected, rel_tol=1e-9)
    assert store.cycle_count(sid) == 300
    kinds = {r.kind for r in store.records(sid, limit=8)}
    assert kinds == {"features", "compose", "instructions", "execution"}


def test_margin_strategy_goes_short(db_path: Path) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(MARGIN, now_ms=0)
    run(store, sid, 300)
    sides = {t.type for t in store.load_trades(sid)}
    assert "short" in sides


def test_resume_after_restart_is_exact(db_path: Path) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(MARGIN, now_ms=0)
    first = run(store, sid, 120)
    before = state(first)
    digest_before = first.coordinator._digest.digest(0)
    store.close()

    reopened = SqliteStore(db_path)
    resumed = open_runtime(reopened, sid)
    assert state(resumed) == before
    assert resumed.coordinator._digest.digest(0) == digest_before
    assert rebuild_digest(reopened.load_fills(sid), reopened.load_trades(sid), 0) == digest_before

    # continuing after a restart gives the same result as never stopping
    run(reopened, sid, 60)
    straight_store = SqliteStore(db_path.with_name("straight.db"))
    sid2 = straight_store.create_strategy(MARGIN, now_ms=0, strategy_id=sid)
    straight = run(straight_store, sid2, 180)
    after = state(open_runtime(reopened, sid))
    assert after["cycles"] == 180
    assert after == state(straight)


def test_replayed_ledger_matches_stored_equity(db_path: Path) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(UserRequest(), now_ms=0)
    runtime = run(store, sid, 150)
    replayed = Ledger.replay(store.load_fills(sid), initial_capital=10_000.0)
    assert math.isclose(replayed.cash, runtime.ledger.cash, rel_tol=1e-12)
    assert math.isclose(replayed.realized_pnl, runtime.ledger.realized_pnl, abs_tol=1e-9)
