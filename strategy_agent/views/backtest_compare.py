"""The comparison the Backtest page lands on: one table per batch, and the batch's curves.

One row per config of the batch (its runs grouped by the label the backtest
gave them). Every figure is the run's ``RunMetrics`` (stored when the run
ended, ``trading_history.run_figures``; computed from its history when not);
with N samples a figure is their mean, and return and Sharpe also show the
bootstrap 95 % interval of the mean (``run_metrics.compare_samples``, the
CLI's comparison): configs whose return intervals overlap are marked "not
distinguishable", a config with one sample says "one sample". Notes also
carry "in-sample for this model", "too few trades to judge" (fewer than 10
closed trades on average) and why runs stopped or failed. Tokens and dollars
are what the runs spent (their ``runs`` rows; cache hits cost nothing).
Curves: each run's equity normalised to 100 against its own buy-and-hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from strategy_agent.backtest.compare import ConfigRow, RunFigures, compare_configs
from strategy_agent.backtest.driver import RunOutcome
from strategy_agent.trading_history.run_figures import (
    StrategyFigures,
    stored_figures,
    strategy_figures,
)
from strategy_agent.trading_history.run_metrics import (
    DISTINGUISHABLE,
    MIN_TRADES_TO_JUDGE,
    NOT_DISTINGUISHABLE,
    ONE_SAMPLE,
    TOO_FEW_TRADES,
    SampleSummary,
)
from strategy_agent.trading_history.runs import BatchSummary, Run, list_batches, list_runs
from strategy_agent.views import format as fmt
from strategy_agent.views import memo
from strategy_agent.views.leaderboard_curves import index_frame, normalised_curve

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

IN_SAMPLE = "in-sample for this model"
_SUFFIX = re.compile(r" · backtest( #\d+/\d+)?$")

COMPARISON_COLUMNS = [
    "Config",
    "Samples",
    "Return (%)",
    "Return 95 % interval",
    "Buy & hold (%)",
    "CAGR (%)",
    "Sharpe",
    "Sharpe 95 % interval",
    "Sortino",
    "Max drawdown (%)",
    "Trades",
    "Win rate (%)",
    "Profit factor",
    "Fees (USDT)",
    "LLM tokens",
    "LLM cost (USD)",
    "Notes",
]
FIRST_SHOWN = [  # what a comparison is read for, in the first screen width (~1,400 px)
    "Config",
    "Samples",
    "Return (%)",
    "Return 95 % interval",
    "Buy & hold (%)",
    "Sharpe",
    "Trades",
    "Fees (USDT)",
    "LLM tokens",
    "LLM cost (USD)",
    "Notes",
]
SAMPLE_COLUMNS = ("Samples", "Return 95 % interval", "Sharpe 95 % interval")
LLM_COLUMNS = ("LLM tokens", "LLM cost (USD)")


def shown_columns(sampled: bool, llm: bool = True) -> list[str]:
    """The comparison's columns in the order the page shows them: ``FIRST_SHOWN``, then the
    rest of ``COMPARISON_COLUMNS``. Left out: the sample columns without samples (each
    would say "one sample", as Notes does), the LLM columns when no config calls an LLM."""
    hidden = set(() if sampled else SAMPLE_COLUMNS) | set(() if llm else LLM_COLUMNS)
    order = FIRST_SHOWN + [c for c in COMPARISON_COLUMNS if c not in FIRST_SHOWN]
    return [c for c in order if c not in hidden]


RUN_COLUMNS = [
    "Config",
    "Sample",
    "Status",
    "Return (%)",
    "Buy & hold (%)",
    "Sharpe",
    "Max drawdown (%)",
    "Trades",
    "Cycles",
    "LLM tokens",
    "LLM cost (USD)",
    "Reason",
    "Run",
]


@dataclass
class BatchComparison:
    """A batch's comparison: ``table`` (``COMPARISON_COLUMNS``, one row per config),
    ``runs`` (``RUN_COLUMNS``, one row per run), curves and benchmarks keyed alike
    (``"config #sample"``), and what the page says about the batch."""

    batch_id: str
    table: pd.DataFrame
    runs: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    benchmarks: dict[str, pd.DataFrame] = field(default_factory=dict)
    window: str = ""
    data: str = ""
    running: int = 0
    sampled: bool = False


def batches(store: SqliteStore, limit: int = 50) -> list[BatchSummary]:
    """Backtest batches, newest first."""
    return list_batches(store, limit)


def batch_label(batch: BatchSummary) -> str:
    """``2025-03-01 12:00 · 4 runs · simulated · 2025-01-03 → 2025-01-09``."""
    window = ""
    if batch.window_from_ms is not None and batch.window_to_ms is not None:
        window = f" · {fmt.ts(batch.window_from_ms)} → {fmt.ts(batch.window_to_ms)}"
    return (
        f"{fmt.ts(batch.created_ts)} · {batch.runs} run{'s' * (batch.runs != 1)} · "
        f"{batch.data_source}{window} · {batch.batch_id}"
    )


def config_label(run: Run) -> str:
    """The config a run belongs to: its strategy name without `` · backtest #k/N``."""
    return _SUFFIX.sub("", run.request.trading.strategy_name)


def batch_comparison(store: SqliteStore, batch_id: str) -> BatchComparison:
    """The comparison of one batch (memoised until its data changes)."""
    key = ("batch_comparison", batch_id, *memo.data_version(store))
    return memo.remember(key, lambda: _build(store, batch_id))


def _build(store: SqliteStore, batch_id: str) -> BatchComparison:
    runs = list(reversed(list_runs(store, batch_id=batch_id, limit=10_000)))  # as stored
    if not runs:
        return BatchComparison(batch_id, _empty(COMPARISON_COLUMNS), _empty(RUN_COLUMNS))
    stored = stored_figures(store, {r.strategy_id: r.request for r in runs})
    figures = {
        r.id: stored.get(r.strategy_id) or strategy_figures(store, r.strategy_id, r.request)
        for r in runs
    }
    results = [
        RunFigures(RunOutcome(config_label(r), r, figures[r.id].cycles, 0), figures[r.id].run)
        for r in runs
    ]
    rows = compare_configs(results)
    sampled = {row.label for row in rows if row.returns.samples > 1}
    comparison = BatchComparison(
        batch_id,
        pd.DataFrame([_config_row(row, bool(sampled - {row.label})) for row in rows],
                     columns=COMPARISON_COLUMNS),
        pd.DataFrame([_run_row(f, figures[f.outcome.run.id]) for f in results],
                     columns=RUN_COLUMNS),
        window=_window(runs),
        data=_data(runs),
        running=sum(r.status == "running" for r in runs),
        sampled=bool(sampled),
    )  # fmt: skip
    for result in results:
        _draw(comparison, result, figures[result.outcome.run.id])
    return comparison


def _config_row(row: ConfigRow, others_sampled: bool) -> dict[str, Any]:
    runs = [f.metrics for f in row.runs]
    stored = [f.outcome.run for f in row.runs]
    builtin = all(r.request.llm.is_builtin for r in stored)
    costs = [r.cost_usd for r in stored]
    trades = _mean([m.trades for m in runs])
    notes = [_sample_note(row.returns, others_sampled)]
    if any(r.in_sample for r in stored):
        notes.append(IN_SAMPLE)
    if trades is not None and trades < MIN_TRADES_TO_JUDGE:
        notes.append(TOO_FEW_TRADES)
    for status in sorted({r.status for r in stored} - {"done"}):
        reasons = {(r.status_reason or status).split(":")[0] for r in stored if r.status == status}
        notes.append(f"{status}: {'; '.join(sorted(reasons))}")
    win = _mean([m.win_rate for m in runs])
    return {
        "Config": row.label,
        "Samples": len(row.runs),
        "Return (%)": row.returns.mean,
        "Return 95 % interval": _interval(row.returns, "{:+.2f} %"),
        "Buy & hold (%)": _mean([m.buy_and_hold_return_pct for m in runs]),
        "CAGR (%)": _mean([m.cagr_pct for m in runs]),
        "Sharpe": row.sharpe.mean,
        "Sharpe 95 % interval": _interval(row.sharpe, "{:.2f}"),
        "Sortino": _mean([m.sortino for m in runs]),
        "Max drawdown (%)": _mean([m.max_drawdown_pct for m in runs]),
        "Trades": trades,
        "Win rate (%)": None if win is None else win * 100.0,
        "Profit factor": _mean([m.profit_factor for m in runs]),
        "Fees (USDT)": _mean([m.fees_paid for m in runs]),
        "LLM tokens": None if builtin else sum(r.tokens for r in stored),
        "LLM cost (USD)": None if builtin or None in costs else sum(c or 0.0 for c in costs),
        "Notes": "; ".join(notes),
    }


def _sample_note(summary: SampleSummary, others_sampled: bool) -> str:
    """ "one sample"; with N, whether its return interval overlaps another config's."""
    if summary.samples <= 1:
        return ONE_SAMPLE
    if summary.overlaps:
        return f"{NOT_DISTINGUISHABLE} from {', '.join(summary.overlaps)}"
    if not others_sampled:
        return f"{summary.samples} samples"
    return f"{DISTINGUISHABLE} from the other sampled configs"


def _interval(summary: SampleSummary, form: str) -> str:
    if summary.low is None or summary.high is None:
        return ONE_SAMPLE if summary.samples == 1 else fmt.DASH
    return f"[{form.format(summary.low)}, {form.format(summary.high)}]"


def _run_row(result: RunFigures, figures: StrategyFigures) -> dict[str, Any]:
    run, metrics = result.outcome.run, result.metrics
    builtin = run.request.llm.is_builtin
    samples = run.request.trading.strategy_name
    match = re.search(r"#(\d+)/(\d+)$", samples)
    return {
        "Config": result.outcome.label,
        "Sample": f"{match.group(1)} of {match.group(2)}" if match else ONE_SAMPLE,
        "Status": run.status,
        "Return (%)": metrics.net_return_pct,
        "Buy & hold (%)": metrics.buy_and_hold_return_pct,
        "Sharpe": metrics.sharpe,
        "Max drawdown (%)": metrics.max_drawdown_pct,
        "Trades": metrics.trades,
        "Cycles": figures.cycles,
        "LLM tokens": None if builtin else run.tokens,
        "LLM cost (USD)": None if builtin else run.cost_usd,
        "Reason": run.status_reason,
        "Run": run.id,
    }


def _draw(comparison: BatchComparison, result: RunFigures, figures: StrategyFigures) -> None:
    run = result.outcome.run
    label = result.outcome.label
    if comparison.sampled:
        label += f" #{run.sample_index + 1}"
    curves = figures.curves
    if curves.equity_ts.size:
        comparison.curves[label] = normalised_curve(run.request, curves.equity_ts, curves.equity)
    bench = index_frame(
        run.request.trading.strategy_name, run.request, curves.benchmark_ts, curves.benchmark
    )
    if bench is not None:
        comparison.benchmarks[label] = bench


def _window(runs: Sequence[Run]) -> str:
    spans = {(r.window_from_ms, r.window_to_ms) for r in runs if r.window_from_ms is not None}
    if not spans:
        return ""
    first = min(a for a, _ in spans)
    last = max(b for _, b in spans if b is not None)
    return f"{fmt.ts(first).removesuffix(' UTC')} → {fmt.ts(last)}"


def _data(runs: Sequence[Run]) -> str:
    sources = sorted({r.data_source for r in runs})
    hashes = sorted({(r.data_hash or "")[:12] for r in runs} - {""})
    text = ", ".join(sources)
    return text + (f" (data sha256 {', '.join(hashes)})" if hashes else "")


def _mean(values: Sequence[float | int | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)
