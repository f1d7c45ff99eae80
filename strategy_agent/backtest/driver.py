"""Backtests through the live path: each run is a stored strategy stepped by the coordinator.

``planning.plan_backtest`` (re-exported here with the plan's types) loads the
batch's candles once and fixes each config's window, its samples, the cost
estimate and the in-sample marks. ``run_backtest`` then stores one strategy
row and one ``runs`` row (kind ``backtest``, one batch id) per config and sample, and runs them side by side in threads: each
opens its runtime through ``factory.open_runtime`` on ports built by
``wiring.replay_ports`` (the batch's candles, its own ``ManualClock``) and calls
``StrategyRuntime.step``, i.e. ``DecisionCoordinator.run_once``, the very path
of paper trading, once per candle of its window.

Every cycle's LLM spend goes to a shared ``BudgetTracker``; once ``--budget-usd``
is reached every run stops after its cycle in flight and is stored
``stopped`` with what it spent. A run whose last ``MAX_FALLBACK_CYCLES`` cycles
were all decided by the fallback policy (the model unreachable or its replies
unusable) is stored ``failed`` with the model's error: a backtest of fallback
decisions measures nothing about the model. A run that fell back now and then
runs on; its reason says how many cycles fell back. A run's strategy row is
``paused`` ("backtest running") while it runs, under its lease, and
``stopped`` (ended) after it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from strategy_agent.backtest.budget import BudgetTracker, Spend
from strategy_agent.backtest.planning import (
    BacktestPlan,
    ConfigEntry,
    PlannedRun,
    RunOutcome,
    plan_backtest,
)
from strategy_agent.backtest.progress import Progress
from strategy_agent.backtest.run_notes import fallback_failure, fallback_note
from strategy_agent.clock import ManualClock
from strategy_agent.core import StrategyHalted
from strategy_agent.trading_history.runs import Run, RunStatus, create_run, finish_run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.wiring import replay_ports

# the plan's names, where the CLI, the page and the tests import them
__all__ = [
    "BacktestPlan",
    "ConfigEntry",
    "PlannedRun",
    "RunOutcome",
    "plan_backtest",
    "run_backtest",
]

MAX_PARALLEL_RUNS = 8
MAX_FAILED_TRIES = 3  # a candle whose cycle fails this many times in a row fails the run
MAX_FALLBACK_CYCLES = 3  # this many cycles in a row decided by the fallback fail the run


def run_backtest(
    plan: BacktestPlan,
    db_path: str | Path,
    *,
    budget: BudgetTracker | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    max_parallel: int = MAX_PARALLEL_RUNS,
) -> list[RunOutcome]:
    """Store the batch's runs and run them side by side; the outcomes in plan order.

    Ctrl-C (``KeyboardInterrupt``) or ``stop`` ends every run after its cycle in
    flight, stored ``stopped``; the interrupt is raised again once all are stored.
    """
    budget = budget or BudgetTracker()
    stop = stop or threading.Event()
    with SqliteStore(db_path) as store:
        rows = [_store_run(store, plan, planned) for planned in plan.runs]
    outcomes: list[RunOutcome | None] = [None] * len(rows)
    pending = list(enumerate(zip(plan.runs, rows, strict=True)))
    lock = threading.Lock()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                if not pending:
                    return
                index, (planned, row) = pending.pop(0)
            outcomes[index] = _execute(plan, planned, row, db_path, budget, progress, stop)

    threads = [
        threading.Thread(target=worker, name=f"backtest-{n}", daemon=True)
        for n in range(max(1, min(max_parallel, len(rows))))
    ]
    for thread in threads:
        thread.start()
    interrupted = False
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        for thread in threads:
            thread.join()
    with SqliteStore(db_path) as store:  # runs never started (stopped before their turn)
        for index, (planned, row) in pending:
            outcomes[index] = _finish(store, planned, row, "stopped", _stop_reason(budget), 0, 0)
    if interrupted:
        raise KeyboardInterrupt
    return [outcome for outcome in outcomes if outcome is not None]


# -- one run ------------------------------------------------------------------------------------


def _execute(
    plan: BacktestPlan,
    planned: PlannedRun,
    row: Run,
    db_path: str | Path,
    budget: BudgetTracker,
    progress: Progress | None,
    stop: threading.Event,
) -> RunOutcome:
    """Step one run through its window (see module doc); never raises for a failed run."""
    from strategy_agent.factory import open_runtime
    from strategy_agent.leasing import LeaseKeeper, lease_stale_s, owner_name
    from strategy_agent.replay_speed import relaxed_collector

    sid, config = row.strategy_id, planned.request.llm
    cycles = failed = tries = fell_back = in_row = 0
    status: RunStatus = "done"
    reason: str | None = None
    with SqliteStore(db_path) as store:
        try:
            keeper = LeaseKeeper(
                db_path, sid, owner_name("cli", "backtest"), stale_after_s=lease_stale_s()
            )
            with keeper, relaxed_collector():
                store.set_status(sid, "paused", f"backtest running (batch {plan.batch_id})", _now())
                clock = ManualClock(planned.window.first_ms)
                ports = replay_ports(
                    planned.request,
                    plan.data.source(planned.request.trading.symbols, planned.window, clock),
                    clock,
                    planned.window.last_ms + planned.window.step_ms,
                )
                # the fast replay paths: candles and indicators once per chunk, history
                # written in batches (a failed cycle at once, the rest flushed below)
                runtime = open_runtime(
                    store, sid, ports=ports, fast_replay=True, api_key=planned.api_key
                )
                while not runtime.exhausted():
                    if stop.is_set() or budget.should_stop():
                        status, reason = "stopped", _stop_reason(budget)
                        break
                    if keeper.lost.is_set():
                        status, reason = "failed", "another process took this strategy over"
                        break
                    report = runtime.step()
                    before = budget.spent(row.id)
                    budget.add_audit(row.id, report.result.audit if report.result else {}, config)
                    _advance(progress, before, budget.spent(row.id))
                    cycles += 1
                    failed += not report.ok
                    tries = 0 if report.ok else tries + 1
                    if tries >= MAX_FAILED_TRIES:
                        status = "failed"
                        reason = f"the cycle at {report.ts} failed {tries} times: {report.error}"
                        break
                    audit = report.result.audit if report.result else {}
                    if "fallback_used" in audit:  # the policy was asked this cycle
                        in_row = in_row + 1 if audit["fallback_used"] else 0
                        fell_back += bool(audit["fallback_used"])
                    if in_row >= MAX_FALLBACK_CYCLES:
                        status, reason = "failed", fallback_failure(in_row, audit, config)
                        break
                runtime.flush()
        except StrategyHalted as halted:
            status, reason = "failed", str(halted)
        except Exception as error:  # one broken run must not take the batch down
            status, reason = "failed", f"{type(error).__name__}: {error}"
        spent = budget.spent(row.id)
        if fell_back and reason is None:  # done, with some cycles the model did not decide
            reason = fallback_note(fell_back, cycles, config.fallback)
        outcome = _finish(store, planned, row, status, reason, cycles, failed, spent)
        return replace(outcome, fallback_cycles=fell_back, fallback=config.fallback)


def _finish(
    store: SqliteStore,
    planned: PlannedRun,
    row: Run,
    status: RunStatus,
    reason: str | None,
    cycles: int,
    failed: int,
    spent: Spend | None = None,
) -> RunOutcome:
    spent = spent or Spend()
    last = store.last_cycle_ts(row.strategy_id)
    decided_to = None if last is None else last - planned.window.step_ms
    run = finish_run(
        store,
        row.id,
        status,
        now_ms=_now(),
        reason=reason,
        tokens=spent.tokens,
        cost_usd=None if spent.unpriced_calls else spent.cost_usd,
        window_to_ms=decided_to if status != "done" and decided_to is not None else None,
    )
    ended = {"done": "backtest done", "stopped": "backtest stopped", "failed": "backtest failed"}
    text = ended[status] + (f": {reason}" if reason else "")
    store.set_status(row.strategy_id, "stopped" if status != "failed" else "error", text, _now())
    return RunOutcome(planned.label, run, cycles, failed, planned.window.cycles)


def _advance(progress: Progress | None, before: Spend, after: Spend) -> None:
    if progress is None:
        return
    unknown = after.unpriced_calls > before.unpriced_calls
    cost = None if unknown else after.cost_usd - before.cost_usd
    progress.advance(1, after.tokens - before.tokens, cost)


def _stop_reason(budget: BudgetTracker) -> str:
    return budget.reason() or "stopped by user"


# -- storing ------------------------------------------------------------------------------------


def _store_run(store: SqliteStore, plan: BacktestPlan, planned: PlannedRun) -> Run:
    now = _now()
    sid = store.create_strategy(planned.request, now_ms=now)
    return create_run(
        store,
        kind="backtest",
        strategy_id=sid,
        request=planned.request,
        data_source=plan.data.spec.label,
        data_hash=plan.data_hash,
        window_from_ms=planned.window.first_ms,
        window_to_ms=planned.window.last_ms,
        sample_index=planned.sample_index,
        batch_id=plan.batch_id,
        now_ms=now,
        in_sample=planned.in_sample,
    )


def _now() -> int:
    return int(time.time() * 1000)
