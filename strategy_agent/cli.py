"""Command line: ``python -m strategy_agent run|report|app|markets|download|backtest|lookahead-check``.

``run`` on a live market decides once per closed candle (it waits for each
close); on the simulated market and in replays (``--replay``, ``--csv``) it
steps through candles as fast as it can. Live trading needs
``--i-understand-live-trading``.

Expected failures (bad config, missing key, unreachable service) print one
clear ``error:`` line and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from strategy_agent.backtest.cli import (
    add_backtest_commands,
    run_backtest_command,
    run_lookahead_command,
)
from strategy_agent.errors import StrategyAgentError
from strategy_agent.market_cli import add_market_commands, run_market_command
from strategy_agent.models import StrategyStatus, UserRequest

LIVE_FLAG = "--i-understand-live-trading"


def _fmt_ts(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m strategy_agent",
        description="Run trading strategies headless and report on them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a strategy (no config: the embedded demo)")
    run.add_argument("--config", type=Path, help="TOML file mirroring UserRequest")
    run.add_argument("--cycles", type=int, default=50, help="number of decision cycles")
    run.add_argument("--db", type=Path, default=Path("data/strategy_agent.db"))
    run.add_argument("--resume", metavar="ID", help="continue a stored strategy instead")
    run.add_argument("--delay", type=float, default=0.0, help="seconds to wait between cycles")
    run.add_argument("--quiet", action="store_true", help="only print the summary")
    run.add_argument(
        "--replay",
        action="store_true",
        help="decide on candles downloaded with `download` (the config's exchange, symbols and "
        "interval) instead of the live market",
    )
    run.add_argument(
        "--csv",
        action="append",
        metavar="SYMBOL=FILE",
        help="replay a CSV file of candles for SYMBOL (repeat for each symbol)",
    )
    run.add_argument("--since", help="with --replay/--csv: first decision at this UTC date")
    run.add_argument(
        LIVE_FLAG,
        dest="live_confirmed",
        action="store_true",
        help='confirm that trading_mode "live" sends real orders with real money',
    )
    report = sub.add_parser("report", help="summary of every stored strategy")
    report.add_argument("--db", type=Path, default=Path("data/strategy_agent.db"))
    report.add_argument("--json", action="store_true", help="machine-readable output")
    app = sub.add_parser(
        "app", help="the web app; strategies marked running resume before any browser connects"
    )
    app.add_argument("--host", default="127.0.0.1", help="address to serve on")
    app.add_argument("--port", type=int, default=8501, help="port to serve on")
    app.add_argument("--db", type=Path, help="database (default: $STRATEGY_AGENT_DB, else data/)")
    add_market_commands(sub)
    add_backtest_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "app":
            from strategy_agent.app_server import serve

            return serve(host=args.host, port=args.port, db=args.db)
        if args.command in ("markets", "download"):
            return run_market_command(args)
        if args.command == "backtest":
            return run_backtest_command(args)
        if args.command == "lookahead-check":
            return run_lookahead_command(args)
        return _report(args)
    except StrategyAgentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped by user", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0


def _run(args: argparse.Namespace) -> int:
    from strategy_agent.cli_checks import checked_request
    from strategy_agent.leasing import LeaseKeeper, lease_stale_s, owner_name
    from strategy_agent.trading_history.store import SqliteStore

    if args.cycles < 1:
        raise StrategyAgentError("--cycles must be at least 1")
    store = SqliteStore(args.db)
    if args.resume:
        strategy_id = args.resume
        row = store.get_strategy(strategy_id)  # unknown: a clear error
        _refuse_if_ended(row.status, strategy_id)
        _refuse_unconfirmed_live(row.request, args)
    else:
        request = checked_request(args, store)  # every problem said before anything is stored
        _refuse_unconfirmed_live(request, args)
        strategy_id = store.create_strategy(request, now_ms=int(time.time() * 1000))
    # the lease refuses a strategy someone else runs (the app, another CLI) and takes over
    # one whose owner died; it is held until the last cycle is recorded
    keeper = LeaseKeeper(
        args.db, strategy_id, owner_name("cli", "run"), stale_after_s=lease_stale_s()
    )
    with keeper:
        _refuse_if_ended(store.get_strategy(strategy_id).status, strategy_id)
        return _run_cycles(args, store, strategy_id, keeper.lost)


def _refuse_unconfirmed_live(request: UserRequest, args: argparse.Namespace) -> None:
    if request.exchange.trading_mode == "live" and not args.live_confirmed:
        raise StrategyAgentError(
            f'trading_mode "live" sends real orders with real money to '
            f"{request.exchange.exchange_id}: add {LIVE_FLAG} to confirm it (try "
            f'trading_mode "testnet" or "paper" first)'
        )


def _refuse_if_ended(status: StrategyStatus, strategy_id: str) -> None:
    if status in {"stopped", "stopping"}:
        raise StrategyAgentError(
            f"strategy {strategy_id} was {status}: a stopped strategy has ended and cannot run "
            f"again; duplicate it in the app to trade the same settings afresh"
        )


def _run_cycles(args: argparse.Namespace, store: Any, strategy_id: str, lost: Any) -> int:
    """Run ``args.cycles`` cycles under the lease; the status says what happened."""
    from strategy_agent.core import StrategyHalted
    from strategy_agent.factory import open_runtime

    runtime = open_runtime(store, strategy_id, live_confirmed=args.live_confirmed)
    trading = runtime.request.trading
    scheduler = runtime.scheduler(args.delay) if runtime.ports and runtime.ports.is_live else None
    print(
        f"strategy {strategy_id} '{trading.strategy_name}' "
        f"({runtime.request.llm.provider}/{runtime.request.llm.model_id}, "
        f"{', '.join(trading.symbols)}, {trading.interval}) "
        f"starting at cycle {runtime.coordinator.cycles_done + 1}; db {args.db}"
    )
    store.set_status(strategy_id, "running", None, int(time.time() * 1000))
    status: StrategyStatus | None = "paused"
    reason: str | None = None
    try:
        for _ in range(args.cycles):
            if lost.is_set():
                status = None  # the new owner decides the status
                print("error: another process took this strategy over; stopped", file=sys.stderr)
                break
            if runtime.exhausted():
                print(f"replay finished: no candle after {_fmt_ts(runtime.clock.now_ms())}")
                break
            if scheduler is not None:
                _wait_for_candle(scheduler, args.quiet)
            report = runtime.step()
            if scheduler is not None:
                scheduler.ran(report.ts, report.ok)
            if not args.quiet:
                _print_cycle(report, trading.initial_capital)
            if args.delay and scheduler is None:
                time.sleep(args.delay)
    except StrategyHalted as halted:  # paused on a refused exchange key, else error
        status, reason = halted.status, str(halted)
        print(f"error: strategy halted: {halted}", file=sys.stderr)
    finally:
        if status is not None:
            store.set_status(strategy_id, status, reason, int(time.time() * 1000))
    _print_summary(runtime)
    print(f"resume with: python -m strategy_agent run --resume {strategy_id} --db {args.db}")
    return 0 if status == "paused" and reason is None else 2


def _wait_for_candle(scheduler: Any, quiet: bool) -> None:
    """Sleep until the next candle has closed (a live market decides once per candle)."""
    import threading

    due = scheduler.next_due_ms()
    if scheduler.seconds_until_due() > 0 and not quiet:
        print(f"next decision at {_fmt_ts(due)} UTC (after the candle closes); Ctrl-C stops")
    scheduler.wait_until_due(threading.Event())


def _print_cycle(report: Any, initial_capital: float) -> None:
    head = f"#{report.cycle:05d} {_fmt_ts(report.ts)}"
    if not report.ok:
        print(f"{head} FAILED at {report.stage}: {report.error}")
        return
    change = (report.equity / initial_capital - 1) * 100
    actions = "; ".join(report.actions) if report.actions else "hold"
    if report.fallback_reason:
        actions += f" (fallback: {report.fallback_reason})"
    print(f"{head} equity {report.equity:>12,.2f} ({change:+.2f}%) | {actions}")
    if report.alert:
        print(f"{head} ALERT {report.alert}")


def _print_summary(runtime: Any) -> None:
    ledger = runtime.ledger
    capital = runtime.request.trading.initial_capital
    print(
        f"summary: equity {ledger.equity:,.2f} ({(ledger.equity / capital - 1) * 100:+.2f}%), "
        f"cash {ledger.cash:,.2f}, realized {ledger.realized_pnl:+,.2f}, "
        f"unrealized {ledger.unrealized_pnl:+,.2f}, fees {ledger.fees_paid:,.2f}, "
        + (f"funding {-ledger.funding_paid:+,.2f}, " if ledger.funding_paid else "")
        + f"open positions {len(ledger.positions)}"
    )


def _report(args: argparse.Namespace) -> int:
    from strategy_agent.reporting import strategy_reports

    if not args.db.exists():
        raise StrategyAgentError(f"no database at {args.db}: run a strategy first")
    reports = strategy_reports(args.db)
    if args.json:
        print(json.dumps(reports, indent=2))
        return 0
    if not reports:
        print("no strategy yet: run `python -m strategy_agent run`")
        return 0
    for r in reports:
        win = "-" if r["win_rate"] is None else f"{r['win_rate'] * 100:.0f}%"
        print(
            f"{r['strategy_id']}  {r['name']:<24} {r['status']:<8} cycles {r['cycles']:>6} "
            f"({r['failed_cycles']} failed)  "
            f"equity {r['equity']:>12,.2f}  return {r['return_pct']:+7.2f}%  "
            f"realized {r['realized_pnl']:+10,.2f}  unrealized {r['unrealized_pnl']:+10,.2f}  "
            f"fees {r['fees_paid']:8,.2f}  "
            + (f"funding {-r['funding_paid']:+,.2f}  " if r["funding_paid"] else "")
            + f"trades {r['trades']:>4}  win {win:>4}  "
            f"max dd {r['max_drawdown_pct']:.2f}%"
        )
    return 0
