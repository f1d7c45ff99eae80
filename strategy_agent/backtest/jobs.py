"""Backtests the app runs in the background, one thread per batch, owned by the app runtime.

A page plans a backtest (``driver.plan_backtest``), hands the plan to
``BacktestJobs.start`` and returns at once; the job's thread runs
``driver.run_backtest`` (the CLI's path: runs stored as one batch, side by side
in threads) with its own ``Progress``, ``BudgetTracker`` and stop event. Pages
poll ``job.progress.snapshot()`` from a fragment; the thread never calls
Streamlit. ``shutdown`` (when the runtime is released) asks every job to stop
after its cycles in flight and waits for them: their runs are stored
``stopped``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from strategy_agent.backtest.budget import BudgetTracker
from strategy_agent.backtest.progress import Progress

if TYPE_CHECKING:
    from strategy_agent.backtest.driver import BacktestPlan, RunOutcome

logger = logging.getLogger(__name__)


@dataclass
class BacktestJob:
    """One batch running (or run) in the background; ``started_ts`` epoch ms."""

    plan: BacktestPlan
    progress: Progress
    budget: BudgetTracker
    stop_event: threading.Event = field(default_factory=threading.Event)
    outcomes: list[RunOutcome] = field(default_factory=list)
    error: str | None = None
    started_ts: int = field(default_factory=lambda: int(time.time() * 1000))
    thread: threading.Thread | None = None

    @property
    def batch_id(self) -> str:
        return self.plan.batch_id

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self) -> None:
        """Ask every run of the batch to stop after its cycle in flight (stored ``stopped``)."""
        self.stop_event.set()


class BacktestJobs:
    """The app's background backtests (thread-safe); at most ``max_running`` at once."""

    def __init__(self, db_path: str | Path, max_running: int = 2) -> None:
        self.db_path = Path(db_path)
        self.max_running = max_running
        self._lock = threading.Lock()
        self._jobs: dict[str, BacktestJob] = {}

    def start(self, plan: BacktestPlan, budget_usd: float | None = None) -> BacktestJob:
        """Run ``plan`` in a background thread; returns its job at once.

        ``RuntimeError`` when ``max_running`` batches already run (say: wait or stop one).
        """
        job = BacktestJob(
            plan=plan,
            progress=Progress(plan.cycles_total),
            budget=BudgetTracker(budget_usd=budget_usd),
        )
        with self._lock:
            busy = [j for j in self._jobs.values() if j.running]
            if len(busy) >= self.max_running:
                raise RuntimeError(
                    f"{len(busy)} backtests are already running: wait for one to end or stop it"
                )
            job.thread = threading.Thread(
                target=self._run, args=(job,), name=f"backtest-job-{plan.batch_id}", daemon=True
            )
            self._jobs[plan.batch_id] = job
            job.thread.start()
        return job

    def get(self, batch_id: str) -> BacktestJob | None:
        """The job of ``batch_id`` started by this process, if any."""
        with self._lock:
            return self._jobs.get(batch_id)

    def running(self) -> list[BacktestJob]:
        """Jobs still running, oldest first."""
        with self._lock:
            return [job for job in self._jobs.values() if job.running]

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop every job after its cycles in flight and wait up to ``timeout_s`` for each."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout_s)

    def _run(self, job: BacktestJob) -> None:
        from strategy_agent.backtest.driver import run_backtest

        try:
            job.outcomes = run_backtest(
                job.plan,
                self.db_path,
                budget=job.budget,
                progress=job.progress,
                stop=job.stop_event,
            )
        except Exception as error:  # shown on the page; the runs say how each ended
            logger.exception("backtest %s failed", job.batch_id)
            job.error = f"{type(error).__name__}: {error}"
            job.progress.finish("failed", job.error)
            return
        failed = [o for o in job.outcomes if o.run.status == "failed"]
        if failed:
            job.progress.finish("failed", f"{len(failed)} of {len(job.outcomes)} runs failed")
        elif job.budget.should_stop():
            job.progress.finish("stopped", job.budget.reason())
        elif job.stop_event.is_set():
            job.progress.finish("stopped", "stopped by user")
        else:
            job.progress.finish("done")
