"""Which ports a strategy runs on, chosen from its config here and nowhere else.

By ``exchange_id``, ``trading_mode`` and ``replay``:

==========================  ===================  ==============  ============  =====================
market                      data source          clock           rules         gateway (fill prices)
==========================  ===================  ==============  ============  =====================
``simulated``               simulated market     stepped         simulated     paper (next open)
ccxt id, ``replay`` set     stored / CSV candles stepped         exchange's    paper (next open)
a backtest (``replay_ports``) candles of its batch stepped       exchange's    paper (next open)
ccxt id, ``paper``          exchange, live       wall clock      exchange's    paper (ticker now)
ccxt id, testnet / live     exchange, live       wall clock      exchange's    ``CcxtExecutionGateway``
==========================  ===================  ==============  ============  =====================

The portfolio view (``build_portfolio``) is the ledger's on paper and read
from the exchange account on testnet and live (``portfolio.exchange_view``); a
testnet strategy reads its candles from the exchange's sandbox where ccxt's
sandbox URLs include the public endpoints (binance, bybit, okx), else from the
live market.

On a stepped market an order decided on the close of candle t fills at the open
of t+1 (``NextOpenPrices``), or at t's close with ``fill_at = "close"``
(``ClosePrices``): one rule for paper runs and backtests.

A stepped clock moves one candle per cycle at the runner's fast pace
(``FixedPaceScheduler``); the wall clock decides once per closed candle
(``CandleCloseScheduler``). Opening a live market loads the exchange's markets
(public endpoints, no key): ``DataUnavailableError`` when it cannot be reached.
Nothing here runs at import time, and ``unsupported`` needs no network, so
pages can import the factory freely.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strategy_agent.clock import Clock, ManualClock, SystemClock
from strategy_agent.data.interfaces import MarketDataSource, MarketRulesProvider
from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.data.symbols import SIMULATED_EXCHANGE, symbol_syntax_problem, validate_symbols
from strategy_agent.errors import ConfigurationError
from strategy_agent.execution.fill_prices import (
    ClosePrices,
    FillPrices,
    NextOpenPrices,
    TickerPrices,
)
from strategy_agent.execution.interfaces import ExecutionGateway
from strategy_agent.execution.paper_trading import PaperExecutionGateway
from strategy_agent.models import UserRequest, interval_ms
from strategy_agent.portfolio.funding import FundingAccrual
from strategy_agent.scheduling import CandleCloseScheduler, FixedPaceScheduler, Scheduler

if TYPE_CHECKING:
    from strategy_agent.cycle_ports import PortfolioSource
    from strategy_agent.data.ccxt_market import CcxtMarketDataSource
    from strategy_agent.data.replay_market import ReplayMarketDataSource
    from strategy_agent.portfolio.ledger import Ledger
    from strategy_agent.trading_history.store import SqliteStore

SIMULATED = SIMULATED_EXCHANGE
MARKETS_CACHE_S = 3600.0  # markets loaded for the form and the CLI are kept this long


@dataclass
class MarketPorts:
    """The market side of a runtime.

    ``stepped``: the clock the runtime moves one candle per cycle (``None`` on
    a live market, whose clock is the wall clock). ``quotes``: the exchange's
    snapshot per cycle (live markets only). ``end_ms``: when a replay's last
    candle closes (``None``: open-ended).
    """

    data: MarketDataSource
    clock: Clock
    rules: MarketRulesProvider
    fill_prices: FillPrices
    stepped: ManualClock | None = None
    quotes: CcxtMarketDataSource | None = None
    end_ms: int | None = None

    @property
    def is_live(self) -> bool:
        return self.stepped is None


# -- what this build can run (no network) ---------------------------------------------------------


def unsupported(request: UserRequest) -> tuple[str, str] | None:
    """``(field, message)`` when this build cannot run ``request``, else ``None``.

    Checked before a strategy is stored (form, CLI) and when it starts. No
    network: symbols of a real exchange are checked for their notation here
    and against its markets by ``symbols_problem``.
    """
    from strategy_agent.decision.builtin_policies import BUILTIN_POLICIES

    if request.llm.is_builtin and request.llm.model_id not in BUILTIN_POLICIES:
        known = ", ".join(sorted(BUILTIN_POLICIES))
        return ("llm.model_id", f"unknown built-in rule {request.llm.model_id!r}; use {known}")
    exchange = request.exchange
    if exchange.exchange_id == SIMULATED:
        if exchange.trading_mode != "paper":
            return (
                "exchange.trading_mode",
                'the simulated market trades on paper only (trading_mode = "paper")',
            )
        problems = validate_symbols(SIMULATED, request.trading.symbols)
        return ("trading.symbols", "; ".join(problems)) if problems else None
    problem = exchange_problem(exchange.exchange_id)
    if problem is not None:
        return ("exchange.exchange_id", problem)
    if request.replay is not None and exchange.trading_mode != "paper":
        return ("exchange.trading_mode", 'a replay trades on paper only (trading_mode = "paper")')
    problems = [p for p in map(symbol_syntax_problem, request.trading.symbols) if p]
    return ("trading.symbols", "; ".join(problems)) if problems else None


def exchange_problem(exchange_id: str) -> str | None:
    """Why ``exchange_id`` is not an exchange ccxt knows (with the closest ids), else None."""
    from strategy_agent.data.ccxt_exchange import create_exchange, exchange_ids

    if exchange_id in exchange_ids():
        return None
    try:
        create_exchange(exchange_id)
    except ConfigurationError as error:
        return str(error)
    return None  # pragma: no cover - create_exchange refuses every unknown id


def symbols_problem(request: UserRequest, markets: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why the request's symbols cannot be traded on its exchange's ``markets``, else None.

    Besides listing and support (``validate_symbols``), a swap strategy needs
    swap markets (``BTC/USDT:USDT``) and a spot or margin one spot markets.
    """
    exchange_id = request.exchange.exchange_id
    symbols = request.trading.symbols
    problems = validate_symbols(exchange_id, symbols, markets)
    if problems:
        return "; ".join(problems)
    swap = request.exchange.market_type == "swap"
    wrong = [s for s in symbols if (markets[s].get("type") == "swap") != swap]
    if not wrong:
        return None
    if swap:
        return (
            f"market type swap trades perpetual swaps, but {', '.join(wrong)} "
            f"{'is a spot market' if len(wrong) == 1 else 'are spot markets'}: write e.g. "
            f"'{wrong[0]}:{wrong[0].split('/')[-1]}', or pick market type spot"
        )
    return (
        f"market type {request.exchange.market_type} trades spot markets, but "
        f"{', '.join(wrong)} {'is a swap' if len(wrong) == 1 else 'are swaps'}: pick market "
        f"type swap, or write the spot symbol '{wrong[0].split(':')[0]}'"
    )


_markets_cache: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}


def load_markets(exchange_id: str, api_url: str | None = None) -> dict[str, Any]:
    """The exchange's markets (ccxt ``load_markets``), kept an hour for the form and the CLI.

    Public endpoints, no key. ``DataUnavailableError`` when the exchange cannot
    be reached, ``ConfigurationError`` for an unknown exchange.
    """
    from strategy_agent.data.ccxt_exchange import RetryPolicy, call_with_retries, create_exchange
    from strategy_agent.errors import DataUnavailableError, TemporaryError

    key = (exchange_id, api_url)
    cached = _markets_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < MARKETS_CACHE_S:
        return cached[1]
    exchange = create_exchange(exchange_id, api_url=api_url)
    try:
        markets = call_with_retries(
            f"{exchange_id} load_markets", exchange.load_markets, policy=RetryPolicy(attempts=2)
        )
    except TemporaryError as error:
        raise DataUnavailableError(
            f"{error}; check the network (or the exchange's status page) and try again"
        ) from error
    _markets_cache[key] = (time.monotonic(), dict(markets))
    return _markets_cache[key][1]


def cached_markets(exchange_id: str, api_url: str | None = None) -> dict[str, Any] | None:
    """Markets ``load_markets`` already holds (no network), else ``None``."""
    cached = _markets_cache.get((exchange_id, api_url))
    return cached[1] if cached is not None else None


# -- the ports -------------------------------------------------------------------------------------


def build_market(
    request: UserRequest,
    *,
    last_cycle_ts: int | None,
    store: SqliteStore | None = None,
    clock: Clock | None = None,
) -> MarketPorts:
    """The market ports of ``request`` (see the module table).

    ``last_cycle_ts``: the last successful cycle's time (a stepped clock resumes
    there). ``store``: where a replay reads downloaded candles. ``clock``
    replaces the wall clock of a live market (tests, demos).
    """
    problem = unsupported(request)
    if problem is not None and problem[0] != "trading.symbols":  # stored symbols stay runnable
        raise ConfigurationError(problem[1])
    trading = request.trading
    step = interval_ms(trading.interval)
    if request.exchange.exchange_id == SIMULATED and request.replay is None:
        stepped = ManualClock(
            last_cycle_ts
            if last_cycle_ts is not None
            else DEFAULT_ORIGIN_MS + trading.lookback * step
        )
        source = SimulatedMarketDataSource(
            symbols=trading.symbols, seed=trading.seed, clock=stepped, origin_ms=DEFAULT_ORIGIN_MS
        )
        prices = stepped_prices(request, source, stepped)
        return MarketPorts(source, stepped, SimulatedMarketRules(), prices, stepped=stepped)
    if request.replay is not None:
        return _replay_market(request, last_cycle_ts, store)
    return _live_market(request, clock or SystemClock())


def _live_market(request: UserRequest, clock: Clock) -> MarketPorts:
    from strategy_agent.data.ccxt_market import CcxtMarketDataSource

    exchange = request.exchange
    sandbox = None
    if exchange.trading_mode == "testnet":  # the testnet's own candles where ccxt serves them
        from strategy_agent.execution.ccxt_account import create_sandbox_data_exchange

        sandbox = create_sandbox_data_exchange(exchange, api_url=exchange.api_url)
    source = CcxtMarketDataSource(
        exchange.exchange_id, clock=clock, api_url=exchange.api_url, exchange=sandbox
    )
    source.check_interval(request.trading.interval)
    problem = symbols_problem(request, source.markets())
    if problem is not None:
        raise ConfigurationError(problem)
    return MarketPorts(source, clock, source.rules(), TickerPrices(source), quotes=source)


def _replay_market(
    request: UserRequest, last_cycle_ts: int | None, store: SqliteStore | None
) -> MarketPorts:
    from strategy_agent.data.replay_market import ReplayMarketDataSource

    replay, trading = request.replay, request.trading
    assert replay is not None
    exchange_id = request.exchange.exchange_id
    step = interval_ms(trading.interval)
    clock = ManualClock(0)
    if replay.source == "csv":
        files = {symbol: replay.csv_files.get(symbol, "") for symbol in trading.symbols}
        missing = [symbol for symbol, path in files.items() if not path]
        if missing:
            raise ConfigurationError(f"replay.csv_files names no file for {', '.join(missing)}")
        source = ReplayMarketDataSource.from_csv(files, trading.interval, clock=clock)
    else:
        if store is None:
            raise ConfigurationError("a replay of stored candles needs the database they are in")
        source = ReplayMarketDataSource.from_store(
            store, exchange_id, trading.symbols, trading.interval, clock=clock
        )
    spans = [source.span(symbol) for symbol in trading.symbols]
    start = replay.start_ms or max(first for first, _ in spans) + (trading.lookback + 1) * step
    clock.set(last_cycle_ts if last_cycle_ts is not None else start - step)
    end_ms = min(last for _, last in spans) + step
    return replay_ports(request, source, clock, end_ms)


def replay_ports(
    request: UserRequest, source: ReplayMarketDataSource, clock: ManualClock, end_ms: int
) -> MarketPorts:
    """Stepped ports on recorded candles: ``source`` read through ``clock`` (which the caller
    set one candle before the first decision), the exchange's rules, the stepped fill rule.

    ``end_ms``: when the last candle to decide on closes. A backtest builds its runs
    here, on the candles its batch loaded once.
    """
    prices = stepped_prices(request, source, clock)
    return MarketPorts(source, clock, _replay_rules(request), prices, stepped=clock, end_ms=end_ms)


def stepped_prices(
    request: UserRequest,
    source: SimulatedMarketDataSource | ReplayMarketDataSource,
    clock: Clock,
) -> FillPrices:
    """The fill rule of a stepped market: the next candle's open, or the close (``fill_at``)."""
    trading = request.trading
    if request.exchange.fill_at == "close":
        return ClosePrices(source, clock, trading.symbols, trading.interval)
    return NextOpenPrices(source, clock, trading.interval)


def _replay_rules(request: UserRequest) -> MarketRulesProvider:
    """The exchange's rules (its markets, loaded once); the simulated rules for ``simulated``."""
    if request.exchange.exchange_id == SIMULATED:
        return SimulatedMarketRules()
    from strategy_agent.data.ccxt_rules import CcxtMarketRules

    markets = load_markets(request.exchange.exchange_id, request.exchange.api_url)
    return CcxtMarketRules.from_markets(request.exchange.exchange_id, markets)


def build_scheduler(
    ports: MarketPorts, request: UserRequest, step_delay_s: float, last_cycle_ts: int | None
) -> Scheduler:
    """The stepped pace (``step_delay_s`` between cycles), or once per closed candle when live."""
    if ports.is_live:
        step = interval_ms(request.trading.interval)
        return CandleCloseScheduler(ports.clock, step, last_cycle_ts=last_cycle_ts)
    return FixedPaceScheduler(step_delay_s)


def build_funding(
    ports: MarketPorts, request: UserRequest, previous_quotes: Callable[[], dict[str, Any]]
) -> FundingAccrual | None:
    """Funding of paper swaps on a live market (the exchange settles it on testnet and live)."""
    exchange = request.exchange
    if ports.quotes is None or exchange.trading_mode != "paper" or exchange.market_type != "swap":
        return None
    return FundingAccrual(previous_quotes())


def build_gateway(
    request: UserRequest,
    ports: MarketPorts,
    ledger: Ledger,
    *,
    store: SqliteStore,
    strategy_id: str,
    live_confirmed: bool = False,
) -> ExecutionGateway:
    """The paper gateway on the market's fill prices, or real orders on testnet and live."""
    exchange = request.exchange
    if exchange.trading_mode == "paper":
        return PaperExecutionGateway(
            ledger,
            ports.fill_prices,
            ports.clock,
            fee_bps=exchange.fee_bps,
            slippage_bps=exchange.slippage_bps,
        )
    from strategy_agent.execution.ccxt_account import account_of, check_symbol_conflicts
    from strategy_agent.execution.ccxt_gateway import CcxtExecutionGateway

    check_symbol_conflicts(
        store,
        exchange.exchange_id,
        account_of(exchange),
        request.trading.symbols,
        strategy_id=strategy_id,
    )
    return CcxtExecutionGateway(
        exchange,
        store=store,
        strategy_id=strategy_id,
        clock=ports.clock,
        live_confirmed=live_confirmed,
        api_url=exchange.api_url,
        position_of=ledger.quantity,
    )


def build_portfolio(
    request: UserRequest, ledger: Ledger, gateway: ExecutionGateway, strategy_id: str
) -> PortfolioSource:
    """The ledger's view on paper; on testnet and live the view read from the exchange
    account, limited to the strategy's symbols (``portfolio.exchange_view``).

    On testnet and live it first reconciles (``gateway.reconcile``): orders a
    crash left open are looked up; their fills reach the ledger with the next cycle.
    """
    from strategy_agent.portfolio.exchange_view import ExchangePortfolio, LedgerPortfolio

    if request.exchange.trading_mode == "paper":
        return LedgerPortfolio(ledger)
    from strategy_agent.execution.ccxt_gateway import CcxtExecutionGateway

    assert isinstance(gateway, CcxtExecutionGateway)
    portfolio = ExchangePortfolio(
        gateway,
        ledger,
        symbols=list(request.trading.symbols),
        strategy_id=strategy_id,
        swap=request.exchange.market_type == "swap",
    )
    portfolio.on_open()  # a restart: settle the orders a crash left open, before any cycle
    return portfolio


def csv_paths(request: UserRequest) -> list[Path]:
    """The CSV files a replay reads (to check they exist before anything is stored)."""
    if request.replay is None or request.replay.source != "csv":
        return []
    return [Path(path) for path in request.replay.csv_files.values()]
