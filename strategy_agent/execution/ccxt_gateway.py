"""Orders on a real exchange (testnet or live) through ccxt, each recorded as it happens.

``CcxtExecutionGateway`` implements the same ``ExecutionGateway`` as paper
trading. For every instruction:

1. its client order id is derived from the instruction id; the ``orders`` table
   and, for an order not known to be final, the exchange are asked first, so a
   retried instruction can never open a second order;
2. the order is planned (``ccxt_orders.plan_order``: lot size, reduce-only,
   dust, marketable limit) and recorded ``sent`` *before* the HTTP call;
3. the answer moves the record: ``acknowledged``, ``filled``,
   ``partially_filled``, ``rejected``, ``canceled``; a market or IOC order still
   open after a short poll is canceled, so what filled is final.

Errors at the boundary: insufficient funds, an invalid order and any other
refusal become a ``rejected`` result with the reason; a network error, a rate
limit or an unreadable answer leaves the order ``unknown``: it is looked up by
client id and re-sent only when the exchange says it does not have it; an
authentication error raises ``GatewayAuthenticationError`` (an
``AuthenticationError``) that names the key variables to check and carries the
results of the instructions done before it. No key or secret reaches a
message, a log line or the database.

After a crash, ``reconcile()`` looks up every order the records leave open and
returns the fills the ledger has not applied (each instruction's fill is
unique in the ``fills`` table, so applying one twice is refused there); an
instruction it handed over is answered "already executed" if sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import ccxt

from strategy_agent.clock import Clock
from strategy_agent.data.ccxt_exchange import RetryPolicy
from strategy_agent.errors import AuthenticationError, ExchangeKeyRefused, StrategyAgentError
from strategy_agent.execution.ccxt_account import (
    DEFAULT_SECRETS_PATH,
    ExchangeKeys,
    create_trading_exchange,
    guard_logs,
    require_live_confirmation,
    resolve_exchange_keys,
)
from strategy_agent.execution.ccxt_orders import (
    OrderPlan,
    Refusal,
    client_order_id,
    close_dust,
    is_reduction,
    outcome_of,
    plan_order,
)
from strategy_agent.execution.ccxt_portfolio import fetch_portfolio
from strategy_agent.execution.ccxt_records import (
    ALREADY_APPLIED,
    NEVER_ARRIVED,
    STILL_UNKNOWN,
    error_result,
    moved_by,
    new_record,
    result_of,
)
from strategy_agent.execution.ccxt_session import ABSENT, UNKNOWN, ExchangeSession, short
from strategy_agent.execution.interfaces import ExecutionGateway
from strategy_agent.models import ExchangeConfig, ExecutionResult, PortfolioView, TradeInstruction
from strategy_agent.trading_history import orders as order_book
from strategy_agent.trading_history.connection import StoreConnection
from strategy_agent.trading_history.orders import OrderRecord

logger = logging.getLogger(__name__)

DEFAULT_MAX_SLIPPAGE_BPS = 50.0


class GatewayAuthenticationError(ExchangeKeyRefused):
    """The exchange refused the key; ``results`` are those of the instructions done before."""

    def __init__(self, message: str, results: list[ExecutionResult]) -> None:
        super().__init__(message)
        self.results = results


class CcxtExecutionGateway(ExecutionGateway):
    """Real orders for one strategy on one exchange account (see the module doc).

    ``exchange`` may be given ready (tests); otherwise one is built from
    ``config`` with keys from ``resolve_exchange_keys`` (``session_keys`` is the
    pair typed in the app). ``live_confirmed`` must be True for
    ``trading_mode="live"``. ``position_of(symbol)`` is the ledger's signed
    position (order unit), used to tell a reduction when the instruction's meta
    has no ``target_qty``. ``max_slippage_bps`` prices the marketable limit of
    an exchange without market orders, unless the instruction sets its own.
    ``api_url`` points ccxt at a test server.
    """

    def __init__(
        self,
        config: ExchangeConfig,
        *,
        store: StoreConnection,
        strategy_id: str,
        clock: Clock,
        live_confirmed: bool = False,
        exchange: ccxt.Exchange | None = None,
        session_keys: tuple[str, str] | None = None,
        secrets_path: str = DEFAULT_SECRETS_PATH,
        api_url: str | None = None,
        ccxt_config: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        max_slippage_bps: float = DEFAULT_MAX_SLIPPAGE_BPS,
        position_of: Callable[[str], float] | None = None,
    ) -> None:
        require_live_confirmation(config, live_confirmed)
        keys: ExchangeKeys | None = None
        if exchange is None:
            keys = resolve_exchange_keys(config, session_keys, secrets_path)
            exchange = create_trading_exchange(
                config, keys, api_url=api_url, ccxt_config=ccxt_config
            )
        guard_logs(getattr(exchange, name, None) for name in ("apiKey", "secret", "password"))
        self.config = config
        self.exchange = exchange
        self._session = ExchangeSession(exchange, config, keys, retry or RetryPolicy())
        self._retry = self._session.retry
        self._store = store
        self._strategy_id = strategy_id
        self._clock = clock
        self._max_slippage_bps = max_slippage_bps
        self._position_of = position_of
        # instructions whose fill ``reconcile`` handed over (applied, maybe not written yet)
        self._handed_over: set[str] = set()

    @property
    def strategy_id(self) -> str:
        return self._strategy_id

    # -- the port ---------------------------------------------------------------------------------

    def execute(self, instructions: list[TradeInstruction]) -> list[ExecutionResult]:
        """One result per instruction, in order; raises only ``GatewayAuthenticationError``.

        An order that fails unexpectedly is an ``error`` result; its record
        stays open, so ``reconcile`` settles it from the exchange.
        """
        results: list[ExecutionResult] = []
        for instruction in instructions:
            try:
                result = self._execute_one(instruction)
            except AuthenticationError as error:
                raise GatewayAuthenticationError(str(error), results) from None
            except StrategyAgentError as error:  # an unreachable exchange fails this order only
                result = error_result(instruction, self._session.safe(str(error)), self._now())
            except Exception as error:  # one broken order must not lose the batch's answers
                reason = self._session.safe(f"{type(error).__name__}: {error}")
                logger.error("order of %s failed: %s", instruction.instruction_id, reason)
                result = error_result(instruction, reason, self._now())
            results.append(result)
        return results

    def reconcile(self) -> list[ExecutionResult]:
        """Settle every recorded order left open, then return the fills the ledger lacks.

        Each order in ``sent``, ``unknown`` or ``acknowledged`` is looked up on
        the exchange by client id and recorded as what really happened (never
        re-sent); one the exchange does not have is recorded ``rejected``. The
        returned results are the filled orders whose instruction has no row in
        ``fills``: apply them to the ledger and write them once. Call it before
        a cycle (on restart), never during one.
        """
        pending = order_book.orders_of(self._store, self._strategy_id, order_book.PENDING_STATUSES)
        for record in pending:
            found = self._session.lookup(record.client_order_id, record.symbol)
            if isinstance(found, dict):
                self._settle(record, found)
            elif found == ABSENT:
                self._save(record.moved("rejected", self._now(), reason=NEVER_ARRIVED))
            else:
                logger.warning("order %s: still unknown after a look-up", record.client_order_id)
        unapplied = order_book.unapplied_fills(self._store, self._strategy_id)
        self._handed_over.update(record.instruction_id for record in unapplied)
        return [result_of(record) for record in unapplied]

    def has_orders(self, compose_id: str) -> bool:
        """True when an order of the cycle ``compose_id`` is recorded (an interrupted attempt)."""
        return order_book.has_orders_of(self._store, self._strategy_id, compose_id)

    def close_dust(self, symbol: str, quantity: float, price: float | None) -> str | None:
        """Why a whole close of ``quantity`` (signed, order unit) of ``symbol`` at ``price``
        (quote) cannot be sent (below the exchange's minimum order size), else ``None``."""
        rules = self._session.rules()
        try:
            swap = rules.kind(symbol) == "swap"
        except StrategyAgentError:
            return None
        refusal = close_dust(rules, symbol, quantity, price, swap=swap)
        return refusal.reason if refusal is not None else None

    def fetch_portfolio(self, symbols: list[str]) -> PortfolioView:
        """The account's positions in ``symbols`` only (see ``ccxt_portfolio.fetch_portfolio``)."""
        self._session.rules()
        view: PortfolioView = self._session.guard(
            lambda: fetch_portfolio(
                self.exchange,
                symbols,
                strategy_id=self._strategy_id,
                now_ms=self._now(),
                retry=self._retry,
            )
        )
        return view

    # -- one instruction --------------------------------------------------------------------------

    def _execute_one(self, instruction: TradeInstruction) -> ExecutionResult:
        client_id = client_order_id(self.exchange.id, instruction.instruction_id)
        record = order_book.get_order(self._store, client_id)
        if record is not None:
            known = self._known(record)
            if known is not None:
                return known
        planned = self._plan(instruction)
        if isinstance(planned, Refusal):
            return self._refuse(instruction, client_id, record, planned)
        if record is None:
            record = self._new_record(instruction, client_id, planned)
            order_book.insert_order(self._store, record)
        else:
            record = self._save(record.moved("sent", self._now(), reason=None))
        return self._send(record, planned)

    def _known(self, record: OrderRecord) -> ExecutionResult | None:
        """The result of an instruction already recorded, or ``None`` to send it (again)."""
        if record.is_final:
            applied = record.instruction_id in self._handed_over or order_book.fill_applied(
                self._store, record.strategy_id, record.instruction_id
            )
            if record.filled_qty > 0 and applied:
                return result_of(record, status="rejected", reason=ALREADY_APPLIED)
            return result_of(record)
        found = self._session.lookup(record.client_order_id, record.symbol)
        if isinstance(found, dict):
            return self._settle(record, found)
        if found == ABSENT:
            return None
        return result_of(record, status="error", reason=STILL_UNKNOWN)

    def _send(self, record: OrderRecord, plan: OrderPlan) -> ExecutionResult:
        """Place the order; after an unanswered try, look it up before any new try."""
        for attempt in range(self._retry.attempts):
            try:
                order = self.exchange.create_order(
                    plan.symbol,
                    plan.order_type,
                    plan.side,
                    plan.amount,
                    plan.price,
                    dict(plan.params),
                )
            except ccxt.OperationFailed as error:
                # network, time-out, rate limit, unreadable answer: it may or may not exist
                reason = self._session.safe(short(error))
                record = self._save(record.moved("unknown", self._now(), reason=reason))
                self._retry.sleep(self._retry.delay_s(attempt, _is_rate_limit(error)))
                found = self._session.lookup(record.client_order_id, record.symbol)
                if isinstance(found, dict):
                    return self._settle(record, found, plan.note)
                if found == UNKNOWN:
                    break  # never re-send what we cannot rule out: left unknown, looked up later
                record = self._save(record.moved("sent", self._now()))
                continue
            except ccxt.DuplicateOrderId:
                found = self._session.lookup(record.client_order_id, record.symbol)
                if isinstance(found, dict):
                    return self._settle(record, found, plan.note)
                break
            except ccxt.AuthenticationError as error:
                self._save(record.moved("rejected", self._now(), reason="authentication failed"))
                raise self._session.auth_error(error) from None
            except ccxt.BaseError as error:  # insufficient funds, invalid order, bad request...
                return self._rejected(record, error)
            logger.info(
                "order %s placed: %s %s %s",
                record.client_order_id,
                plan.side,
                plan.amount,
                plan.symbol,
            )
            return self._settle(record, order, plan.note)
        record = self._save(record.moved("unknown", self._now(), reason=STILL_UNKNOWN))
        return result_of(record, status="error")

    def _rejected(self, record: OrderRecord, error: Exception) -> ExecutionResult:
        reason = f"{_refusal_kind(error)}: {self._session.safe(short(error))}"
        self._save(record.moved("rejected", self._now(), reason=reason))
        logger.info("order %s rejected by the exchange: %s", record.client_order_id, reason)
        return result_of(record, status="rejected", reason=reason)

    def _settle(
        self, record: OrderRecord, order: dict[str, Any], note: str | None = None
    ) -> ExecutionResult:
        """Record what ``order`` says (after a poll and a cancel if it is still open)."""
        market = self.exchange.market(record.symbol)
        outcome = outcome_of(order, market)
        if outcome.status == "acknowledged" and outcome.exchange_order_id is not None:
            order = self._session.close_out(outcome.exchange_order_id, record.symbol, order)
            outcome = outcome_of(order, market)
        if outcome.filled_qty > 0 and outcome.fee is None and outcome.exchange_order_id:
            since = record.created_ts - 60_000
            trades = self._session.order_trades(outcome.exchange_order_id, record.symbol, since)
            outcome = outcome_of(order, market, trades) if trades else outcome
        record = self._save(moved_by(record, outcome, self._now(), note))
        logger.info(
            "order %s %s: %g of %g",
            record.client_order_id,
            record.status,
            record.filled_qty,
            record.qty,
        )
        return result_of(record)

    # -- planning ----------------------------------------------------------------------------------

    def _plan(self, instruction: TradeInstruction) -> OrderPlan | Refusal:
        rules = self._session.rules()
        symbol = instruction.instrument.symbol
        try:
            swap = rules.kind(symbol) == "swap"
        except StrategyAgentError as error:
            return Refusal(str(error))
        position = self._position_of(symbol) if self._position_of else None
        reduction = is_reduction(instruction, position)
        market_orders = bool(self.exchange.has.get("createMarketOrder", True))
        needs_price = reduction or (not market_orders and instruction.price_mode == "market")
        slippage = instruction.max_slippage_bps
        return plan_order(
            instruction,
            client_order_id(self.exchange.id, instruction.instruction_id),
            rules,
            swap=swap,
            reduction=reduction,
            price=self._session.reference_price(symbol, instruction.side) if needs_price else None,
            market_orders=market_orders,
            max_slippage_bps=self._max_slippage_bps if slippage is None else slippage,
        )

    def _refuse(
        self,
        instruction: TradeInstruction,
        client_id: str,
        record: OrderRecord | None,
        refusal: Refusal,
    ) -> ExecutionResult:
        """Record an instruction that is not sent (dust, below a lot) as ``rejected``."""
        now = self._now()
        if record is None:
            record = self._new_record(instruction, client_id, None)
            record = record.moved("rejected", now, reason=refusal.reason, dust=refusal.dust)
            order_book.insert_order(self._store, record)
        else:
            rejected = record.moved("rejected", now, reason=refusal.reason, dust=refusal.dust)
            record = self._save(rejected)
        return result_of(record, status="rejected", reason=refusal.reason)

    def _new_record(
        self, instruction: TradeInstruction, client_id: str, plan: OrderPlan | None
    ) -> OrderRecord:
        return new_record(
            instruction,
            client_id,
            plan,
            strategy_id=self._strategy_id,
            exchange_id=str(self.exchange.id),
            now_ms=self._now(),
        )

    def _save(self, record: OrderRecord) -> OrderRecord:
        order_book.update_order(self._store, record)
        return record

    def _now(self) -> int:
        return self._clock.now_ms()


def _refusal_kind(error: Exception) -> str:
    if isinstance(error, ccxt.InsufficientFunds):
        return "insufficient funds"
    if isinstance(error, ccxt.InvalidOrder):
        return "invalid order"
    return "refused by the exchange"


def _is_rate_limit(error: Exception) -> bool:
    return isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
