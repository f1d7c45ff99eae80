"""Command line for market data: ``markets`` (list an exchange's symbols) and ``download``.

``add_market_commands(subparsers)`` adds both commands to the main parser;
``run_market_command(args)`` runs one (returns the exit status). Expected
failures raise ``StrategyAgentError`` for the caller to print as one line.

    python -m strategy_agent markets --exchange okx [--type swap] [--quote USDT]
    python -m strategy_agent download --exchange okx --symbols BTC/USDT,ETH/USDT \\
        --interval 1h --since 2025-01-01 [--until 2025-02-01]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from strategy_agent.errors import ConfigurationError, StrategyAgentError
from strategy_agent.models import INTERVAL_MS

if TYPE_CHECKING:
    from strategy_agent.data.candle_download import DownloadProgress

_API_URL_HELP = "send the exchange's REST calls to this base URL (a test server or a proxy)"


def add_market_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``markets`` and ``download`` commands to a subparsers object."""
    markets = sub.add_parser("markets", help="list the markets of an exchange")
    markets.add_argument("--exchange", required=True, help="ccxt exchange id, or 'simulated'")
    markets.add_argument("--type", choices=["spot", "swap", "future", "option"])
    markets.add_argument("--quote", help="only markets quoted in this currency, e.g. USDT")
    markets.add_argument("--all", action="store_true", help="also list unsupported markets")
    markets.add_argument("--api-url", help=_API_URL_HELP)

    download = sub.add_parser("download", help="download closed candles into the database")
    download.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. okx")
    download.add_argument(
        "--symbols", required=True, help="comma-separated, e.g. BTC/USDT,ETH/USDT"
    )
    download.add_argument("--interval", required=True, choices=list(INTERVAL_MS))
    download.add_argument("--since", required=True, help="UTC date or time, e.g. 2025-01-01")
    download.add_argument("--until", help="UTC date or time, exclusive (default: now)")
    download.add_argument("--db", type=Path, default=Path("data/strategy_agent.db"))
    download.add_argument(
        "--refetch-gaps", action="store_true", help="ask again for ranges recorded as gaps"
    )
    download.add_argument("--api-url", help=_API_URL_HELP)


def run_market_command(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run ``markets`` or ``download`` from parsed ``args``; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.command == "markets":
        return run_markets(args, out)
    if args.command == "download":
        return run_download(args, out, err)
    raise ValueError(f"not a market command: {args.command}")


def run_markets(args: argparse.Namespace, out: TextIO) -> int:
    """Print the exchange's markets, one line each; unsupported ones only with ``--all``."""
    from strategy_agent.data.symbols import SIMULATED_EXCHANGE, list_markets

    markets = None
    if args.exchange != SIMULATED_EXCHANGE:
        markets = _load_markets(args.exchange, args.api_url)
    listings = list_markets(args.exchange, args.type, args.quote, markets=markets)
    shown = [m for m in listings if args.all or (m.supported and m.active)]
    if not shown:
        kind = f"{args.type} " if args.type else ""
        quoted = f" quoted in {args.quote}" if args.quote else ""
        raise ConfigurationError(f"no tradable {kind}markets{quoted} on {args.exchange}")
    out.write(f"{'symbol':<22} {'type':<6} {'step':>12} {'min amount':>12} {'min cost':>10}\n")
    for m in shown:
        note = f"  ({m.note})" if m.note else ("" if m.active else "  (inactive)")
        out.write(
            f"{m.symbol:<22} {m.type:<6} {_num(m.amount_step):>12} {_num(m.min_amount):>12} "
            f"{_num(m.min_cost):>10}{note}\n"
        )
    out.write(f"{len(shown)} markets on {args.exchange}\n")
    return 0


def run_download(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Download candles into ``--db``, with a progress bar on ``err``; prints a summary."""
    from strategy_agent.clock import SystemClock
    from strategy_agent.data.candle_download import download
    from strategy_agent.data.ccxt_market import CcxtMarketDataSource
    from strategy_agent.trading_history.candle_store import CandleSeries, clear_gaps
    from strategy_agent.trading_history.store import SqliteStore

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not symbols:
        raise ConfigurationError("--symbols lists no symbol; write e.g. BTC/USDT,ETH/USDT")
    since_ms = parse_utc_ms(args.since, "--since")
    until_ms = parse_utc_ms(args.until, "--until") if args.until else None
    source = CcxtMarketDataSource(args.exchange, clock=SystemClock(), api_url=args.api_url)
    with SqliteStore(args.db) as store:
        if args.refetch_gaps:
            for symbol in symbols:
                clear_gaps(store, CandleSeries(args.exchange, symbol, args.interval))
        bar = ProgressBar(err)
        reports = download(
            args.exchange,
            symbols,
            args.interval,
            since_ms,
            until_ms,
            store,
            bar,
            source=source,
        )
        bar.finish()
    for report in reports:
        gaps = (
            f", {report.gaps} gap(s) of {report.gap_candles} candle(s) recorded"
            if report.gaps
            else ""
        )
        out.write(
            f"{report.symbol} {report.interval}: {report.stored} candle(s) added{gaps}, "
            f"{report.requests} request(s)\n"
        )
    out.write(f"stored in {args.db}\n")
    return 0


class ProgressBar:
    """A one-line text progress bar per symbol (redrawn on a terminal, else printed at 100 %)."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._live = stream.isatty()
        self._current: str | None = None

    def __call__(self, progress: DownloadProgress) -> None:
        if self._current not in (None, progress.symbol) and self._live:
            self._stream.write("\n")
        self._current = progress.symbol
        filled = round(progress.fraction * self._width)
        line = (
            f"{progress.symbol} {progress.interval} [{'#' * filled}{'.' * (self._width - filled)}]"
            f" {progress.fraction:4.0%} {progress.done}/{progress.total} candles"
        )
        if self._live:
            self._stream.write("\r" + line)
        elif progress.done >= progress.total:
            self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._live and self._current is not None:
            self._stream.write("\n")


def parse_utc_ms(text: str, option: str) -> int:
    """Epoch ms of a UTC date or time (``2025-01-01``, ``2025-01-01T12:00``, with or
    without an offset; a time without one is UTC) or of epoch milliseconds."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{option} {text!r} is not a date: write e.g. 2025-01-01 or 2025-01-01T12:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _load_markets(exchange_id: str, api_url: str | None) -> dict[str, dict[str, object]]:
    from strategy_agent.data.ccxt_exchange import RetryPolicy, call_with_retries, create_exchange

    exchange = create_exchange(exchange_id, api_url=api_url)
    markets = call_with_retries(
        f"{exchange_id} load_markets", exchange.load_markets, policy=RetryPolicy()
    )
    return dict(markets)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def main(argv: list[str] | None = None) -> int:
    """Run one market command on its own (the main CLI wires the same functions)."""
    parser = argparse.ArgumentParser(prog="python -m strategy_agent")
    add_market_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return run_market_command(args)
    except StrategyAgentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped by user; what was downloaded is kept, run again to resume", file=sys.stderr)
        return 130
