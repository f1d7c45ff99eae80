"""``python -m strategy_agent backtest`` and ``lookahead-check``.

``backtest --config a.toml [--config b.toml ...] --from DATE --to DATE [--data D]
[--samples N] [--budget-usd X] [--yes] [--db F]`` replays the window for every
config (and sample) side by side and prints the comparison. Before an LLM
backtest it prints the calls, tokens and dollars it will cost and asks to go
on (``--yes`` skips the question; without a terminal to ask on it refuses); it
warns when the window starts before a model's training cutoff; it shows the
progress; afterwards it prints the estimate beside what was spent.

``lookahead-check --config a.toml --from DATE --to DATE [--data D] [--cuts N]``
replays each config in full and truncated (``backtest.lookahead``); exit status
1 when a decision changed.

``--to`` as a date includes that whole day (UTC).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from strategy_agent.errors import ConfigurationError, StrategyAgentError

DEFAULT_DB = Path("data/strategy_agent.db")
DAY_MS = 86_400_000
CACHE_NOTE = (
    "the estimate counts every call as new; replies already in the response cache (in --db) "
    "cost nothing, so a re-run of the same window with the same prompts, model, temperature "
    "and samples costs $0 and repeats them"
)


def add_backtest_commands(sub: Any) -> None:
    """Add ``backtest`` and ``lookahead-check`` to the CLI's subcommands."""
    backtest = sub.add_parser(
        "backtest", help="replay a window for several configs side by side and compare them"
    )
    _common(backtest)
    backtest.add_argument(
        "--samples", type=int, default=1, help="independent samples per LLM config (default 1)"
    )
    backtest.add_argument(
        "--budget-usd", type=float, help="stop every run once this many US dollars are spent"
    )
    check = sub.add_parser(
        "lookahead-check",
        help="replay a window in full and cut short; fail when a decision changes",
    )
    _common(check)
    check.add_argument(
        "--cuts", type=int, default=3, help="how many cut points in the window (default 3)"
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, action="append", required=True, help="TOML config (repeatable)"
    )
    parser.add_argument("--from", dest="from_date", required=True, help="first day (UTC)")
    parser.add_argument("--to", dest="to_date", required=True, help="last day (UTC, included)")
    parser.add_argument(
        "--data",
        help="simulated, store:EXCHANGE, csv:FILE or csv:SYMBOL=FILE,... "
        "(default: each config's own market)",
    )
    parser.add_argument("--yes", action="store_true", help="run without asking about the cost")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="database (and LLM cache)")


def run_backtest_command(args: argparse.Namespace) -> int:
    """The ``backtest`` command; 0 when every run ended done or stopped by the budget."""
    from strategy_agent.backtest.budget import BudgetTracker
    from strategy_agent.backtest.compare import compare_configs, comparison_lines, run_figures
    from strategy_agent.backtest.cost import compare_estimate, model_prices
    from strategy_agent.backtest.driver import run_backtest
    from strategy_agent.backtest.progress import LineReporter, Progress
    from strategy_agent.trading_history.store import SqliteStore

    if args.budget_usd is not None and not args.budget_usd > 0:
        raise ConfigurationError(f"--budget-usd must be a positive amount, got {args.budget_usd}")
    with SqliteStore(args.db) as store:
        plan = _plan(args, store, samples=args.samples)
    _print_plan(plan)
    if args.budget_usd is not None:
        unpriced = sorted({r.label for r in plan.runs if model_prices(r.request.llm) is None})
        if unpriced:
            raise ConfigurationError(
                f"--budget-usd cannot bound {', '.join(unpriced)}: no price is known for its "
                f"model; set input_cost_per_mtok and output_cost_per_mtok in its [llm]"
            )
    if not _confirmed(plan, args.yes):
        return 2
    budget = BudgetTracker(budget_usd=args.budget_usd)
    progress = Progress(plan.cycles_total, listeners=[LineReporter()])
    stop = threading.Event()
    print(
        f"batch {plan.batch_id}: {len(plan.runs)} runs, {plan.cycles_total:,} cycles; db {args.db}"
    )
    try:
        outcomes = run_backtest(plan, args.db, budget=budget, progress=progress, stop=stop)
    except KeyboardInterrupt:
        progress.finish("stopped", "stopped by user")
        print("stopped by user: the runs are stored as stopped", file=sys.stderr)
        return 130
    failed = [o for o in outcomes if o.run.status == "failed"]
    progress.finish(
        "failed" if failed else ("stopped" if budget.should_stop() else "done"), budget.reason()
    )
    if plan.uses_llm:
        spent = budget.spent()
        cost = None if spent.unpriced_calls else spent.cost_usd
        print("estimate vs actual (cache hits cost nothing):")
        for line in compare_estimate(plan.estimate, spent.tokens, cost).lines():
            print(f"  {line}")
        if budget.should_stop():
            print("  (stopped by the budget: the estimate covers the whole window)")
    with SqliteStore(args.db) as store:
        figures = [run_figures(store, outcome, plan.data) for outcome in outcomes]
    print()
    for line in comparison_lines(compare_configs(figures)):
        print(line)
    for outcome in failed:
        print(
            f"error: {outcome.label}: run {outcome.run.id} failed: {outcome.run.status_reason}",
            file=sys.stderr,
        )
    print(f"stored as batch {plan.batch_id} in {args.db} (each run is a strategy on every page)")
    return 2 if failed else 0


def run_lookahead_command(args: argparse.Namespace) -> int:
    """The ``lookahead-check`` command; 1 when any decision changed, 0 when none did."""
    from strategy_agent.backtest.lookahead import lookahead_check
    from strategy_agent.trading_history.store import SqliteStore

    with SqliteStore(args.db) as store:
        plan = _plan(args, store, samples=1)
    _print_plan(plan)
    if not _confirmed(plan, args.yes):
        return 2
    failed = False
    for planned in plan.runs:
        report = lookahead_check(plan.data, planned, cache_db=args.db, cuts=args.cuts)
        for line in report.lines():
            print(line)
        failed |= not report.passed
    print("lookahead-check: " + ("FAILED" if failed else "passed"))
    return 1 if failed else 0


# -- shared ---------------------------------------------------------------------------------------


def _plan(args: argparse.Namespace, store: Any, samples: int) -> Any:
    from strategy_agent.backtest.driver import ConfigEntry, plan_backtest
    from strategy_agent.backtest.window import parse_data_spec
    from strategy_agent.config import load_request
    from strategy_agent.market_cli import parse_utc_ms

    from_ms = parse_utc_ms(args.from_date, "--from")
    to_ms = parse_utc_ms(args.to_date, "--to")
    if _is_day(args.to_date):
        to_ms += DAY_MS - 1  # the whole day
    requests = [load_request(path) for path in args.config]
    labels = _labels([r.trading.strategy_name for r in requests], args.config)
    spec = parse_data_spec(args.data) if args.data else None
    configs = [ConfigEntry(label, r) for label, r in zip(labels, requests, strict=True)]
    return plan_backtest(
        configs, from_ms=from_ms, to_ms=to_ms, spec=spec, samples=samples, store=store
    )


def _print_plan(plan: Any) -> None:
    from strategy_agent.backtest.window import utc

    first = plan.runs[0].window
    windows = dict.fromkeys((r.label, r.window.describe()) for r in plan.runs)
    where = f"on {plan.data.spec.label} (data sha256 {plan.data_hash[:12]})"
    if len({text for _, text in windows}) == 1:
        print(f"window: {first.describe()} {where}")
    else:  # other intervals: the same span in their own candles
        print(f"windows {where}:")
        for label, text in windows:
            print(f"  {label}: {text}")
    at_close = sorted({r.label for r in plan.runs if r.request.exchange.fill_at == "close"})
    print(
        "fills: at the open of the candle after each decision"
        + (f" (at the decision's close for {', '.join(at_close)}: fill_at)" if at_close else "")
    )
    for note in plan.notes:
        print(f"note: {note}")
    for label, why in dict.fromkeys((r.label, r.in_sample) for r in plan.runs if r.in_sample):
        print(
            f"warning: {label}: {why}; its results may reflect memory, not skill "
            f"(window starts {utc(first.first_ms)})"
        )


def _confirmed(plan: Any, yes: bool) -> bool:
    """Print the cost of an LLM run and ask; True to go on (always for built-in rules)."""
    if not plan.estimate.calls:
        return True
    print("cost estimate:")
    for line in plan.estimate.lines():
        print(f"  {line}")
    print(f"  {CACHE_NOTE}")
    if yes:
        return True
    if not sys.stdin.isatty():
        raise StrategyAgentError(
            f"this run makes up to {plan.estimate.calls:,} LLM calls and there is no terminal "
            f"to confirm them in: read the estimate above, then run again with --yes"
        )
    answer = input("run it? (cached replies are free) [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        print("not run: nothing was stored or spent")
        return False
    return True


def _labels(names: list[str], paths: list[Path]) -> list[str]:
    """Config labels: the strategy names, else the file names where names repeat."""
    if len(set(names)) == len(names):
        return names
    stems = [path.stem for path in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{stem} #{n}" for n, stem in enumerate(stems, start=1)]


def _is_day(text: str) -> bool:
    return len(text.strip()) == 10 and text.strip()[4] == "-"
