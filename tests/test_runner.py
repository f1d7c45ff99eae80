"""StrategyRunner: background threads, stored statuses, resume after a restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strategy_agent.errors import StrategyAgentError
from strategy_agent.models import ModelConfig, UserRequest
from strategy_agent.runner import StrategyRunner
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def runner(db_path: Path) -> Iterator[StrategyRunner]:
    instance = StrategyRunner(db_path, step_delay_s=0.01)
    yield instance
    instance.shutdown()


def create(db_path: Path, request: UserRequest | None = None) -> str:
    with SqliteStore(db_path) as store:
        return store.create_strategy(request or UserRequest(), now_ms=0)


def stored(db_path: Path, sid: str) -> tuple[str, str | None, int]:
    with SqliteStore(db_path) as store:
        row = store.get_strategy(sid)
        return row.status, row.status_reason, store.cycle_count(sid)


def test_start_runs_cycles_and_pause_stops_them(runner: StrategyRunner, db_path: Path) -> None:
    sid = create(db_path)
    assert runner.start(sid) is True
    assert runner.start(sid) is False, "a second start must not spawn a second thread"
    assert stored(db_path, sid)[0] == "running"
    wait_for(lambda: stored(db_path, sid)[2] >= 5)
    runner.pause(sid)
    assert not runner.is_running(sid)
    status, _, cycles = stored(db_path, sid)
    assert status == "paused"
    time.sleep(0.1)
    assert stored(db_path, sid)[2] == cycles, "no cycle may run after pause"
    assert runner.last_report(sid) is not None


def test_step_once_only_when_not_auto_running(runner: StrategyRunner, db_path: Path) -> None:
    sid = create(db_path)
    first = runner.step_once(sid)
    second = runner.step_once(sid)
    assert (first.cycle, second.cycle) == (1, 2) and second.ts > first.ts
    runner.start(sid)
    with pytest.raises(StrategyAgentError, match="pause it"):
        runner.step_once(sid)
    runner.stop(sid)
    assert stored(db_path, sid)[0] == "stopped"


def test_preview_does_not_trade_or_record(runner: StrategyRunner, db_path: Path) -> None:
    sid = create(db_path)
    context, result = runner.preview(sid)
    assert context.market_snapshot and result.outcomes
    assert stored(db_path, sid)[2] == 0


def test_running_strategies_resume_after_restart(db_path: Path) -> None:
    sid = create(db_path)
    first = StrategyRunner(db_path, step_delay_s=0.01)
    first.start(sid)
    wait_for(lambda: stored(db_path, sid)[2] >= 3)
    first.shutdown()  # the process ends: status stays "running"
    assert stored(db_path, sid)[0] == "running"
    cycles = stored(db_path, sid)[2]

    second = StrategyRunner(db_path, step_delay_s=0.01)
    try:
        assert second.resume_running() == [sid]
        wait_for(lambda: stored(db_path, sid)[2] >= cycles + 3)
    finally:
        second.shutdown()


def test_refused_key_sets_error_status_with_reason(
    runner: StrategyRunner, db_path: Path, fake_llm: FakeLlmServer
) -> None:
    request = UserRequest(
        llm=ModelConfig(provider="openai", model_id="m", api_base=fake_llm.api_base, cache=False)
    )
    sid = create(db_path, request)
    fake_llm.error(401, "bad key")
    runner.start(sid)
    wait_for(lambda: stored(db_path, sid)[0] == "error")
    _, reason, _ = stored(db_path, sid)
    assert reason is not None and "refused the API key" in reason
    assert not runner.is_running(sid)


def test_concurrent_steps_never_run_the_same_cycle_twice(
    runner: StrategyRunner, db_path: Path
) -> None:
    import threading

    sid = create(db_path)
    reports: list[int] = []
    refusals: list[str] = []

    def click() -> None:
        try:
            reports.append(runner.step_once(sid).cycle)
        except StrategyAgentError as error:
            refusals.append(str(error))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(reports) + len(refusals) == 4 and reports
    assert len(set(reports)) == len(reports), "a cycle number was used twice"
    assert all("already running" in message for message in refusals)
    with SqliteStore(db_path) as store:
        assert store.cycle_count(sid) == len(reports)
