"""The runner never starts or steps a backtest run: it replayed its window once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.errors import StrategyAgentError
from strategy_agent.models import UserRequest
from strategy_agent.runner import StrategyRunner
from strategy_agent.trading_history.runs import create_run, finish_run
from strategy_agent.trading_history.store import SqliteStore


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[StrategyRunner]:
    instance = StrategyRunner(tmp_path / "runs.db", step_delay_s=0.01)
    yield instance
    instance.shutdown()


def backtest_run(db: Path, status: str, reason: str, finished: bool) -> str:
    """A backtest run's strategy row left with ``status`` (a crash mid-run leaves it paused)."""
    with SqliteStore(db) as store:
        request = UserRequest()
        sid = store.create_strategy(request, now_ms=1)
        run = create_run(
            store, kind="backtest", strategy_id=sid, request=request, data_source="simulated",
            batch_id="batch0000042", now_ms=2,
        )  # fmt: skip
        if finished:
            finish_run(store, run.id, "failed", now_ms=3, reason="the model was unknown")
        store.set_status(sid, status, reason, 4)  # type: ignore[arg-type]
    return sid


@pytest.mark.parametrize(
    ("status", "reason", "finished"),
    [
        ("paused", "backtest running (batch batch0000042)", False),  # the app died mid-run
        ("error", "backtest failed: the model was unknown", True),
    ],
)
def test_start_and_step_refuse_a_backtest_run_and_change_nothing(
    runner: StrategyRunner, status: str, reason: str, finished: bool
) -> None:
    db = runner.db_path
    sid = backtest_run(db, status, reason, finished)
    for control in (runner.start, runner.step_once):
        with pytest.raises(StrategyAgentError) as refused:
            control(sid)
        message = str(refused.value)
        assert f"{sid} is a backtest run of batch batch0000042" in message
        assert "cannot be started or stepped" in message and "Backtest page" in message
    assert not runner.is_running(sid)
    with SqliteStore(db) as store:
        row = store.get_strategy(sid)
        assert (row.status, row.status_reason) == (status, reason)
        assert store.cycle_count(sid) == 0


def test_a_strategy_of_the_trader_still_steps(runner: StrategyRunner) -> None:
    with SqliteStore(runner.db_path) as store:
        sid = store.create_strategy(UserRequest(), now_ms=1)
    report = runner.step_once(sid)
    assert report.ok and report.cycle == 1
