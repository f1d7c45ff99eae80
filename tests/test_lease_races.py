"""One cycle, once: every path that runs a cycle holds the strategy's lease.

Start, Step (and the Prompt lab's Run one cycle, which is a Step), the CLI's
``run``/``run --resume``, in threads of one process, in two runners on one
database and in two processes. A live lease held elsewhere is refused with who
holds it; a lease whose owner died is taken over.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.cli import main as cli_main
from strategy_agent.errors import StrategyAgentError
from strategy_agent.models import UserRequest
from strategy_agent.runner import StrategyRunner
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.gated_policy import Gate, assert_each_cycle_once, install_gate, wait_for

ROOT = Path(__file__).resolve().parents[1]
HOLD = UserRequest.model_validate(
    {
        "llm": {"provider": "builtin", "model_id": "buy_and_hold"},
        "trading": {"strategy_name": "Hold", "symbols": ["BTC/USDT", "ETH/USDT"]},
    }
)


@pytest.fixture
def runner(db_path: Path) -> Iterator[StrategyRunner]:
    instance = StrategyRunner(db_path, step_delay_s=0.01)
    yield instance
    instance.shutdown()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    instance = install_gate(monkeypatch)
    yield instance
    instance.open()  # never leave a thread waiting at the gate


def create(db_path: Path, request: UserRequest = HOLD) -> str:
    with SqliteStore(db_path) as store:
        return store.create_strategy(request, now_ms=0)


def status_of(db_path: Path, sid: str) -> str:
    with SqliteStore(db_path) as store:
        return store.get_strategy(sid).status


def cycles_of(db_path: Path, sid: str) -> int:
    with SqliteStore(db_path) as store:
        return store.cycle_count(sid)


def in_background(action: object) -> tuple[threading.Thread, list[object]]:
    """Run ``action()`` on a thread; its result or exception lands in the list."""
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(action())  # type: ignore[operator]
        except Exception as error:  # the test inspects it
            outcome.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_start_while_a_step_is_in_flight_is_refused(
    runner: StrategyRunner, db_path: Path, gate: Gate
) -> None:
    sid = create(db_path)
    gate.close()
    step, outcome = in_background(lambda: runner.step_once(sid))
    gate.wait_for_arrival()
    with pytest.raises(StrategyAgentError, match=r"Step"):  # names who holds it
        runner.start(sid)
    gate.open()
    step.join(10)
    assert outcome and getattr(outcome[0], "cycle", None) == 1
    assert runner.start(sid) is True  # once the step has ended
    wait_for(lambda: cycles_of(db_path, sid) >= 4)
    runner.pause(sid)
    wait_for(lambda: status_of(db_path, sid) == "paused")
    assert assert_each_cycle_once(db_path, sid) >= 4


def test_step_while_auto_running_is_refused_and_nothing_runs_twice(
    runner: StrategyRunner, db_path: Path, gate: Gate
) -> None:
    sid = create(db_path)
    gate.close()
    runner.start(sid)
    gate.wait_for_arrival()
    with pytest.raises(StrategyAgentError, match="pause it"):
        runner.step_once(sid)
    gate.open()
    wait_for(lambda: cycles_of(db_path, sid) >= 3)
    runner.pause(sid)
    wait_for(lambda: status_of(db_path, sid) == "paused")
    assert_each_cycle_once(db_path, sid)


def test_two_threads_stepping_run_one_cycle_each_or_are_refused(
    runner: StrategyRunner, db_path: Path, gate: Gate
) -> None:
    sid = create(db_path)
    gate.close()
    first, first_outcome = in_background(lambda: runner.step_once(sid))
    gate.wait_for_arrival()
    with pytest.raises(StrategyAgentError, match="Step"):
        runner.step_once(sid)
    gate.open()
    first.join(10)
    assert getattr(first_outcome[0], "cycle", None) == 1
    assert assert_each_cycle_once(db_path, sid) == 1


def test_two_runners_on_one_database_never_run_a_cycle_twice(db_path: Path, gate: Gate) -> None:
    """Two app processes (two runners) on one database: the second is refused."""
    sid = create(db_path)
    one = StrategyRunner(db_path, step_delay_s=0.01)
    two = StrategyRunner(db_path, step_delay_s=0.01)
    try:
        gate.close()
        step, _ = in_background(lambda: one.step_once(sid))
        gate.wait_for_arrival()
        # one process here, so its Step reads as another tab's (another process is named)
        with pytest.raises(StrategyAgentError, match="Step in another tab or window"):
            two.step_once(sid)
        with pytest.raises(StrategyAgentError, match="Step in another tab or window"):
            two.start(sid)
        gate.open()
        step.join(10)
        assert one.start(sid)
        wait_for(lambda: cycles_of(db_path, sid) >= 3)
        with pytest.raises(StrategyAgentError, match="auto-run"):
            two.start(sid)
        one.pause(sid)
        wait_for(lambda: status_of(db_path, sid) == "paused")
    finally:
        gate.open()
        one.shutdown()
        two.shutdown()
    assert_each_cycle_once(db_path, sid)


def test_cli_resume_is_refused_while_the_app_steps(
    runner: StrategyRunner, db_path: Path, gate: Gate, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = create(db_path)
    gate.close()
    step, _ = in_background(lambda: runner.step_once(sid))
    gate.wait_for_arrival()
    code = cli_main(["run", "--resume", sid, "--cycles", "2", "--db", str(db_path), "--quiet"])
    err = capsys.readouterr().err
    gate.open()
    step.join(10)
    assert code == 2
    assert "app pid" in err and "Step" in err and "Traceback" not in err
    assert assert_each_cycle_once(db_path, sid) == 1


def test_app_start_is_refused_while_the_cli_runs(
    runner: StrategyRunner, db_path: Path, gate: Gate
) -> None:
    sid = create(db_path)
    gate.close()
    cli, outcome = in_background(
        lambda: cli_main(["run", "--resume", sid, "--cycles", "2", "--db", str(db_path)])
    )
    gate.wait_for_arrival()
    with pytest.raises(StrategyAgentError, match="cli pid"):
        runner.start(sid)
    with pytest.raises(StrategyAgentError, match="cli pid"):
        runner.step_once(sid)
    gate.open()
    cli.join(15)
    assert outcome == [0]
    assert assert_each_cycle_once(db_path, sid) == 2
    assert status_of(db_path, sid) == "paused"


def test_a_crashed_owners_lease_is_taken_over(db_path: Path) -> None:
    from strategy_agent.trading_history.leases import acquire_lease, lease_holder, renew_lease

    sid = create(db_path)
    runner = StrategyRunner(db_path, step_delay_s=0.01, lease_stale_s=2.0)
    try:
        now = int(time.time() * 1000)
        with SqliteStore(db_path) as store:
            acquire_lease(store, sid, "app pid 1 on a-dead-host", now, 2000)
        with pytest.raises(StrategyAgentError, match="a-dead-host"):
            runner.start(sid)  # its heartbeat is fresh: alive as far as anyone can tell
        with SqliteStore(db_path) as store:  # the owner died: its last heartbeat was 10 s ago
            assert renew_lease(store, sid, "app pid 1 on a-dead-host", now - 10_000)
        assert runner.start(sid) is True
        wait_for(lambda: cycles_of(db_path, sid) >= 2)
        with SqliteStore(db_path) as store:
            holder = lease_holder(store, sid)
        assert holder is not None and f"pid {os.getpid()}" in holder.owner
    finally:
        runner.shutdown()


def test_a_worker_whose_lease_was_taken_stops_before_its_next_cycle(db_path: Path) -> None:
    from strategy_agent.trading_history.leases import acquire_lease

    sid = create(db_path)
    runner = StrategyRunner(db_path, step_delay_s=0.05, lease_stale_s=1.0, heartbeat_s=0.05)
    try:
        runner.start(sid)
        wait_for(lambda: cycles_of(db_path, sid) >= 2)
        with SqliteStore(db_path) as store:  # someone decided the worker was dead
            acquire_lease(store, sid, "cli pid 2 on elsewhere", int(time.time() * 1000) + 60_000, 0)
        wait_for(lambda: not runner.is_running(sid))
        after = cycles_of(db_path, sid)
        time.sleep(0.3)
        assert cycles_of(db_path, sid) == after
    finally:
        runner.shutdown()
    assert_each_cycle_once(db_path, sid)


def _cli(db: Path, sid: str, cycles: int, delay: float) -> subprocess.Popen[str]:
    env = {**os.environ, "STRATEGY_AGENT_LEASE_STALE_S": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strategy_agent",
            "run",
            "--resume",
            sid,
            "--db",
            str(db),
            "--cycles",
            str(cycles),
            "--delay",
            str(delay),
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_cli_processes_on_one_strategy(db_path: Path) -> None:
    sid = create(db_path)
    first = _cli(db_path, sid, cycles=200, delay=0.05)
    try:
        wait_for(lambda: cycles_of(db_path, sid) >= 2)
        second = _cli(db_path, sid, cycles=3, delay=0)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2
        assert f"cli pid {first.pid}" in err and "Traceback" not in err
        # the first one dies without a word: its lease goes stale and is taken over
        first.kill()
        first.wait(10)
        assert status_of(db_path, sid) == "running"
        time.sleep(1.2)  # STRATEGY_AGENT_LEASE_STALE_S
        before = cycles_of(db_path, sid)
        third = _cli(db_path, sid, cycles=3, delay=0)
        _, err = third.communicate(timeout=30)
        assert third.returncode == 0, err
        assert cycles_of(db_path, sid) == before + 3
    finally:
        if first.poll() is None:
            first.kill()
    assert_each_cycle_once(db_path, sid)
