"""Pure guardrail checks: vetoes return a reason, clamps a new target and a reason.

Each function answers for one limit and one item; ``guardrails.apply_guardrails``
runs them over a whole plan (see its module docstring for the semantics).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from strategy_agent.data.market_rules import quote_of, round_qty_down
from strategy_agent.models import (
    LlmDecisionItem,
    MarketRules,
    TradeDigest,
)

# A position whose magnitude is at most this is flat (float dust after a close).
DUST_QTY = 1e-12
# Relative size under which a residual order is float noise, not a trade.
_LOT_TOLERANCE = 1e-9


# --- small helpers -------------------------------------------------------------------------


def is_open(quantity: float) -> bool:
    """Whether a signed position quantity is an open position (not dust)."""
    return abs(quantity) > DUST_QTY


def is_increasing(current: float, target: float) -> bool:
    """Whether moving from ``current`` to ``target`` adds exposure (a flip does)."""
    return abs(target) > abs(current) or target * current < 0


def clamp_into_band(target: float, current: float, low: float, high: float) -> float:
    """Clamp ``target`` into the smallest interval holding ``[low, high]`` and ``current``.

    The result lies between ``current`` and ``target``: a clamp never reverses
    the direction of an order, and a position outside ``[low, high]`` may only
    move back toward it.
    """
    return min(max(target, min(low, current)), max(high, current))


def _num(value: float) -> str:
    return f"{value:.10g}"


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def floor_to_step(quantity: float, step: float) -> float:
    """Round a non-negative quantity down to whole lots of ``step`` (0 for nothing to trade).

    Float noise below 1e-9 lot is forgiven (``floor_to_step(0.3, 0.1) == 0.3``);
    the lot arithmetic is ``round_qty_down``'s, shared with the market rules.
    """
    if not (quantity > 0 and math.isfinite(quantity)):
        return 0.0
    return round_qty_down(quantity, step)


# --- vetoes (a reason, or None) ------------------------------------------------------------


def check_known_symbol(symbol: str, symbols: list[str]) -> str | None:
    """Veto symbols the strategy does not trade."""
    if symbol in symbols:
        return None
    return (
        f"{symbol} is not one of this strategy's symbols ({', '.join(symbols)}); "
        f"add it to trading.symbols to trade it"
    )


def screen_duplicates(items: list[LlmDecisionItem]) -> dict[int, str]:
    """Vetoes for repeated symbols, by item index.

    Identical items (same action and target) keep the first; items that
    contradict each other are all rejected, since the plan does not say which
    one it means.
    """
    symbols = [item.instrument.symbol for item in items]
    if len(set(symbols)) == len(symbols):
        return {}  # the usual plan: one item per symbol
    by_symbol: dict[str, list[int]] = {}
    for index, symbol in enumerate(symbols):
        by_symbol.setdefault(symbol, []).append(index)
    vetoes: dict[int, str] = {}
    for symbol, indexes in by_symbol.items():
        if len(indexes) < 2:
            continue
        intents = {_intent_key(items[i]) for i in indexes}
        if len(intents) == 1:
            for index in indexes[1:]:
                vetoes[index] = (
                    f"duplicate of item {indexes[0] + 1} for {symbol}; only the first is used"
                )
            continue
        listed = ", ".join(f"#{i + 1} {_describe_intent(items[i])}" for i in indexes)
        for index in indexes:
            vetoes[index] = (
                f"contradicting items for {symbol} ({listed}); send one item per symbol. "
                f"None of them was used"
            )
    return vetoes


def _intent_key(item: LlmDecisionItem) -> tuple[str, float]:
    if item.action in ("flat", "noop"):
        return (item.action, 0.0)
    return (item.action, item.target_qty)


def _describe_intent(item: LlmDecisionItem) -> str:
    if item.action in ("flat", "noop"):
        return item.action
    return f"{item.action} {_num(item.target_qty)}"


def check_action(action: str, current: float, target: float) -> str | None:
    """Veto a buy that does not raise the position or a sell that does not lower it."""
    if action == "buy" and not target > current:
        return (
            f"action buy but target {_num(target)} is not above current {_num(current)}; "
            f"use sell to reduce, or noop to hold"
        )
    if action == "sell" and not target < current:
        return (
            f"action sell but target {_num(target)} is not below current {_num(current)}; "
            f"use buy to add, or noop to hold"
        )
    return None


def check_price(symbol: str, prices: dict[str, float]) -> str | None:
    """Veto symbols without a usable price in the market snapshot."""
    price = prices.get(symbol)
    if price is not None and math.isfinite(price) and price > 0:
        return None
    return f"no price for {symbol} in the market snapshot; it cannot be traded this cycle"


def check_confidence(
    confidence: float | None, min_confidence: float, increasing: bool
) -> str | None:
    """Veto exposure-increasing items below ``min_confidence`` (reductions always pass).

    An item without a confidence counts as below any threshold above 0.
    """
    if not increasing or min_confidence <= 0:
        return None
    if confidence is None:
        return (
            f"no confidence given and min_confidence is {min_confidence:.2f}; "
            f"only risk-reducing items pass without one"
        )
    if confidence < min_confidence:
        return (
            f"confidence {confidence:.2f} is below min_confidence {min_confidence:.2f}; "
            f"only risk-reducing items pass below it"
        )
    return None


def check_cooldown(
    symbol: str, digest: TradeDigest, now_ms: int, cooldown_ms: int, increasing: bool
) -> str | None:
    """Veto new exposure on a symbol whose last losing trade is under ``cooldown_ms`` old.

    A losing trade has a net P&L (``metrics.trade_net_pnl``, after its fees) below 0:
    the digest's ``last_loss_ts``.
    """
    if not increasing or cooldown_ms <= 0:
        return None
    entry = digest.by_instrument.get(symbol)
    if entry is None or entry.last_loss_ts is None:
        return None
    if now_ms - entry.last_loss_ts >= cooldown_ms:
        return None
    return (
        f"{symbol} is cooling down after a losing trade at {_utc(entry.last_loss_ts)}: "
        f"new exposure is allowed from {_utc(entry.last_loss_ts + cooldown_ms)} "
        f"(trading.cooldown_bars); reducing is allowed"
    )


def check_max_positions(
    symbol: str, current: float, target: float, open_symbols: list[str], max_positions: int
) -> str | None:
    """Veto opening a new position when ``max_positions`` are already open."""
    if is_open(current) or not is_open(target):
        return None
    others = [s for s in open_symbols if s != symbol]
    if len(others) < max_positions:
        return None
    return (
        f"max_positions is {max_positions} and {len(others)} are open "
        f"({', '.join(sorted(others))}); close one first (earlier in the plan works)"
    )


# --- clamps (new target, reason or None) -----------------------------------------------------


def _clamped(
    target: float, new_target: float, reason: Callable[[], str]
) -> tuple[float, str | None]:
    """``(new_target, "reason: target a -> b")``, or ``(target, None)`` when nothing moved.

    ``reason`` is called only when the target moved: most items pass untouched,
    and formatting the limit's figures would be wasted on them.
    """
    if new_target == target:
        return target, None
    return new_target, f"{reason()}: target {_num(target)} -> {_num(new_target)}"


def clamp_short(target: float, current: float, allow_short: bool) -> tuple[float, str | None]:
    """Clamp a negative target to 0 when shorting is not allowed."""
    if allow_short:
        return target, None
    new_target = clamp_into_band(target, current, 0.0, math.inf)
    return _clamped(
        target, new_target, lambda: "shorting is not allowed (spot, or allow_short off)"
    )


def clamp_position_qty(
    target: float, current: float, max_qty: float | None
) -> tuple[float, str | None]:
    """Clamp |target| to the per-symbol quantity cap (``max_position_qty``)."""
    if max_qty is None:
        return target, None
    new_target = clamp_into_band(target, current, -max_qty, max_qty)
    return _clamped(target, new_target, lambda: f"max_position_qty is {_num(max_qty)}")


def clamp_position_notional(
    target: float, current: float, unit_value: float, equity: float, max_pct: float
) -> tuple[float, str | None]:
    """Clamp |target| x unit value to ``max_pct`` of equity."""
    cap_notional = max(0.0, max_pct * equity)
    cap_qty = cap_notional / unit_value
    new_target = clamp_into_band(target, current, -cap_qty, cap_qty)
    return _clamped(
        target,
        new_target,
        lambda: f"max_position_pct {max_pct:.0%} of equity {equity:,.2f} is {cap_notional:,.2f}",
    )


def clamp_gross(
    target: float,
    current: float,
    unit_value: float,
    gross: float,
    equity: float,
    max_gross: float,
    cost_rates: tuple[float, float] = (0.0, 0.0),
) -> tuple[float, str | None]:
    """Clamp so gross exposure stays within ``max_gross`` x equity after this order's costs.

    ``cost_rates`` are the (buy, sell) trading costs as fractions of the order
    notional: they lower the equity the cap is measured on.
    """
    other = max(0.0, gross - abs(current) * unit_value)
    buy_rate, sell_rate = cost_rates
    budget = max_gross * equity - other
    high = (budget + max_gross * buy_rate * current * unit_value) / (
        unit_value * (1 + max_gross * buy_rate)
    )
    low = -(budget - max_gross * sell_rate * current * unit_value) / (
        unit_value * (1 + max_gross * sell_rate)
    )
    # Moving toward zero always lowers gross exposure, so [0, current] stays allowed.
    new_target = clamp_into_band(target, current, min(low, 0.0), max(high, 0.0))
    return _clamped(
        target,
        new_target,
        lambda: (
            f"max_gross_exposure {max_gross:g}x equity {equity:,.2f} (other positions {other:,.2f})"
        ),
    )


def clamp_net(
    target: float, current: float, unit_value: float, net: float, equity: float, max_net: float
) -> tuple[float, str | None]:
    """Clamp so |net exposure| stays within ``max_net`` x equity (or does not grow)."""
    other = net - current * unit_value
    bound = max(0.0, max_net * equity)
    low = (-bound - other) / unit_value
    high = (bound - other) / unit_value
    new_target = clamp_into_band(target, current, low, high)
    return _clamped(
        target,
        new_target,
        lambda: (
            f"max_net_exposure {max_net:g}x equity {equity:,.2f} "
            f"(net of other positions {other:,.2f})"
        ),
    )


def clamp_cash(
    target: float, current: float, unit_cost: float, cash: float
) -> tuple[float, str | None]:
    """Clamp a spot buy to what ``cash`` pays, ``unit_cost`` including fee and slippage."""
    affordable = max(0.0, cash) / unit_cost
    new_target = clamp_into_band(target, current, -math.inf, current + affordable)
    return _clamped(
        target,
        new_target,
        lambda: f"cash {cash:,.2f} (with this plan's sales, after fees and slippage)",
    )


# --- rounding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundedOrder:
    """An order after lot rounding: its quantity and the target it reaches, or a veto."""

    quantity: float = 0.0
    final_target: float = 0.0
    reasons: tuple[str, ...] = ()
    veto: str | None = None
    full_close: bool = False


def round_order(
    symbol: str, current: float, target: float, unit_value: float, rules: MarketRules
) -> RoundedOrder:
    """Turn a target into an order that the market accepts.

    The order is floored to the lot size (so the target moves back toward the
    current position); a full close (target 0) uses the exact current quantity,
    leaving no dust, and is exempt from ``min_qty``/``min_notional``.
    ``max_qty`` caps one order.
    """
    sign = 1.0 if target > current else -1.0
    full_close = target == 0.0
    quantity = abs(current) if full_close else floor_to_step(abs(target - current), rules.qty_step)
    reasons: list[str] = []
    if rules.max_qty is not None and quantity > rules.max_qty:
        capped = floor_to_step(rules.max_qty, rules.qty_step)
        reasons.append(
            f"max_qty for {symbol} is {_num(rules.max_qty)} per order: "
            f"order {_num(quantity)} -> {_num(capped)}"
        )
        quantity, full_close = capped, False
    final = current + sign * quantity
    if not full_close and not reasons and abs(final) <= _LOT_TOLERANCE * abs(current):
        quantity, final, full_close = abs(current), 0.0, True  # a whole close after all
    if quantity <= 0:
        return RoundedOrder(
            veto=(
                f"order {_num(abs(target - current))} {symbol} is smaller than one lot "
                f"({_num(rules.qty_step)})"
            )
        )
    if full_close:
        return RoundedOrder(quantity, 0.0, tuple(reasons), full_close=True)
    veto = _minimum_veto(symbol, quantity, unit_value, rules)
    if veto:
        return RoundedOrder(veto=veto, reasons=tuple(reasons))
    return RoundedOrder(quantity, final, tuple(reasons))


def _minimum_veto(
    symbol: str, quantity: float, unit_value: float, rules: MarketRules
) -> str | None:
    if quantity < rules.min_qty:
        return f"min_qty for {symbol} is {_num(rules.min_qty)}, order is {_num(quantity)}"
    notional = quantity * unit_value
    if notional < rules.min_notional:
        quote = quote_of(symbol)
        return (
            f"min_notional for {symbol} is {rules.min_notional:g} {quote}, "
            f"order is {notional:.2f} {quote}"
        )
    return None
