"""Backtest runs apart from the trader's strategies: the Strategies page's runs section,
the pickers' labels of runs, and deleting a whole batch.

A backtest run is stored as its own strategy row (``trading_history.runs``), so
its history is ordinary history every page can read; but it replayed a fixed
window once and has no controls. The Strategies page lists runs in one
compact table (``runs_section``: one row per run, the newest batch first, a
batch's runs in the order they were stored); the Backtest page compares them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from strategy_agent.errors import StrategyAgentError
from strategy_agent.trading_history import metrics
from strategy_agent.trading_history.page_queries import (
    BacktestRunLine,
    backtest_run_count,
    backtest_run_lines,
)
from strategy_agent.trading_history.runs import RunMark, list_batches, list_runs, run_marks
from strategy_agent.views import format as fmt

if TYPE_CHECKING:
    from strategy_agent.runner import StrategyRunner
    from strategy_agent.trading_history.store import SqliteStore

RUN_LIST_COLUMNS = ["Batch", "Config", "Window", "Status", "Return (%)", "Trades"]
MAX_LISTED = 1000  # runs listed on the page (the title counts every one)
MAX_BATCHES = 1000
_SUFFIX = re.compile(r" · backtest(?: (#\d+/\d+))?$")


@dataclass(frozen=True)
class BatchChoice:
    """A batch to pick for deletion: its id, label and number of runs."""

    batch_id: str
    label: str
    runs: int


@dataclass
class RunsSection:
    """What the Strategies page's runs section shows: ``runs`` in ``batches`` (every stored
    one), ``table`` (``RUN_LIST_COLUMNS``, at most ``MAX_LISTED`` rows; ``Return (%)`` in
    percent, ``None`` before the first equity point), and the batches to delete."""

    runs: int
    batches: int
    table: pd.DataFrame
    batch_choices: list[BatchChoice] = field(default_factory=list)

    @property
    def title(self) -> str:
        """``Backtest runs (100 in 10 batches)``."""
        batches = f"{self.batches} batch{'es' * (self.batches != 1)}"
        return f"Backtest runs ({self.runs:,} in {batches})"


def backtest_ids(store: SqliteStore) -> set[str]:
    """Ids of the strategy rows that are backtest runs (one query, no config parsed)."""
    return {sid for sid, mark in run_marks(store).items() if mark.kind == "backtest"}


def config_name(strategy_name: str) -> str:
    """A run's config as a person names it: ``EMA · backtest #2/3`` -> ``EMA #2/3``."""
    return _SUFFIX.sub(lambda m: f" {m.group(1)}" if m.group(1) else "", strategy_name)


def run_option_label(strategy_id: str, name: str, mark: RunMark) -> str:
    """A run in a strategy picker: ``backtest · batch 3f2a… · EMA #2/3 · done · <id>``."""
    batch = f"batch {mark.batch_id}" if mark.batch_id else "no batch"
    return f"backtest · {batch} · {config_name(name)} · {mark.status} · {strategy_id}"


def runs_section(store: SqliteStore) -> RunsSection:
    """Every backtest run as one compact row, the newest batch first (see module doc)."""
    runs, batches = backtest_run_count(store)
    if not runs:
        return RunsSection(0, 0, pd.DataFrame(columns=RUN_LIST_COLUMNS))
    lines = _by_batch(backtest_run_lines(store, MAX_LISTED))
    table = pd.DataFrame([_row(line) for line in lines], columns=RUN_LIST_COLUMNS)
    choices = [
        BatchChoice(b.batch_id, _batch_label(b.batch_id, b.created_ts, b.runs), b.runs)
        for b in list_batches(store, MAX_BATCHES)
    ]
    return RunsSection(runs, batches, table, choices)


def _by_batch(lines: list[BacktestRunLine]) -> list[BacktestRunLine]:
    """Newest batch first (by its first run), each batch's runs in the order stored."""
    started: dict[str, int] = {}
    for line in lines:
        key = line.batch_id or line.run_id
        started[key] = min(started.get(key, line.created_ts), line.created_ts)
    return sorted(
        lines,
        key=lambda line: (
            -started[line.batch_id or line.run_id],
            line.batch_id or line.run_id,
            line.created_ts,
            line.run_id,
        ),
    )


def _row(line: BacktestRunLine) -> dict[str, object]:
    final = line.final_equity
    return {
        "Batch": line.batch_id or fmt.DASH,
        "Config": config_name(line.name),
        "Window": _window(line.window_from_ms, line.window_to_ms),
        "Status": line.status,
        "Return (%)": None if final is None else metrics.return_pct(final, line.initial_capital),
        "Trades": line.trades,
    }


def _window(first_ms: int | None, last_ms: int | None) -> str:
    """``2025-01-06 00:00 → 2025-02-10 23:00 UTC`` (the first and last candle open times)."""
    if first_ms is None:
        return fmt.DASH
    start = fmt.ts(first_ms).removesuffix(" UTC")
    return f"{start} → {fmt.ts(last_ms)}" if last_ms is not None else f"from {fmt.ts(first_ms)}"


def _batch_label(batch_id: str, created_ts: int, runs: int) -> str:
    return f"{batch_id} · started {fmt.ts(created_ts)} · {runs} run{'s' * (runs != 1)}"


def delete_batch(
    store: SqliteStore, runner: StrategyRunner, batch_id: str, running_here: bool
) -> int:
    """Delete every run of a batch and its history; returns how many were deleted.

    Refused (``StrategyAgentError``, nothing deleted) for an unknown batch, one
    this app is still running (``running_here``, its background job), or one
    whose runs another process runs now (a live lease: the command line).
    """
    from strategy_agent.views.strategies import now_ms, run_by

    runs = list_runs(store, batch_id=batch_id, limit=100_000)
    if not runs:
        raise StrategyAgentError(f"no backtest batch {batch_id} is stored (deleted already?)")
    if running_here:
        raise StrategyAgentError(
            f"batch {batch_id} is still running: stop it on the Backtest page first, then delete it"
        )
    now = now_ms()
    for run in runs:
        elsewhere = run_by(store, run.strategy_id, now)
        if elsewhere is not None:
            raise StrategyAgentError(
                f"batch {batch_id} is still running ({elsewhere.text}): {elsewhere.advice}; "
                "nothing was deleted"
            )
    for run in runs:
        runner.delete(run.strategy_id)
    return len(runs)
