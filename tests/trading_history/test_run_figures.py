"""A run's figures stored when it ends: the same as computed from its history, never stale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from strategy_agent.backtest.compare import run_figures
from strategy_agent.backtest.driver import ConfigEntry, RunOutcome, plan_backtest, run_backtest
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS
from strategy_agent.models import EquityPoint, HistoryRecord, UserRequest
from strategy_agent.trading_history import schema
from strategy_agent.trading_history.run_figures import (
    figures_from_json,
    figures_json,
    stored_figures,
    strategy_figures,
)
from strategy_agent.trading_history.runs import create_run, finish_run, get_run, list_runs
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import request, write_equity

DAY = 86_400_000


def _config(name: str, model_id: str) -> ConfigEntry:
    rule = request(name, model_id, ["BTC/USDT", "ETH/USDT"])
    trading = rule.trading.model_copy(update={"lookback": 48})
    return ConfigEntry(name, rule.model_copy(update={"trading": trading}))


@pytest.fixture
def backtested(db_path: Path) -> tuple[Path, list[RunOutcome], object]:
    """Two built-in configs replayed over 5 days of the simulated market, as the CLI does."""
    with SqliteStore(db_path) as store:
        plan = plan_backtest(
            [_config("EMA", "ema_crossover"), _config("RSI", "rsi_reversion")],
            from_ms=DEFAULT_ORIGIN_MS + 2 * DAY,
            to_ms=DEFAULT_ORIGIN_MS + 7 * DAY - 1,
            store=store,
        )
    return db_path, run_backtest(plan, db_path), plan.data


def test_finish_run_stores_exactly_the_figures_computed_from_the_history(
    backtested: tuple[Path, list[RunOutcome], object],
) -> None:
    db, _, _ = backtested
    with SqliteStore(db) as store:
        runs = list_runs(store)
        assert all(store.scalar("SELECT run_metrics FROM runs WHERE id = ?", [r.id]) for r in runs)
        stored = stored_figures(store, {r.strategy_id: r.request for r in runs})
        assert set(stored) == {r.strategy_id for r in runs}
        for run in runs:
            fresh = strategy_figures(store, run.strategy_id, run.request)
            kept = stored[run.strategy_id]
            assert kept.run == fresh.run  # every figure, to the last bit (floats round-trip)
            assert (kept.equity, kept.cycles, kept.span) == (fresh.equity, fresh.cycles, fresh.span)
            for name in ("equity_ts", "equity", "benchmark_ts", "benchmark"):
                assert np.array_equal(getattr(kept.curves, name), getattr(fresh.curves, name))
        traded = [
            stored[r.strategy_id].run for r in runs if r.request.llm.model_id == "ema_crossover"
        ]
        assert traded[0].trades > 0 and traded[0].sharpe is not None  # figures worth comparing


def test_stored_figures_agree_with_the_command_lines_comparison(
    backtested: tuple[Path, list[RunOutcome], object],
) -> None:
    """The page's figures (recorded candles) are the CLI's (the batch's candles)."""
    db, outcomes, data = backtested
    with SqliteStore(db) as store:
        stored = stored_figures(store, {o.run.strategy_id: o.run.request for o in outcomes})
        for outcome in outcomes:
            cli = run_figures(store, outcome, data).metrics  # type: ignore[arg-type]
            page = stored[outcome.run.strategy_id].run
            for name in ("net_return_pct", "sharpe", "sortino", "max_drawdown_pct", "trades"):
                assert getattr(page, name) == getattr(cli, name), name
            assert page.buy_and_hold_return_pct == pytest.approx(
                cli.buy_and_hold_return_pct, rel=1e-12
            )


def _synthetic(db: Path, equities: list[float]) -> tuple[str, str, UserRequest]:
    with SqliteStore(db) as store:
        sid = store.create_strategy(request("Run · backtest", "noop", ["BTC/USDT"]), 5)
    write_equity(db, sid, equities)
    with SqliteStore(db) as store:
        req = store.get_strategy(sid).request
        run = create_run(
            store, kind="backtest", strategy_id=sid, request=req, data_source="simulated",
            data_hash="ab" * 32, window_from_ms=0, window_to_ms=len(equities) * 3_600_000,
            now_ms=7,
        )  # fmt: skip
        finish_run(store, run.id, "done", now_ms=8)
    return sid, run.id, req


def test_a_stored_copy_is_used_only_while_the_history_and_config_are_unchanged(
    db_path: Path,
) -> None:
    sid, _, req = _synthetic(db_path, [10_000.0 + 5 * i for i in range(40)])
    with SqliteStore(db_path) as store:
        assert sid in stored_figures(store, {sid: req})
        fee = req.exchange.model_copy(update={"fee_bps": req.exchange.fee_bps + 1})
        assert stored_figures(store, {sid: req.model_copy(update={"exchange": fee})}) == {}
    with SqliteStore(db_path) as store:  # one more cycle, the 41st
        ts = 41 * 3_600_000
        record = HistoryRecord(
            ts=ts, kind="compose", reference_id=f"{sid}-000041", payload={"cycle": 41}
        )
        point = EquityPoint(
            ts=ts, strategy_id=sid, cash=10_500.0, equity=10_500.0, realized_pnl=500.0,
            unrealized_pnl=0.0, fees_paid=0.0, gross_exposure=0.0, net_exposure=0.0,
        )  # fmt: skip
        store.write_cycle(sid, [record], [], [], point)
        assert stored_figures(store, {sid: req}) == {}  # stale: computed again by the pages
        assert strategy_figures(store, sid, req).run.bars == 41


def test_a_stored_copy_that_cannot_be_read_is_ignored(db_path: Path) -> None:
    sid, run_id, req = _synthetic(db_path, [10_000.0, 10_100.0, 9_900.0])
    with SqliteStore(db_path) as store:
        text = store.scalar("SELECT run_metrics FROM runs WHERE id = ?", [run_id])
        figures = figures_from_json(text)
        assert figures is not None and figures[2].run.net_return_pct == pytest.approx(-1.0)
        assert figures_json(figures[2], req) == text  # written again, byte for byte
        for broken in ("{", json.dumps({"format": 99}), json.dumps({"format": 1})):
            store.db.execute("UPDATE runs SET run_metrics = ? WHERE id = ?", [broken, run_id])
            store.db.conn.commit()
            assert figures_from_json(broken) is None
            assert stored_figures(store, {sid: req}) == {}


def test_a_version_7_database_gains_the_run_metrics_column(db_path: Path) -> None:
    with SqliteStore(db_path) as old:
        sid = old.create_strategy(UserRequest(), now_ms=0)
        kept = create_run(
            old, kind="backtest", strategy_id=sid, request=UserRequest(),
            data_source="simulated", now_ms=1,
        )  # fmt: skip
        old.db.execute("ALTER TABLE runs DROP COLUMN run_metrics")
        old.db.execute("PRAGMA user_version = 7")
        old.db.conn.commit()
    with SqliteStore(db_path) as upgraded:
        assert upgraded.schema_version == schema.SCHEMA_VERSION >= 8
        assert upgraded.scalar("SELECT run_metrics FROM runs WHERE id = ?", [kept.id]) is None
        assert stored_figures(upgraded, {sid: UserRequest()}) == {}  # running, nothing stored
        finish_run(upgraded, kept.id, "stopped", now_ms=2, reason="stopped by user")
        assert get_run(upgraded, kept.id).status == "stopped"
        assert sid in stored_figures(upgraded, {sid: UserRequest()})
