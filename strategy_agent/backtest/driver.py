"""Backtests through the live path: each run is a stored strategy stepped by the coordinator.

``plan_backtest`` loads the batch's candles once (``window.load_batch``), fixes
each config's window, its samples (``ModelConfig.sample_index``, which keys the
response cache), the cost estimate and the in-sample marks. ``run_backtest``
then stores one strategy row and one ``runs`` row (kind ``backtest``, one
batch id) per config and sample, and runs them side by side in threads: each
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
runs on; its reason says how many cycles fell back. A run's strategy row is ``paused`` ("backtest
running") while it runs, under its lease, and ``stopped`` (ended) after it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import SecretStr

from strategy_agent.backtest.budget import BudgetTracker, Spend
from strategy_agent.backtest.cost import ConfigEstimate, CostEstimate, estimate_config
from strategy_agent.backtest.cutoffs import in_sample
from strategy_agent.backtest.progress import Progress
from strategy_agent.backtest.run_notes import (
    fallback_failure,
    fallback_note,
    sample_notes,
    window_notes,
)
from strategy_agent.backtest.window import (
    BatchData,
    DataSpec,
    RunWindow,
    default_spec,
    load_batch,
    replay_of,
)
from strategy_agent.clock import ManualClock
from strategy_agent.core import StrategyHalted
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.runs import Run, RunStatus, create_run, finish_run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.wiring import SIMULATED, load_markets, replay_ports, unsupported

MAX_PARALLEL_RUNS = 8
MAX_FAILED_TRIES = 3  # a candle whose cycle fails this many times in a row fails the run
MAX_FALLBACK_CYCLES = 3  # this many cycles in a row decided by the fallback fail the run
NAME_CHARS = 80


@dataclass(frozen=True)
class ConfigEntry:
    """One config of the command line: its label in the comparison and its request.

    ``api_key``: a key typed in the app for this session (the Backtest page passes
    the one its strategy runs with); used by the runs, never stored. ``None``: the
    usual sources (environment, ``.streamlit/secrets.toml``).
    """

    label: str
    request: UserRequest
    api_key: SecretStr | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PlannedRun:
    """One run of the batch: the request its strategy row stores (name, sample, replay)."""

    label: str
    request: UserRequest
    window: RunWindow
    sample_index: int
    in_sample: str | None
    api_key: SecretStr | None = field(default=None, repr=False)  # the entry's session key


@dataclass
class BacktestPlan:
    """What a backtest will do, before anything is stored or spent."""

    data: BatchData
    runs: list[PlannedRun]
    estimate: CostEstimate
    samples: int
    data_hash: str
    notes: list[str] = field(default_factory=list)
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def cycles_total(self) -> int:
        return sum(run.window.cycles for run in self.runs)

    @property
    def uses_llm(self) -> bool:
        return any(not run.request.llm.is_builtin for run in self.runs)


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended: its stored run row and cycles.

    ``cycles``: cycles run; ``window_cycles``: cycles its window holds (``None``
    when not known, e.g. a run read back from the database); ``fallback_cycles``:
    cycles decided by the fallback policy ``fallback`` instead of the model.
    """

    label: str
    run: Run
    cycles: int
    failed_cycles: int
    window_cycles: int | None = None
    fallback_cycles: int = 0
    fallback: str | None = None


def plan_backtest(
    configs: Sequence[ConfigEntry],
    *,
    from_ms: int,
    to_ms: int,
    spec: DataSpec | None = None,
    samples: int = 1,
    store: SqliteStore | None = None,
) -> BacktestPlan:
    """Load the candles, fix the windows, estimate the cost; ``ConfigurationError`` says
    what cannot run (unknown rule or exchange, missing candles, an empty window)."""
    if not configs:
        raise ConfigurationError("a backtest needs at least one --config")
    if samples < 1:
        raise ConfigurationError(f"--samples must be at least 1, got {samples}")
    if to_ms < from_ms:
        raise ConfigurationError("--to is before --from")
    for entry in configs:
        problem = unsupported(entry.request.model_copy(update={"replay": None}))
        if problem is not None:
            raise ConfigurationError(f"{entry.label}: {problem[0]}: {problem[1]}")
        if not entry.request.llm.is_builtin:  # a missing key is said now, not in every run
            from strategy_agent.secrets import resolve_api_key

            session = entry.api_key.get_secret_value() if entry.api_key else None
            resolve_api_key(entry.request.llm, session_key=session)
    spec = spec or _common_spec(configs)
    data = load_batch(spec, [c.request for c in configs], to_ms, store)
    windows = [
        data.window(
            c.request.trading.symbols,
            c.request.trading.interval,
            c.request.trading.lookback,
            from_ms,
            to_ms,
        )
        for c in configs
    ]
    # one window for all: the latest start and the earliest end any config allows
    start = max(w.first_ms for w in windows)
    end = min(w.last_ms for w in windows)
    windows = [
        data.window(
            c.request.trading.symbols,
            c.request.trading.interval,
            c.request.trading.lookback,
            start,
            end,
        )
        for c in configs
    ]
    notes = window_notes(from_ms, to_ms, windows[0]) + sample_notes(
        [(c.label, c.request.llm) for c in configs], samples
    )
    runs: list[PlannedRun] = []
    estimates: list[ConfigEstimate] = []
    for entry, window in zip(configs, windows, strict=True):
        count = 1 if entry.request.llm.is_builtin else samples
        if entry.request.exchange.exchange_id != SIMULATED:  # the rules, loaded once
            load_markets(entry.request.exchange.exchange_id, entry.request.exchange.api_url)
        estimates.append(estimate_config(entry.request, window.cycles, count, label=entry.label))
        leak = in_sample(entry.request.llm, window.first_ms)
        for sample in range(count):
            runs.append(
                PlannedRun(
                    entry.label,
                    _run_request(entry, spec, window, sample, count),
                    window,
                    sample,
                    leak,
                    entry.api_key,
                )
            )
    needs = [
        (c.request.trading.symbols, w, c.request.trading.lookback)
        for c, w in zip(configs, windows, strict=True)
    ]
    estimate = CostEstimate(max(w.cycles for w in windows), samples, estimates)
    return BacktestPlan(data, runs, estimate, samples, data.data_hash(needs), notes)


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


def _run_request(
    entry: ConfigEntry, spec: DataSpec, window: RunWindow, sample: int, samples: int
) -> UserRequest:
    """The request a run's strategy row stores: the config as written, named for the
    backtest, with its sample index and the replay that describes its data."""
    suffix = " · backtest" + (f" #{sample + 1}/{samples}" if samples > 1 else "")
    name = entry.label[: NAME_CHARS - len(suffix)] + suffix
    request = entry.request
    trading = request.trading.model_copy(update={"strategy_name": name})
    llm = request.llm.model_copy(update={"sample_index": sample})
    replay = replay_of(spec, request, window.first_ms + window.step_ms)
    return request.model_copy(update={"trading": trading, "llm": llm, "replay": replay})


def _common_spec(configs: Sequence[ConfigEntry]) -> DataSpec:
    specs = {default_spec(c.request) for c in configs}
    if len(specs) > 1:
        names = ", ".join(sorted(s.label for s in specs))
        raise ConfigurationError(
            f"the configs name different data ({names}): give --data to replay them all on the "
            f"same candles"
        )
    return specs.pop()


def _now() -> int:
    return int(time.time() * 1000)
