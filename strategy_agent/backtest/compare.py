"""The comparison a backtest prints: per config, its runs' figures side by side.

Each run's figures are ``run_metrics`` over its stored equity points and
closed trades (the formulas are ``trading_history.metrics``'), with the
buy-and-hold of its own symbols on the same candles and fee, and what it spent
(tokens and dollars of its run row; cache hits cost nothing). A config with N
samples shows the mean and the bootstrap 95 % interval of return and Sharpe
(``compare_samples``), and whether its interval overlaps another config's
("not distinguishable"); a single sample is labelled "one sample". A run that
ended before its window's end says so ("partial: 238 of 624 cycles"), a failed
run gives its whole reason, and cycles the fallback policy decided instead of
the model are counted ("12 of 624 cycles fell back to noop").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategy_agent.backtest.driver import RunOutcome
from strategy_agent.backtest.run_notes import fallback_note
from strategy_agent.backtest.window import BatchData
from strategy_agent.models import interval_ms
from strategy_agent.trading_history import page_queries
from strategy_agent.trading_history.run_metrics import (
    DISTINGUISHABLE,
    NOT_DISTINGUISHABLE,
    ONE_SAMPLE,
    TOO_FEW_TRADES,
    RunMetrics,
    SampleSummary,
    Window,
    compare_samples,
    run_metrics,
)
from strategy_agent.trading_history.store import SqliteStore


@dataclass(frozen=True)
class RunFigures:
    """One run's figures beside its label, sample and how it ended."""

    outcome: RunOutcome
    metrics: RunMetrics


@dataclass(frozen=True)
class ConfigRow:
    """One config of the comparison: its runs, and the sample summaries of return and Sharpe."""

    label: str
    runs: list[RunFigures]
    returns: SampleSummary
    sharpe: SampleSummary


def run_figures(store: SqliteStore, outcome: RunOutcome, data: BatchData) -> RunFigures:
    """``run_metrics`` of one stored run (benchmark: the closes of the candles it decided on)."""
    request = outcome.run.request
    trading = request.trading
    bar = interval_ms(trading.interval)
    series = page_queries.equity_column(store, outcome.run.strategy_id)
    if series.ts.size:  # the capital is there one candle before the first cycle
        window = Window(int(series.ts[0]) - bar, int(series.ts[-1]), bar)
        closes = data.closes(trading.symbols, trading.interval, series.ts - bar)
    else:
        window, closes = Window(0, 0, bar), np.empty((0, len(trading.symbols)))
    priced = not request.llm.is_builtin
    metrics = run_metrics(
        series,
        page_queries.trade_results(store, outcome.run.strategy_id),
        window,
        trading.initial_capital,
        llm_tokens=outcome.run.tokens if priced else None,
        llm_cost_usd=outcome.run.cost_usd if priced else None,
        benchmark_closes=closes if len(closes) >= 2 else None,
        fee_bps=request.exchange.fee_bps,
    )
    return RunFigures(outcome, metrics)


def compare_configs(figures: Sequence[RunFigures]) -> list[ConfigRow]:
    """Group runs by config (in first-seen order) with their sample summaries."""
    labels = list(dict.fromkeys(f.outcome.label for f in figures))
    grouped = {label: [f for f in figures if f.outcome.label == label] for label in labels}
    returns = compare_samples(
        {label: [f.metrics.net_return_pct for f in runs] for label, runs in grouped.items()}
    )
    sharpe = compare_samples(
        {label: [f.metrics.sharpe for f in runs] for label, runs in grouped.items()}
    )
    return [ConfigRow(label, grouped[label], returns[label], sharpe[label]) for label in labels]


HEADER = (
    "config",
    "samples",
    "return %",
    "buy&hold %",
    "Sharpe",
    "max DD %",
    "trades",
    "fees",
    "tokens",
    "dollars",
    "notes",
)


def comparison_lines(rows: Sequence[ConfigRow]) -> list[str]:
    """The comparison table as text lines (header, one line per config, legend)."""
    sampled = {row.label for row in rows if row.returns.samples > 1}
    table = [list(HEADER)] + [_cells(row, bool(sampled - {row.label})) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = [
        "  ".join(
            cell.ljust(width) if i in (0, len(HEADER) - 1) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    if any(row.returns.samples > 1 for row in rows):
        lines.append(
            "return % and Sharpe of several samples: mean [bootstrap 95 % interval]; configs "
            "whose intervals overlap are not distinguishable"
        )
    return lines


def _cells(row: ConfigRow, others_sampled: bool) -> list[str]:
    runs = [f.metrics for f in row.runs]
    spent = [f.outcome.run.cost_usd for f in row.runs]
    tokens = sum(f.outcome.run.tokens for f in row.runs)
    builtin = all(f.outcome.run.request.llm.is_builtin for f in row.runs)
    notes = [_sample_note(row, others_sampled)]
    if any(f.outcome.run.in_sample for f in row.runs):
        notes.append("in-sample for this model")
    if _mean([m.trades for m in runs]) < 10:
        notes.append(TOO_FEW_TRADES)
    ended = sorted({f.outcome.run.status for f in row.runs} - {"done"})
    notes += [f"{status}: {_reason(row, status)}" for status in ended]
    notes += _partial_note(row) + _fallback_notes(row)
    return [
        row.label,
        str(len(row.runs)),
        _summary(row.returns, "{:+.2f}"),
        _number(_mean_or_none([m.buy_and_hold_return_pct for m in runs]), "{:+.2f}"),
        _summary(row.sharpe, "{:.2f}"),
        _number(_mean_or_none([m.max_drawdown_pct for m in runs]), "{:.2f}"),
        count_text(_mean([m.trades for m in runs])),
        _number(_mean([m.fees_paid for m in runs]), "{:,.2f}"),
        "-" if builtin else f"{tokens:,}",
        "-" if builtin else ("?" if None in spent else f"${sum(s or 0.0 for s in spent):,.4f}"),
        "; ".join(notes),
    ]


def _sample_note(row: ConfigRow, others_sampled: bool) -> str:
    """ "one sample"; with N, whether its return interval overlaps another config's."""
    summary = row.returns
    if summary.samples <= 1:
        return ONE_SAMPLE
    if summary.overlaps:
        return f"{NOT_DISTINGUISHABLE} from {', '.join(summary.overlaps)}"
    if not others_sampled:  # nothing to tell it apart from
        return f"{summary.samples} samples"
    return f"{DISTINGUISHABLE} from the other sampled configs"


def _reason(row: ConfigRow, status: str) -> str:
    """Why its runs ended so, once each (a failure in full; the budget's running totals
    left out of a stop)."""
    reasons = {f.outcome.run.status_reason for f in row.runs if f.outcome.run.status == status}
    if status != "failed":
        reasons = {r.split(":")[0] for r in reasons if r}
    return "; ".join(sorted(r for r in reasons if r)) or status


def _partial_note(row: ConfigRow) -> list[str]:
    """ "partial: 238 of 624 cycles" when a run ended before its window's end."""
    short = [
        f.outcome
        for f in row.runs
        if f.outcome.window_cycles is not None and f.outcome.cycles < f.outcome.window_cycles
    ]
    if not short:
        return []
    counts = ", ".join(f"{o.cycles:,}" for o in short)
    total = max(o.window_cycles or 0 for o in short)
    of_runs = f" ({len(short)} of {len(row.runs)} samples)" if len(row.runs) > 1 else ""
    return [f"partial: {counts} of {total:,} cycles{of_runs}"]


def _fallback_notes(row: ConfigRow) -> list[str]:
    """How many cycles of the config's runs the fallback policy decided (none: no note)."""
    fell_back = [f.outcome for f in row.runs if f.outcome.fallback_cycles]
    if not fell_back:
        return []
    by_policy: dict[str, int] = {}
    for outcome in fell_back:
        name = outcome.fallback or "the fallback"
        by_policy[name] = by_policy.get(name, 0) + outcome.fallback_cycles
    cycles = sum(f.outcome.cycles for f in row.runs)
    return [fallback_note(count, cycles, name) for name, count in by_policy.items()]


def _summary(summary: SampleSummary, form: str) -> str:
    if summary.mean is None:
        return "n/a"
    if summary.low is None or summary.high is None:
        return form.format(summary.mean)
    return f"{form.format(summary.mean)} [{form.format(summary.low)}, {form.format(summary.high)}]"


def count_text(mean: float) -> str:
    """A count, or the mean count of several samples to one decimal (``4.3``, ``1,204``)."""
    return f"{mean:,.0f}" if mean == int(mean) else f"{mean:,.1f}"


def _number(value: float | None, form: str) -> str:
    return "n/a" if value is None else form.format(value)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None
