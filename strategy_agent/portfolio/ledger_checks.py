"""Why the ledger refuses a fill: bad numbers, a spot short or overdraft, too much leverage.

Pure functions of the ledger's state, so ``Ledger.check`` reads as the rule it
applies. Money is in the quote currency, quantities in contracts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from strategy_agent.data.market_rules import quote_of
from strategy_agent.models import Side

# Relative size under which a quantity counts as zero (float dust after a close).
QTY_EPSILON = 1e-12
# Relative slack of money checks, so an order sized to exactly the limit passes.
MONEY_EPSILON = 1e-9


def invalid_numbers(
    symbol: str, side: str, quantity: float, price: float, fee: float
) -> str | None:
    """The reason a fill's fields are unusable (empty symbol, NaN, non-positive...), or None."""
    if not symbol:
        return "symbol must not be empty"
    if side not in ("buy", "sell"):
        return f"side must be buy or sell, got {side!r}"
    if not (math.isfinite(quantity) and quantity > 0):
        return f"quantity of {symbol} must be a finite number > 0, got {quantity}"
    if not (math.isfinite(price) and price > 0):
        return f"price of {symbol} must be a finite number > 0, got {price}"
    if not (math.isfinite(fee) and fee >= 0):
        return f"fee of {symbol} must be a finite number >= 0, got {fee}"
    return None


def spot_reason(
    symbol: str,
    side: Side,
    quantity: float,
    old_qty: float,
    new_qty: float,
    cash: float,
    new_cash: float,
) -> str | None:
    """Spot is long only and never borrows: the reason a fill breaks that, or None."""
    if new_qty < -dust(old_qty, quantity):
        return (
            f"spot is long only: sell {fmt_qty(quantity)} {symbol} but hold "
            f"{fmt_qty(max(old_qty, 0.0))}; sell at most that, or use market_type "
            f"margin or swap to go short"
        )
    if new_cash < -MONEY_EPSILON * max(1.0, abs(cash - new_cash)):
        quote = quote_of(symbol)
        needed = cash - new_cash
        return (
            f"{side} {fmt_qty(quantity)} {symbol} needs {needed:,.2f} {quote}, "
            f"cash is {cash:,.2f} (fee included); reduce the quantity"
        )
    return None


def leverage_reason(
    symbol: str,
    side: Side,
    quantity: float,
    other_notionals: Iterable[float],
    new_notional: float,
    new_cash: float,
    max_leverage: float,
) -> str | None:
    """Margin/swap: the reason a fill leaves equity <= 0 or gross above leverage x equity."""
    others = list(other_notionals)
    equity = new_cash + sum(others) + new_notional
    gross = sum(abs(n) for n in others) + abs(new_notional)
    quote = quote_of(symbol)
    order = f"{side} {fmt_qty(quantity)} {symbol}"
    if equity <= 0:
        return f"{order} would leave equity at {equity:,.2f} {quote}; reduce the quantity"
    cap = max_leverage * equity
    if gross > cap * (1 + MONEY_EPSILON):
        return (
            f"{order} would bring gross exposure to {gross:,.2f} {quote}, above "
            f"max_leverage {max_leverage:g} x equity {equity:,.2f} = {cap:,.2f}; "
            f"reduce the quantity or close positions first"
        )
    return None


def dust(*quantities: float) -> float:
    """Quantity below which a result counts as zero, relative to the sizes involved."""
    return QTY_EPSILON * max(1.0, *(abs(q) for q in quantities))


def fmt_qty(quantity: float) -> str:
    return f"{quantity:.10g}"
