"""The ``run`` command's request, checked before anything is stored.

The config file (or the embedded demo), plus ``--replay``/``--csv``/``--since``;
then what this build can run (``wiring.unsupported``: built-in rule, exchange
id, mode, symbols' notation and the simulated market's symbols), the CSV files
a replay reads, and, on a real exchange, the symbols against its markets
(loaded through its public endpoints; an unreachable exchange is an error
that says so). Every problem is one ``StrategyAgentError`` naming the field.
"""

from __future__ import annotations

import argparse

from strategy_agent.config import load_request
from strategy_agent.errors import ConfigurationError, StrategyAgentError
from strategy_agent.market_cli import parse_utc_ms
from strategy_agent.models import ReplayConfig, UserRequest
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.wiring import SIMULATED, csv_paths, load_markets, symbols_problem, unsupported


def checked_request(args: argparse.Namespace, store: SqliteStore) -> UserRequest:
    """The request ``run`` would store, or ``StrategyAgentError`` with the first problem."""
    source = str(args.config) if args.config else "the demo"
    request = load_request(args.config) if args.config else UserRequest()
    request = with_replay(request, args)
    problem = unsupported(request)
    if problem is not None:
        raise StrategyAgentError(f"{source}: {problem[0]}: {problem[1]}")
    for path in csv_paths(request):
        if not path.is_file():
            raise ConfigurationError(f"{source}: replay CSV file not found: {path}")
    exchange = request.exchange
    if exchange.exchange_id != SIMULATED:
        markets = load_markets(exchange.exchange_id, exchange.api_url)
        problem_text = symbols_problem(request, markets)
        if problem_text is not None:
            raise StrategyAgentError(f"{source}: trading.symbols: {problem_text}")
    if exchange.trading_mode != "paper":  # one symbol of one account, one strategy
        from strategy_agent.execution.ccxt_account import account_of, check_symbol_conflicts

        check_symbol_conflicts(
            store, exchange.exchange_id, account_of(exchange), request.trading.symbols
        )
    return request


def with_replay(request: UserRequest, args: argparse.Namespace) -> UserRequest:
    """``request`` with the replay the command line asks for (``--replay``, ``--csv``, ``--since``)."""
    csv = getattr(args, "csv", None) or []
    replay = request.replay
    if csv:
        files = dict(_csv_pair(item) for item in csv)
        replay = ReplayConfig(source="csv", csv_files=files)
    elif getattr(args, "replay", False):
        replay = ReplayConfig(source="store")
    since = getattr(args, "since", None)
    if since:
        if replay is None:
            raise ConfigurationError("--since goes with --replay or --csv")
        replay = replay.model_copy(update={"start_ms": parse_utc_ms(since, "--since")})
    return request if replay is request.replay else request.model_copy(update={"replay": replay})


def _csv_pair(item: str) -> tuple[str, str]:
    symbol, sep, path = item.partition("=")
    if not sep or not symbol.strip() or not path.strip():
        raise ConfigurationError(f"--csv {item!r}: write SYMBOL=FILE, e.g. BTC/USDT=btc_1h.csv")
    return symbol.strip(), path.strip()
