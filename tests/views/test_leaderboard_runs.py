"""Backtest runs on the Leaderboard: grouped by window and data, in-sample marked, read fast."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from strategy_agent.trading_history import page_queries
from strategy_agent.trading_history.run_figures import strategy_figures
from strategy_agent.trading_history.runs import create_run, finish_run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import leaderboard as lb
from strategy_agent.views import memo
from strategy_agent.views.leaderboard_windows import RunDataWindow
from tests.app.helpers import request, write_equity

H = 3_600_000
HASH_A, HASH_B = "a" * 64, "b" * 64


def run_of(
    db: Path,
    name: str,
    equities: list[float],
    *,
    data_hash: str = HASH_A,
    batch: str = "batch-1",
    in_sample: str | None = None,
) -> str:
    """A finished backtest run over hourly candles 0..n-1 of BTC/USDT (its strategy id)."""
    with SqliteStore(db) as store:
        sid = store.create_strategy(request(f"{name} · backtest", "noop", ["BTC/USDT"]), 5)
    write_equity(db, sid, equities)  # cycles at 1 h .. n h: candles 0 .. n-1
    with SqliteStore(db) as store:
        run = create_run(
            store, kind="backtest", strategy_id=sid, request=store.get_strategy(sid).request,
            data_source="simulated", data_hash=data_hash, window_from_ms=0,
            window_to_ms=(len(equities) - 1) * H, batch_id=batch, now_ms=6, in_sample=in_sample,
        )  # fmt: skip
        finish_run(store, run.id, "done", now_ms=7)
    return sid


def live_of(db: Path, name: str, equities: list[float]) -> str:
    with SqliteStore(db) as store:
        sid = store.create_strategy(request(name, "noop", ["BTC/USDT"]), 5)
    write_equity(db, sid, equities)
    return sid


def rising(step: float, bars: int = 41) -> list[float]:
    return [10_000.0 + step * i for i in range(bars)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    memo.clear()
    return tmp_path / "board.db"


def test_runs_are_ranked_only_against_runs_over_the_same_window_and_data(db: Path) -> None:
    a1 = run_of(db, "A1", rising(10))
    a2 = run_of(db, "A2", rising(20), in_sample="in-sample for this model: its training ...")
    other_data = run_of(db, "B", rising(30), data_hash=HASH_B, batch="batch-2")
    shorter = run_of(db, "Short", rising(40, bars=20), batch="batch-3")
    live = live_of(db, "Live", rising(50))  # the same span and market as A1, A2: not a run
    with SqliteStore(db) as store:
        board = lb.leaderboard(store)
    groups = {frozenset(g.ids): g for g in board.windows}
    assert set(groups) == {
        frozenset({a1, a2}),
        frozenset({other_data}),
        frozenset({shorter}),
        frozenset({live}),
    }
    both = groups[frozenset({a1, a2})]
    assert both.backtest and isinstance(both.window, RunDataWindow)
    assert both.label == (
        f"Backtest · simulated (data sha256 {'a' * 12}) · 1970-01-01 00:00 UTC → "
        f"1970-01-02 16:00 UTC"
    )
    assert not groups[frozenset({live})].backtest
    assert board.windows[0] is both  # the largest group first
    ranked = board.group_table(both)
    assert list(ranked["Strategy"]) == ["A2 · backtest", "A1 · backtest"]  # by return
    notes = ranked.set_index("id")["Note"]
    assert notes[a2].startswith("In-sample for this model")
    assert "In-sample" not in (notes[a1] or "")
    assert board.in_sample == {a2}


def test_missing_figures_rank_last_inside_a_run_group(db: Path) -> None:
    steady = run_of(db, "Steady", rising(10))
    flat = run_of(db, "Flat", [10_000.0] * 41)  # no variation: no Sharpe (missing, not 0)
    worse = run_of(db, "Worse", rising(-10))
    with SqliteStore(db) as store:
        board = lb.leaderboard(store)
    group = next(g for g in board.windows if flat in g.ids)
    by_sharpe = board.group_table(group, "Sharpe")
    assert list(by_sharpe["id"]) == [steady, worse, flat]
    assert pd.isna(by_sharpe["Sharpe"].iloc[-1]) and pd.isna(by_sharpe["#"].iloc[-1])


def test_a_finished_run_is_read_from_its_stored_figures_not_its_equity(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_of(db, "Done", rising(10))
    live = live_of(db, "Live", rising(20))
    with SqliteStore(db) as store:
        expected = strategy_figures(store, run, store.get_strategy(run).request)
    read: list[str] = []
    column = page_queries.equity_column

    def counted(store: SqliteStore, strategy_id: str) -> object:
        read.append(strategy_id)
        return column(store, strategy_id)

    monkeypatch.setattr(page_queries, "equity_column", counted)
    with SqliteStore(db) as store:
        board = lb.leaderboard(store)
    assert read == [live]  # the live strategy is computed, the finished run is not
    row = board.table.set_index("id").loc[run]
    assert row["Return (%)"] == expected.run.net_return_pct
    assert row["Sharpe"] == expected.run.sharpe and row["Cycles"] == expected.cycles == 41
    assert row["Drawdown duration"] == expected.run.max_drawdown_duration_ms
    curve = board.curves[f"Done · backtest ({run})"]
    assert curve["value"].iloc[0] == 100.0 and len(curve) == 42  # capital, then 41 points


def test_many_curves_are_drawn_with_fewer_points_each_but_the_same_figures(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [run_of(db, f"R{i}", rising(i + 1, bars=500), batch=f"b{i}") for i in range(3)]
    with SqliteStore(db) as store:
        board = lb.leaderboard(store)
    curves, _ = board.curves_for(ids[:1])
    assert len(next(iter(curves.values()))) == 401  # capital + at most 400 points
    monkeypatch.setattr(lb, "CURVE_POINT_BUDGET", 300)  # 100 points each for 3 curves
    thin, _ = board.curves_for(ids)
    for label, frame in thin.items():
        assert len(frame) == 101
        full = curves.get(label)
        if full is not None:  # the first and last points are kept
            assert frame["value"].iloc[-1] == full["value"].iloc[-1]
    table = board.table.set_index("id")
    assert table.loc[ids[2], "Return (%)"] == pytest.approx(3 * 499 / 100)
