"""Market rules of a real exchange, read from ccxt's loaded markets.

``CcxtMarketRules`` serves the guardrails' ``MarketRules`` for spot and linear
swap markets: lot size and minimum amount in the market's order unit (base
currency on spot, contracts on swaps), minimum cost in the quote currency,
contract size, price tick. ccxt describes precision in one of two modes:
TICK_SIZE (the step itself, ``0.001``) or DECIMAL_PLACES (a count, ``3``);
both become a step here, and rounding goes through ccxt's own
``amount_to_precision`` so an order is what the exchange accepts. Inverse
contracts (settled in the base coin), dated futures and options are refused
with the reason: the ledger counts money in the quote currency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import ccxt

from strategy_agent.data.ccxt_exchange import create_exchange
from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.data.market_rules import PrecisionMode, rules_from_ccxt_market
from strategy_agent.data.symbols import (
    MarketKind,
    market_kind,
    symbol_problem,
    unsupported_reason,
)
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import MarketRules

_PRECISION_MODES: dict[int, PrecisionMode] = {
    ccxt.TICK_SIZE: "tick_size",
    ccxt.DECIMAL_PLACES: "decimal_places",
}


class CcxtMarketRules(MarketRulesProvider):
    """``MarketRules`` from a ccxt exchange whose markets are loaded (or set offline).

    The exchange object is kept so rounding uses ccxt's own helpers with the
    exchange's precision mode. A symbol the exchange does not list, or a market
    that is not supported, raises ``ConfigurationError`` with the reason.
    """

    def __init__(self, exchange: ccxt.Exchange) -> None:
        if not exchange.markets:
            raise ConfigurationError(
                f"{exchange.id}: markets are not loaded; call load_markets() first"
            )
        mode = _PRECISION_MODES.get(exchange.precisionMode)
        if mode is None:
            raise ConfigurationError(
                f"{exchange.id} describes precision in significant digits (ccxt precisionMode "
                f"{exchange.precisionMode}); only TICK_SIZE and DECIMAL_PLACES are supported"
            )
        self._exchange = exchange
        self._mode: PrecisionMode = mode
        self._cache: dict[str, MarketRules] = {}

    @classmethod
    def from_markets(
        cls,
        exchange_id: str,
        markets: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
        *,
        precision_mode: int | None = None,
    ) -> CcxtMarketRules:
        """Rules from recorded markets (``load_markets()`` output), without any network.

        ``precision_mode`` is ccxt's constant (``ccxt.TICK_SIZE``,
        ``ccxt.DECIMAL_PLACES``) when the recording used another mode than the
        exchange's default today.
        """
        config = {} if precision_mode is None else {"precisionMode": precision_mode}
        exchange = create_exchange(exchange_id, config=config)
        listed = list(markets.values()) if isinstance(markets, Mapping) else list(markets)
        exchange.set_markets(listed)
        return cls(exchange)

    @property
    def exchange_id(self) -> str:
        return str(self._exchange.id)

    @property
    def precision_mode(self) -> PrecisionMode:
        return self._mode

    def symbols(self) -> list[str]:
        """Every supported (spot or linear swap) symbol, sorted."""
        markets = self._exchange.markets
        return sorted(s for s, m in markets.items() if unsupported_reason(m) is None)

    def market(self, symbol: str) -> Mapping[str, Any]:
        """ccxt's market dict of ``symbol``; ``ConfigurationError`` when it is not listed."""
        market = self._exchange.markets.get(symbol)
        if market is None:
            problem = symbol_problem(symbol, self.exchange_id, self._exchange.markets)
            raise ConfigurationError(problem or f"{symbol!r} is not listed on {self.exchange_id}")
        return market  # type: ignore[no-any-return]

    def kind(self, symbol: str) -> MarketKind:
        """``"spot"`` or ``"swap"``."""
        return market_kind(self.market(symbol))

    def rules_for(self, symbol: str) -> MarketRules:
        """The guardrails' rules for ``symbol`` (spot or linear swap only)."""
        cached = self._cache.get(symbol)
        if cached is None:
            market = self.market(symbol)
            market_kind(market)  # refuses inverse, futures, options with the reason
            cached = rules_from_ccxt_market(market, self._mode)
            self._cache[symbol] = cached
        return cached

    def amount_to_precision(self, symbol: str, quantity: float) -> float:
        """``quantity`` truncated to the market's amount precision by ccxt (0.0 below one step).

        Sign kept. Units: the market's order unit (base or contracts).
        """
        if not math.isfinite(quantity):
            raise ValueError(f"quantity must be finite, got {quantity!r}")
        self.rules_for(symbol)  # unsupported markets are refused before rounding
        try:
            rounded = float(self._exchange.amount_to_precision(symbol, abs(quantity)))
        except ccxt.InvalidOrder:  # ccxt refuses an amount below one step
            return 0.0
        return math.copysign(rounded, quantity) if rounded else 0.0

    def price_to_precision(self, symbol: str, price: float) -> float:
        """``price`` rounded to the market's price precision by ccxt."""
        self.rules_for(symbol)
        return float(self._exchange.price_to_precision(symbol, price))

    def order_problem(self, symbol: str, quantity: float, price: float) -> str | None:
        """Why an order of ``quantity`` (order unit, unsigned) at ``price`` would be refused.

        Checks the lot size, the minimum and maximum amount and the minimum cost
        (``quantity x contract_size x price`` in the quote currency), which ccxt
        itself does not enforce. ``None`` when the exchange should accept it.
        """
        rules = self.rules_for(symbol)
        quantity = abs(quantity)
        quote = self.market(symbol).get("quote", "quote")
        if self.amount_to_precision(symbol, quantity) != quantity:
            return f"{symbol}: amount {quantity:g} is not a multiple of the lot size {rules.qty_step:g}"
        if quantity < rules.min_qty:
            return f"{symbol}: amount {quantity:g} is below the minimum amount {rules.min_qty:g}"
        if rules.max_qty is not None and quantity > rules.max_qty:
            return f"{symbol}: amount {quantity:g} is above the maximum amount {rules.max_qty:g}"
        cost = quantity * (price * rules.contract_size)
        if cost < rules.min_notional:
            return (
                f"{symbol}: order cost {cost:g} {quote} is below the minimum cost "
                f"{rules.min_notional:g} {quote}"
            )
        return None
