"""The strategy's part of a real exchange account: positions in its own symbols, nothing else.

An account may hold positions and coins that other strategies or the trader
own; this view never shows them, so nothing built on it can close them. For a
spot symbol the position is the account's total balance of its base currency
(the exchange cannot tell who bought it: the ledger, which only sells what the
strategy bought, stays the owner of the strategy's quantity); for a swap it is
the exchange's position (signed contracts, entry and mark price, unrealized
P&L). ``cash`` is the free balance of the symbols' quote (settle) currency,
shared by everything on the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt

from strategy_agent.data.ccxt_exchange import RetryPolicy, call_with_retries
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import InstrumentRef, PortfolioView, PositionSnapshot


def fetch_portfolio(
    exchange: ccxt.Exchange,
    symbols: list[str],
    *,
    strategy_id: str,
    now_ms: int,
    retry: RetryPolicy,
) -> PortfolioView:
    """Positions in ``symbols`` only (spot balances, swap positions) and the free quote cash.

    ``exchange`` has its markets loaded and its keys set. Quantities are in the
    order unit (base on spot, contracts on swaps), prices and cash in the quote
    currency. Raises ``ConfigurationError`` for a symbol the exchange does not list.
    """
    markets = {symbol: _market(exchange, symbol) for symbol in symbols}
    spot = [s for s, m in markets.items() if m.get("spot")]
    swaps = [s for s, m in markets.items() if m.get("swap")]
    positions: dict[str, PositionSnapshot] = {}
    cash = 0.0
    if spot:
        balance = _call(exchange, "fetch_balance", retry, exchange.fetch_balance)
        positions |= _spot_positions(exchange, spot, markets, balance)
        cash += _free(balance, {markets[s]["quote"] for s in spot})
    if swaps:
        raw = _call(exchange, "fetch_positions", retry, exchange.fetch_positions, swaps)
        positions |= _swap_positions(exchange, swaps, markets, raw)
        balance = _call(
            exchange, "fetch_balance swap", retry, exchange.fetch_balance, {"type": "swap"}
        )
        cash += _free(balance, {markets[s].get("settle") or markets[s]["quote"] for s in swaps})
    return PortfolioView(
        strategy_id=strategy_id,
        ts=now_ms,
        cash=cash,
        available_cash=cash,
        positions=positions,
    )


def _market(exchange: ccxt.Exchange, symbol: str) -> Mapping[str, Any]:
    market = (exchange.markets or {}).get(symbol)
    if market is None:
        raise ConfigurationError(f"{symbol!r} is not listed on {exchange.id}")
    return market  # type: ignore[no-any-return]


def _call(exchange: ccxt.Exchange, what: str, retry: RetryPolicy, func: Any, *args: Any) -> Any:
    return call_with_retries(f"{exchange.id} {what}", func, *args, policy=retry)


def _instrument(exchange: ccxt.Exchange, market: Mapping[str, Any]) -> InstrumentRef:
    return InstrumentRef(
        symbol=market["symbol"], exchange_id=exchange.id, quote_ccy=market["quote"]
    )


def _spot_positions(
    exchange: ccxt.Exchange,
    symbols: list[str],
    markets: Mapping[str, Mapping[str, Any]],
    balance: Mapping[str, Any],
) -> dict[str, PositionSnapshot]:
    totals = balance.get("total") or {}
    found = {}
    for symbol in symbols:
        quantity = float(totals.get(markets[symbol]["base"]) or 0.0)
        if quantity > 0:
            found[symbol] = PositionSnapshot(
                instrument=_instrument(exchange, markets[symbol]), quantity=quantity
            )
    return found


def _swap_positions(
    exchange: ccxt.Exchange,
    symbols: list[str],
    markets: Mapping[str, Mapping[str, Any]],
    raw: list[Mapping[str, Any]],
) -> dict[str, PositionSnapshot]:
    found = {}
    for item in raw:
        symbol = item.get("symbol")
        if symbol not in symbols:  # another strategy's or the trader's: never shown
            continue
        contracts = float(item.get("contracts") or 0.0)
        if contracts == 0:
            continue
        short = item.get("side") == "short"
        found[symbol] = PositionSnapshot(
            instrument=_instrument(exchange, markets[symbol]),
            quantity=-contracts if short else contracts,
            avg_price=_positive(item.get("entryPrice")),
            mark_price=_positive(item.get("markPrice")),
            unrealized_pnl=_float(item.get("unrealizedPnl")),
            notional=_float(item.get("notional")),
            leverage=_positive(item.get("leverage")),
            trade_type="short" if short else "long",
        )
    return found


def _free(balance: Mapping[str, Any], currencies: set[str]) -> float:
    free = balance.get("free") or {}
    return sum(float(free.get(c) or 0.0) for c in currencies)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _positive(value: Any) -> float | None:
    number = _float(value)
    return number if number is not None and number > 0 else None
