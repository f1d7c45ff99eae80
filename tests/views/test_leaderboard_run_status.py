"""Backtest runs on the Leaderboard show their own status (runs table), and runs over the same
data (same sha256) and window share one table whatever path named the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.trading_history.runs import RunStatus, create_run, finish_run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import leaderboard as lb
from strategy_agent.views import memo
from strategy_agent.views.leaderboard_windows import STATUS_REASON_CHARS
from tests.app.helpers import request, write_equity

H = 3_600_000
HASH = "c" * 64


def run_of(
    db: Path,
    name: str,
    *,
    status: RunStatus = "done",
    reason: str | None = None,
    source: str = "simulated",
    data_hash: str = HASH,
    bars: int = 41,
) -> str:
    """A finished backtest run over hourly candles 0..bars-1, its strategy row set as the
    backtest driver sets it (``stopped`` unless failed)."""
    with SqliteStore(db) as store:
        sid = store.create_strategy(request(f"{name} · backtest", "noop", ["BTC/USDT"]), 5)
    write_equity(db, sid, [10_000.0 + 5 * i for i in range(bars)])
    with SqliteStore(db) as store:
        run = create_run(
            store, kind="backtest", strategy_id=sid, request=store.get_strategy(sid).request,
            data_source=source, data_hash=data_hash, window_from_ms=0,
            window_to_ms=(bars - 1) * H, batch_id=f"batch-{name}", now_ms=6,
        )  # fmt: skip
        finish_run(store, run.id, status, now_ms=7, reason=reason)
        text = f"backtest {status}" + (f": {reason}" if reason else "")
        store.set_status(sid, "error" if status == "failed" else "stopped", text, 8)
    return sid


@pytest.fixture
def db(tmp_path: Path) -> Path:
    memo.clear()
    return tmp_path / "board.db"


def test_a_run_shows_its_own_status_and_reason_not_its_strategy_rows(db: Path) -> None:
    done = run_of(db, "Done")
    budget = run_of(db, "Budget", status="stopped", reason="the budget of $0.0100 was spent")
    broken = run_of(db, "Broken", status="failed", reason="ValueError: bad candle")
    with SqliteStore(db) as store:
        status = lb.leaderboard(store).table.set_index("id")["Status"]
    assert status[done] == "done"
    assert status[budget] == "stopped: the budget of $0.0100 was spent"
    assert status[broken] == "failed: ValueError: bad candle"


def test_a_long_reason_is_shortened(db: Path) -> None:
    sid = run_of(db, "Long", status="failed", reason="x" * 500)
    with SqliteStore(db) as store:
        status = lb.leaderboard(store).table.set_index("id")["Status"][sid]
    assert status.startswith("failed: xxx") and status.endswith("…")
    assert len(status) <= len("failed: ") + STATUS_REASON_CHARS


def test_the_same_csv_by_path_and_by_upload_is_one_group(db: Path) -> None:
    by_path = run_of(db, "CLI", source="csv:/tmp/x.csv")
    uploaded = run_of(db, "Page", source="csv:data/uploads/x-0123456789abcdef.csv")
    other = run_of(db, "Other", source="csv:/tmp/y.csv", data_hash="d" * 64)
    with SqliteStore(db) as store:
        board = lb.leaderboard(store)
    groups = {frozenset(g.ids): g for g in board.windows}
    assert set(groups) == {frozenset({by_path, uploaded}), frozenset({other})}
    both = groups[frozenset({by_path, uploaded})]
    assert both.label == (
        f"Backtest · CSV x.csv (data sha256 {'c' * 12}) · 1970-01-01 00:00 UTC → "
        "1970-01-02 16:00 UTC"
    )
    assert groups[frozenset({other})].label.startswith("Backtest · CSV y.csv (data sha256 dddd")


def test_the_same_data_over_another_window_is_another_group(db: Path) -> None:
    long = run_of(db, "Long", source="csv:/tmp/x.csv")
    short = run_of(db, "Short", source="csv:data/uploads/x-0123456789abcdef.csv", bars=20)
    with SqliteStore(db) as store:
        board = lb.leaderboard(store)
    assert {frozenset(g.ids) for g in board.windows} == {frozenset({long}), frozenset({short})}
