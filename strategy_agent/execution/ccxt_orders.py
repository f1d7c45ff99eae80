"""What goes into a real order and what comes out of it.

- ``client_order_id``: one deterministic id per instruction, within the
  exchange's length and character limits, so the same instruction always
  looks up (and can only ever be) the same order.
- ``plan_order``: the order for an instruction: amount on the lot size, market
  order or a marketable IOC limit at ``max_slippage_bps`` where the exchange has
  no market orders, ``reduceOnly`` on swap reductions, and the dust rule: a
  close below the exchange's minimum is sent reduce-only where the exchange
  allows it (a swap below the minimum *cost*), otherwise refused as dust.
- ``outcome_of``: ccxt's order (and trades) read back as our status, filled
  quantity, average price and fee, the fee converted to the quote currency when
  it was paid in the base (``fee x average price``) and kept as reported, with
  a note, when paid in a third currency (BNB...).

Quantities are in the market's order unit (base on spot, contracts on swaps);
prices and ``fee_quote`` in the quote currency.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from strategy_agent.data.ccxt_rules import CcxtMarketRules
from strategy_agent.models import Side, TradeInstruction
from strategy_agent.trading_history.orders import OrderStatus

_QTY_TOLERANCE = 1e-9
# exchange id -> (prefix, maximum length) of a client order id; a hex digest fits every charset
_CLIENT_ID_LIMITS: dict[str, tuple[str, int]] = {
    "binance": ("sa", 36),  # newClientOrderId: up to 36 of [.A-Z:/a-z0-9_-]
    "binanceusdm": ("sa", 36),
    "binancecoinm": ("sa", 36),
    "bybit": ("sa", 36),  # orderLinkId: up to 36 of [A-Za-z0-9_-]
    "okx": ("sa", 32),  # clOrdId: up to 32 letters and digits
    "gate": ("t-", 30),  # text: "t-" then up to 28
    "kucoin": ("sa", 40),
    "bitget": ("sa", 50),
}
_DEFAULT_CLIENT_ID = ("sa", 32)


def client_order_id(exchange_id: str, instruction_id: str) -> str:
    """The client order id of ``instruction_id`` on ``exchange_id``: a prefix and a SHA-256 hex.

    Deterministic (a retried instruction gets the same id), letters and
    digits only after the prefix, within the exchange's maximum length.
    """
    prefix, limit = _CLIENT_ID_LIMITS.get(exchange_id, _DEFAULT_CLIENT_ID)
    digest = hashlib.sha256(instruction_id.encode()).hexdigest()
    return (prefix + digest)[:limit]


@dataclass(frozen=True)
class OrderPlan:
    """The order to send for one instruction (amount in the order unit, price in quote)."""

    symbol: str
    side: Side
    amount: float
    order_type: Literal["market", "limit"]
    price: float | None
    reduce_only: bool
    params: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why an instruction is not sent; ``dust`` marks a close below the exchange's minimum."""

    reason: str
    dust: bool = False


def is_reduction(instruction: TradeInstruction, position: float | None) -> bool:
    """True when the order only shrinks the position (never opens or flips it).

    The position before the order comes from the instruction's
    ``meta["target_qty"]`` (the signed target after it) when present, else from
    ``position`` (signed, order unit); without either it is not a reduction.
    """
    quantity = instruction.quantity
    signed = quantity if instruction.side == "buy" else -quantity
    target = (instruction.meta or {}).get("target_qty")
    current = float(target) - signed if target is not None else position
    if current is None or current == 0:
        return False
    return (signed > 0) != (current > 0) and quantity <= abs(current) * (1 + _QTY_TOLERANCE)


def plan_order(
    instruction: TradeInstruction,
    client_id: str,
    rules: CcxtMarketRules,
    *,
    swap: bool,
    reduction: bool,
    price: float | None,
    market_orders: bool,
    max_slippage_bps: float,
) -> OrderPlan | Refusal:
    """The order for ``instruction``, or why it is not sent (see the module doc).

    ``price`` is the reference price (ask for a buy, bid for a sell, else last;
    quote currency) or ``None`` when not fetched; it is needed for the dust rule
    and for a marketable limit.
    """
    symbol = instruction.instrument.symbol
    quantity = instruction.quantity
    step = rules.rules_for(symbol).qty_step
    amount = rules.amount_to_precision(symbol, quantity)
    if amount <= 0:
        return _below_lot(symbol, quantity, step, reduction)
    dust = _dust(rules, symbol, amount, price, swap=swap) if reduction else None
    if dust is not None:
        return dust
    note = None
    if amount < quantity * (1 - _QTY_TOLERANCE):
        left = quantity - amount
        note = (
            f"{left:g} left over below the lot size {step:g} (dust)"
            if reduction
            else f"amount truncated to the lot size {step:g}: {amount:g} of {quantity:g}"
        )
    reduce_only = swap and reduction
    params: dict[str, Any] = {"clientOrderId": client_id}
    if reduce_only:
        params["reduceOnly"] = True
    limit = _limit_price(instruction, price, market_orders, max_slippage_bps)
    if isinstance(limit, Refusal):
        return limit
    if limit is not None:
        params["timeInForce"] = "IOC"  # never leaves a resting order behind
        limit = rules.price_to_precision(symbol, limit)
    return OrderPlan(
        symbol=symbol,
        side=instruction.side,
        amount=amount,
        order_type="market" if limit is None else "limit",
        price=limit,
        reduce_only=reduce_only,
        params=params,
        note=note,
    )


def close_dust(
    rules: CcxtMarketRules, symbol: str, quantity: float, price: float | None, *, swap: bool
) -> Refusal | None:
    """Why a whole close of ``quantity`` (order unit) cannot be sent: dust; else ``None``.

    The rule ``plan_order`` applies to a reduction: below one lot or the
    minimum amount, or (spot) below the minimum cost at ``price`` (quote).
    """
    amount = rules.amount_to_precision(symbol, abs(quantity))
    if amount <= 0:
        return _below_lot(symbol, abs(quantity), rules.rules_for(symbol).qty_step, True)
    return _dust(rules, symbol, amount, price, swap=swap)


def _below_lot(symbol: str, quantity: float, step: float, reduction: bool) -> Refusal:
    if reduction:
        return Refusal(
            f"dust: below the minimum order size of {symbol} (amount {quantity:g} is less than "
            f"one lot {step:g}); the leftover stays in the position, not retried",
            dust=True,
        )
    return Refusal(f"{symbol}: amount {quantity:g} is less than one lot {step:g}")


def _dust(
    rules: CcxtMarketRules, symbol: str, amount: float, price: float | None, *, swap: bool
) -> Refusal | None:
    """A dust refusal for a close of ``amount`` the exchange would refuse, else ``None``."""
    limits = rules.rules_for(symbol)
    if amount < limits.min_qty:
        problem = f"amount {amount:g} is below the minimum amount {limits.min_qty:g}"
    elif price is not None and amount * limits.contract_size * price < limits.min_notional:
        if swap:
            return None  # a reduce-only close may be below the minimum cost
        cost = amount * limits.contract_size * price
        problem = f"cost {cost:g} is below the minimum cost {limits.min_notional:g}"
    else:
        return None
    return Refusal(
        f"dust: below the minimum order size of {symbol} ({problem}); the leftover stays in "
        f"the position, not retried",
        dust=True,
    )


def _limit_price(
    instruction: TradeInstruction, price: float | None, market_orders: bool, slippage_bps: float
) -> float | Refusal | None:
    if instruction.price_mode == "limit":
        if instruction.limit_price is None:
            return Refusal("limit order without limit_price; set it or use price_mode market")
        return instruction.limit_price
    if market_orders:
        return None
    if price is None or not (math.isfinite(price) and price > 0):
        return Refusal(
            f"no price for {instruction.instrument.symbol}: the exchange has no market orders "
            f"and a marketable limit needs its ticker"
        )
    slip = slippage_bps / 1e4
    return price * (1 + slip) if instruction.side == "buy" else price * (1 - slip)


@dataclass(frozen=True)
class OrderOutcome:
    """An order as the exchange reports it, in our terms (units in the module doc)."""

    status: OrderStatus
    exchange_order_id: str | None
    filled_qty: float
    avg_price: float | None
    fee: float | None = None
    fee_currency: str | None = None
    fee_quote: float = 0.0
    note: str | None = None


def outcome_of(
    order: Mapping[str, Any],
    market: Mapping[str, Any],
    trades: Iterable[Mapping[str, Any]] = (),
) -> OrderOutcome:
    """Our reading of ccxt's ``order`` dict in ``market``; ``trades`` add fees the order lacks."""
    amount = _number(order.get("amount"))
    filled = _number(order.get("filled"))
    if filled is None:
        remaining = _number(order.get("remaining"))
        filled = amount - remaining if amount is not None and remaining is not None else 0.0
    filled = max(filled, 0.0)
    average = _average(order, market, filled)
    fees = _fees_of(order) or [f for t in trades for f in _fees_of(t)]
    fee, currency, fee_quote, note = fee_summary(fees, market, average)
    if filled > 0 and not fees:
        note = "the exchange reported no fee for this order"
    return OrderOutcome(
        status=_status(order.get("status"), filled, amount),
        exchange_order_id=str(order["id"]) if order.get("id") is not None else None,
        filled_qty=filled,
        avg_price=average,
        fee=fee,
        fee_currency=currency,
        fee_quote=fee_quote,
        note=note,
    )


def fee_summary(
    fees: list[Mapping[str, Any]], market: Mapping[str, Any], average: float | None
) -> tuple[float | None, str | None, float, str | None]:
    """``(fee, fee_currency, fee_in_quote, note)`` of ccxt fee dicts ``{currency, cost}``.

    Quote-currency fees count as they are; base-currency fees are converted at
    the average fill price; other currencies are not converted (0 in quote)
    and named in the note. ``fee`` is the reported amount when there is one
    currency, else the total in quote.
    """
    by_currency: dict[str, float] = {}
    for item in fees:
        cost = _number(item.get("cost"))
        if cost:
            currency = str(item.get("currency") or "?")
            by_currency[currency] = by_currency.get(currency, 0.0) + cost
    quote, base = market.get("quote"), market.get("base")
    in_quote, foreign = 0.0, []
    for currency, cost in by_currency.items():
        if currency == quote:
            in_quote += cost
        elif currency == base and average is not None:
            in_quote += cost * average
        else:
            foreign.append(f"{cost:g} {currency}")
    note = (
        f"fee {' + '.join(foreign)} is not in {quote}: recorded on the order, not counted in "
        f"the ledger's fees"
        if foreign
        else None
    )
    if len(by_currency) == 1:
        ((currency, cost),) = by_currency.items()
        return cost, currency, in_quote, note
    if not by_currency:
        return None, None, 0.0, note
    return in_quote, str(quote), in_quote, note


def _status(status: Any, filled: float, amount: float | None) -> OrderStatus:
    full = amount is not None and filled >= amount * (1 - _QTY_TOLERANCE)
    if status == "closed":
        return "filled" if full or amount is None else "partially_filled"
    if status in ("canceled", "cancelled", "expired"):
        return "partially_filled" if filled > 0 else "canceled"
    if status == "rejected":
        return "partially_filled" if filled > 0 else "rejected"
    return "acknowledged"  # open, or no status reported yet


def _average(order: Mapping[str, Any], market: Mapping[str, Any], filled: float) -> float | None:
    if filled <= 0:
        return None
    average = _number(order.get("average"))
    if average and average > 0:
        return average
    cost = _number(order.get("cost"))
    contract_size = _number(market.get("contractSize")) or 1.0
    if cost and cost > 0:
        return cost / (filled * contract_size)
    price = _number(order.get("price"))
    return price if price and price > 0 else None


def _fees_of(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    fees = [f for f in (item.get("fees") or []) if f and f.get("cost") is not None]
    if fees:
        return fees
    single = item.get("fee")
    return [single] if single and single.get("cost") is not None else []


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
