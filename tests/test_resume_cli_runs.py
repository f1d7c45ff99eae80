"""The app does not take over a command-line run: a live one is left alone, a killed one pauses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.models import UserRequest
from strategy_agent.runner import StrategyRunner
from strategy_agent.trading_history.leases import acquire_lease
from strategy_agent.trading_history.store import SqliteStore


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[StrategyRunner]:
    instance = StrategyRunner(tmp_path / "r.db", step_delay_s=0.01)
    yield instance
    instance.shutdown()


def marked_running_by(db: Path, owner: str, pid: int) -> str:
    with SqliteStore(db) as store:
        sid = store.create_strategy(UserRequest(), now_ms=0)
        store.set_status(sid, "running", None, now_ms=1)
        acquire_lease(store, sid, owner, now_ms=int(1e13), stale_after_ms=30_000, pid=pid)
    return sid


def test_a_killed_command_line_run_is_paused_not_resumed_forever(runner: StrategyRunner) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    sid = marked_running_by(runner.db_path, "cli pid 1 on host (run #1)", int(dead.stdout))
    assert runner.resume_running() == []
    with SqliteStore(runner.db_path) as store:
        row = store.get_strategy(sid)
    assert row.status == "paused"
    assert f"command-line run (cli pid {int(dead.stdout)} on " in (row.status_reason or "")
    assert "(run #1)" not in (row.status_reason or "")  # said for people, not the raw owner
    assert not runner.is_running(sid) and runner.waiting_ids() == []


def test_a_live_command_line_run_is_left_to_the_command_line(runner: StrategyRunner) -> None:
    sid = marked_running_by(runner.db_path, "cli pid 2 on host (run #1)", os.getpid())
    assert runner.resume_running() == []
    with SqliteStore(runner.db_path) as store:
        assert store.get_strategy(sid).status == "running"
    assert not runner.is_running(sid) and runner.waiting_ids() == []
