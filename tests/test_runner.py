"""StrategyRunner: background threads, stored statuses, resume after a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strategy_agent.errors import StrategyAgentError
from strategy_agent.models import ModelConfig, UserRequest
from strategy_agent.runner import StrategyRunner
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer
from tests.fakes.gated_policy import Gate, assert_each_cycle_once, install_gate


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
    assert runner.pause(sid) in {"pausing", "paused"}
    wait_for(lambda: stored(db_path, sid)[0] == "paused")
    wait_for(lambda: not runner.is_running(sid))
    cycles = stored(db_path, sid)[2]
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
    assert runner.stop(sid) in {"stopping", "stopped"}  # "stopping" while a cycle runs
    wait_for(lambda: stored(db_path, sid)[0] == "stopped")


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
    assert all("running right now" in message for message in refusals)
    with SqliteStore(db_path) as store:
        assert store.cycle_count(sid) == len(reports)


# -- controls answer at once, and the status never lies ----------------------------------

HOLD = UserRequest.model_validate(
    {
        "llm": {"provider": "builtin", "model_id": "buy_and_hold"},
        "trading": {"strategy_name": "Hold", "symbols": ["BTC/USDT", "ETH/USDT"]},
    }
)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    instance = install_gate(monkeypatch)
    yield instance
    instance.open()


def fills_of(db_path: Path, sid: str) -> int:
    with SqliteStore(db_path) as store:
        return len(store.load_fills(sid))


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("control", "during", "after"),
    [("pause", "pausing", "paused"), ("stop", "stopping", "stopped")],
)
def test_pause_and_stop_answer_at_once_during_a_cycle(
    runner: StrategyRunner, db_path: Path, gate: Gate, control: str, during: str, after: str
) -> None:
    sid = create(db_path, HOLD)
    gate.close()
    runner.start(sid)
    gate.wait_for_arrival()  # cycle 1 waits for its "LLM" (it will buy BTC and ETH)
    threading.Timer(3.0, gate.open).start()  # today's code joins the thread: don't hang
    assert timed(lambda: getattr(runner, control)(sid)) < 0.5
    assert stored(db_path, sid)[0] == during
    assert runner.is_running(sid), "the cycle in flight still runs"
    gate.open()
    wait_for(lambda: stored(db_path, sid)[0] == after)
    assert fills_of(db_path, sid) == 2, "the cycle in flight finished and was recorded"
    assert not runner.is_running(sid)
    time.sleep(0.2)
    assert stored(db_path, sid)[2] == 1 and fills_of(db_path, sid) == 2


def test_no_fill_is_written_after_the_status_says_paused(
    runner: StrategyRunner, db_path: Path, gate: Gate
) -> None:
    sid = create(db_path, HOLD)
    gate.close()
    runner.start(sid)
    gate.wait_for_arrival()
    threading.Timer(3.0, gate.open).start()
    seen: list[tuple[str, int]] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            status = stored(db_path, sid)[0]
            seen.append((status, fills_of(db_path, sid)))
            if status == "paused":
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    runner.pause(sid)
    time.sleep(0.1)
    gate.open()
    watcher.join(10)
    watching.set()
    paused_fills = {fills for status, fills in seen if status == "paused"}
    assert paused_fills == {2}, seen[-5:]
    assert fills_of(db_path, sid) == 2


def test_pause_between_cycles_is_immediate(db_path: Path) -> None:
    slow = StrategyRunner(db_path, step_delay_s=30.0)
    try:
        sid = create(db_path)
        slow.start(sid)
        wait_for(lambda: stored(db_path, sid)[2] == 1)
        assert timed(lambda: slow.pause(sid)) < 0.5
        assert stored(db_path, sid)[0] == "paused"
        wait_for(lambda: not slow.is_running(sid), timeout_s=2)
    finally:
        slow.shutdown()


def test_a_stopped_strategy_has_ended(runner: StrategyRunner, db_path: Path) -> None:
    sid = create(db_path)
    runner.step_once(sid)
    runner.stop(sid)  # nothing runs: stopped at once
    assert stored(db_path, sid)[0] == "stopped"
    with pytest.raises(StrategyAgentError, match=r"stopped.*Duplicate"):
        runner.start(sid)
    with pytest.raises(StrategyAgentError, match=r"stopped.*Duplicate"):
        runner.step_once(sid)
    assert stored(db_path, sid)[2] == 1


def test_a_stepped_strategy_is_no_longer_created(runner: StrategyRunner, db_path: Path) -> None:
    sid = create(db_path)
    assert stored(db_path, sid)[0] == "created"
    runner.step_once(sid)
    assert stored(db_path, sid)[0] == "paused"


def test_delete_never_removes_rows_under_a_running_worker(
    runner: StrategyRunner, db_path: Path, gate: Gate
) -> None:
    sid = create(db_path, HOLD)
    gate.close()
    runner.start(sid)
    gate.wait_for_arrival()
    with pytest.raises(StrategyAgentError, match=r"(?i)pause or stop it first"):
        runner.delete(sid)
    gate.open()
    runner.pause(sid)
    wait_for(lambda: stored(db_path, sid)[0] == "paused")
    runner.delete(sid)
    with SqliteStore(db_path) as store:
        assert store.list_strategies() == []
        assert store.load_fills(sid) == []


def test_stop_and_close_positions_flattens_the_book_in_one_recorded_cycle(
    runner: StrategyRunner, db_path: Path
) -> None:
    from strategy_agent.factory import open_runtime

    sid = create(db_path, HOLD)
    runner.step_once(sid)
    runner.step_once(sid)
    with SqliteStore(db_path) as store:
        assert open_runtime(store, sid).ledger.positions  # bought BTC and ETH
    runner.stop(sid, close_positions=True)
    wait_for(lambda: stored(db_path, sid)[0] == "stopped")
    with SqliteStore(db_path) as store:
        assert store.cycle_count(sid) == 3
        runtime = open_runtime(store, sid)
        assert not [p for p in runtime.ledger.positions.values() if p.quantity]
    assert_each_cycle_once(db_path, sid)


def test_pausing_and_stopping_left_by_a_crash_settle_on_resume(db_path: Path) -> None:
    pausing, stopping = create(db_path), create(db_path)
    with SqliteStore(db_path) as store:
        store.set_status(pausing, "pausing", None, 1)
        store.set_status(stopping, "stopping", None, 1)
    fresh = StrategyRunner(db_path, step_delay_s=0.01)
    try:
        assert fresh.resume_running() == []
    finally:
        fresh.shutdown()
    assert stored(db_path, pausing)[0] == "paused"
    assert stored(db_path, stopping)[0] == "stopped"


def test_resume_waits_for_a_dead_owners_lease_to_go_stale(db_path: Path) -> None:
    from strategy_agent.trading_history.leases import acquire_lease

    sid = create(db_path)
    with SqliteStore(db_path) as store:
        store.set_status(sid, "running", None, 1)
        acquire_lease(
            store, sid, "app pid 1 on crashed-box (auto-run #1)", int(time.time() * 1000), 1
        )
    restarted = StrategyRunner(db_path, step_delay_s=0.01, lease_stale_s=0.5)
    try:
        assert restarted.resume_running() == []  # its last heartbeat is too recent
        assert restarted.waiting_ids() == [sid]
        wait_for(lambda: stored(db_path, sid)[2] >= 2, timeout_s=5)
        assert restarted.waiting_ids() == [] and restarted.is_running(sid)
    finally:
        restarted.shutdown()
