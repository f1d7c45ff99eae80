"""The gateway's reads of one exchange account: markets, order look-ups, trades, tickers.

Every call here is safe to repeat (nothing is placed), so it goes through
``call_with_retries``. Errors come out as ``strategy_agent.errors`` with the
key, secret and passphrase scrubbed from their text; a refused key becomes an
``AuthenticationError`` that names the variables to check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import ccxt

from strategy_agent.data.ccxt_exchange import RetryPolicy, call_with_retries
from strategy_agent.data.ccxt_rules import CcxtMarketRules
from strategy_agent.errors import (
    AuthenticationError,
    ExchangeKeyRefused,
    StrategyAgentError,
    TemporaryError,
)
from strategy_agent.execution.ccxt_account import ExchangeKeys, key_env_names
from strategy_agent.models import ExchangeConfig
from strategy_agent.secrets import redact

logger = logging.getLogger(__name__)

ABSENT: Literal["absent"] = "absent"  # the exchange says it has no order with this client id
UNKNOWN: Literal["unknown"] = "unknown"  # the exchange could not be asked
Lookup = dict[str, Any] | Literal["absent", "unknown"]
OPEN_POLLS = 3  # looks at a market/IOC order still open before canceling its rest


class ExchangeSession:
    """One ccxt instance with its keys, retry policy and loaded market rules."""

    def __init__(
        self,
        exchange: ccxt.Exchange,
        config: ExchangeConfig,
        keys: ExchangeKeys | None,
        retry: RetryPolicy,
    ) -> None:
        self.exchange = exchange
        self.config = config
        self.retry = retry
        self._keys = keys
        self._rules: CcxtMarketRules | None = None

    def rules(self) -> CcxtMarketRules:
        """The market rules; the markets are loaded on first use."""
        if self._rules is None:
            self.call("load_markets", self.exchange.load_markets)
            self._rules = CcxtMarketRules(self.exchange)
        return self._rules

    def call(self, what: str, func: Callable[..., Any], *args: Any) -> Any:
        """A repeatable call with retries (``what`` names it in messages)."""
        return self.guard(
            lambda: call_with_retries(f"{self.exchange.id} {what}", func, *args, policy=self.retry)
        )

    def guard(self, func: Callable[[], Any]) -> Any:
        """``func()`` with its errors scrubbed of keys; a refused key names what to check."""
        try:
            return func()
        except AuthenticationError as error:
            raise self.auth_error(error) from None
        except StrategyAgentError as error:
            raise type(error)(self.safe(str(error))) from None

    def auth_error(self, error: Exception) -> ExchangeKeyRefused:
        """The error to raise for a refused key: which variables to check, no value."""
        key_env, secret_env = key_env_names(self.config)
        where = (
            self._keys.where()
            if self._keys
            else f"the API key in {key_env} and its secret in {secret_env}"
        )
        mode = self.config.trading_mode
        return ExchangeKeyRefused(
            f"{self.exchange.id} refused the key ({self.safe(short(error))}): check {where}; "
            f"it must be a {mode} key with trading permission"
            f"{' on the testnet' if mode == 'testnet' else ''}; the strategy is paused until "
            f"it is fixed"
        )

    def safe(self, text: str) -> str:
        """``text`` without the key, the secret or the passphrase."""
        keys = [getattr(self.exchange, name, None) for name in ("apiKey", "secret", "password")]
        return redact(text, [k for k in keys if isinstance(k, str)])

    def lookup(self, client_id: str, symbol: str) -> Lookup:
        """The exchange's order with ``client_id``, ``ABSENT``, or ``UNKNOWN`` when unreachable.

        Uses ``fetch_order`` by client id, else the open and closed orders of
        ``symbol``. Only an answer from the exchange counts as ``ABSENT``.
        """
        self.rules()

        def fetch() -> Lookup:
            if self.exchange.has.get("fetchOrder"):
                try:
                    order = self.exchange.fetch_order(None, symbol, {"clientOrderId": client_id})
                except ccxt.OrderNotFound:
                    return ABSENT
                return order if order.get("clientOrderId") in (None, client_id) else ABSENT
            listed = self.exchange.fetch_open_orders(symbol)
            listed += self.exchange.fetch_closed_orders(symbol)
            matches = [o for o in listed if o.get("clientOrderId") == client_id]
            return matches[-1] if matches else ABSENT

        try:
            found: Lookup = self.call(f"look up order {client_id}", fetch)
        except TemporaryError as error:
            logger.warning("order %s: look-up failed: %s", client_id, self.safe(str(error)))
            return UNKNOWN
        return found

    def close_out(self, order_id: str, symbol: str, order: dict[str, Any]) -> dict[str, Any]:
        """A market/IOC order still open: poll it, then cancel its rest so the fill is final."""
        for attempt in range(OPEN_POLLS):
            self.retry.sleep(self.retry.delay_s(attempt, False))
            order = self.call("fetch_order", self.exchange.fetch_order, order_id, symbol)
            if order.get("status") != "open":
                return order
        try:
            self.call("cancel_order", self.exchange.cancel_order, order_id, symbol)
        except TemporaryError:
            return order  # stays acknowledged; reconciled later
        except AuthenticationError:
            raise
        except StrategyAgentError:
            pass  # filled or gone meanwhile: the fetch below tells
        fetched: dict[str, Any] = self.call(
            "fetch_order", self.exchange.fetch_order, order_id, symbol
        )
        return fetched

    def order_trades(self, order_id: str, symbol: str, since_ms: int) -> list[dict[str, Any]]:
        """The order's trades (for the fee when the order does not carry it); ``[]`` if unknown."""
        try:
            if self.exchange.has.get("fetchOrderTrades"):
                try:
                    found: list[dict[str, Any]] = self.call(
                        "fetch_order_trades", self.exchange.fetch_order_trades, order_id, symbol
                    )
                    return found
                except TemporaryError:
                    raise
                except AuthenticationError:
                    raise
                except StrategyAgentError:
                    pass  # binance: spot only; fetch_my_trades below
            trades = self.call("fetch_my_trades", self.exchange.fetch_my_trades, symbol, since_ms)
        except TemporaryError:
            return []
        return [t for t in trades if str(t.get("order")) == order_id]

    def reference_price(self, symbol: str, side: str) -> float | None:
        """Ask for a buy, bid for a sell, else last (quote currency); ``None`` if unknown."""
        try:
            ticker = self.call(f"fetch_ticker {symbol}", self.exchange.fetch_ticker, symbol)
        except TemporaryError:
            return None
        for key in ("ask" if side == "buy" else "bid", "last", "close"):
            value = ticker.get(key)
            if value:
                return float(value)
        return None


def short(error: Exception, limit: int = 300) -> str:
    """The error's text on one line, at most ``limit`` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
