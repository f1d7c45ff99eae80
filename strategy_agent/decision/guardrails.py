"""Guardrails: turn a policy's plan into orders that respect every limit.

Semantics, in one place:

- ``target_qty`` is the SIGNED target position. ``buy`` must raise the position
  and ``sell`` lower it; ``flat`` means a target of 0; ``noop`` emits nothing.
- Each check is a pure function: a veto returns a reason (or ``None``), a clamp
  returns the new target and a reason. Vetoes are data, never exceptions; every
  item gets exactly one ``GuardrailOutcome``.
- Every limit is a *band* of allowed targets that always contains the current
  position: a target is clamped into the band, so it only ever moves back
  toward the current position. Hence a portfolio that already breaks a limit
  (prices moved) can only be reduced, and flooring the order to the lot size
  (which also moves the target toward the current position) keeps every limit,
  for flips too.
- A flip is two legs, two orders: a close to 0, then an open from 0. Risk-reducing
  items (the position moves toward zero without flipping) and the closing legs
  are processed before exposure-increasing items and opening legs, so the cash
  and headroom they free, net of their own costs, is what the increases get.
- Getting out is always allowed: confidence and cool-down only block new
  exposure. A vetoed flip still closes (outcome ``clamped``, with the veto as
  its reason); an opening leg goes only once its close reached 0.
- Net exposure also binds risk-reducing items (closing one leg of a hedge
  raises net exposure). The reducing items are first tried together (orders of
  one plan go out together); only if the plan's end state breaks the net cap
  are they clamped one by one.
- Gross exposure is checked against the equity left after this plan's fees and
  slippage, as an exchange's margin check does; the other caps against
  ``portfolio.total_value``. A position traded earlier in the plan may be
  valued at its fill price by the exchange (the paper exchange does), so the
  gross check also allows for that slippage on it.
- Instructions come out in processing order (reductions first: a sale must
  free the cash before a purchase spends it); outcomes keep the plan's order,
  one per item (a flip's ``order_qty`` is both legs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.decision.guardrail_checks import (
    RoundedOrder,
    check_action,
    check_confidence,
    check_cooldown,
    check_known_symbol,
    check_max_positions,
    check_price,
    clamp_cash,
    clamp_gross,
    clamp_net,
    clamp_position_notional,
    clamp_position_qty,
    clamp_short,
    is_increasing,
    is_open,
    round_order,
    screen_duplicates,
)
from strategy_agent.decision.guardrail_limits import GuardrailLimits
from strategy_agent.decision.guardrail_orders import PlannedOrder, instructions_for, merge_flip_legs
from strategy_agent.decision.plan_book import PlanBook, TradingCosts, book_from
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import (
    GuardrailOutcome,
    LlmDecisionItem,
    MarketRules,
    OutcomeStatus,
    PortfolioView,
    Side,
    TradeDigest,
    TradeInstruction,
)

__all__ = ["GuardrailLimits", "apply_guardrails"]

# Relative slack when comparing the plan's net exposure with its bound.
_NET_SLACK = 1e-9

Leg = Literal["whole", "close", "open"]


# --- per-item work ------------------------------------------------------------------------


@dataclass
class _Work:
    """An item that passed the stateless checks, with its (clamped) target."""

    index: int
    item: LlmDecisionItem
    current: float
    target: float
    unit_value: float
    rules: MarketRules
    reasons: list[str]
    increasing: bool
    # A flip is two legs: "close" (to 0) is sized with the reductions, "open"
    # (from 0) with the increases; "whole" is any other item.
    leg: Leg = "whole"

    @property
    def symbol(self) -> str:
        return self.item.instrument.symbol

    # The two copies below are dataclasses.replace written out (replace scans the
    # fields on every call); tests compare them with replace for every field.
    def with_target(
        self, target: float, reasons: list[str], increasing: bool, leg: Leg | None = None
    ) -> _Work:
        """``replace(self, target=..., reasons=..., increasing=...[, leg=...])``."""
        return _Work(
            self.index,
            self.item,
            self.current,
            target,
            self.unit_value,
            self.rules,
            reasons,
            increasing,
            self.leg if leg is None else leg,
        )

    def with_current(self, current: float) -> _Work:
        """``replace(self, current=...)``."""
        return _Work(
            self.index,
            self.item,
            current,
            self.target,
            self.unit_value,
            self.rules,
            self.reasons,
            self.increasing,
            self.leg,
        )


# GuardrailOutcome(**fields), validated alike, without BaseModel.__init__'s wrapper: a
# third less for the outcome every item gets.
_validated_outcome = GuardrailOutcome.__pydantic_validator__.validate_python


def _outcome(
    item: LlmDecisionItem,
    status: OutcomeStatus,
    reasons: list[str],
    final_target: float | None = None,
    order_qty: float | None = None,
) -> GuardrailOutcome:
    return _validated_outcome(
        {
            "symbol": item.instrument.symbol,
            "action": item.action,
            "status": status,
            "requested_qty": item.target_qty,
            "final_target_qty": final_target,
            "order_qty": order_qty,
            "reasons": reasons,
        }
    )


def _prepare(
    index: int,
    item: LlmDecisionItem,
    book: PlanBook,
    prices: dict[str, float],
    rules: MarketRulesProvider,
) -> _Work | GuardrailOutcome:
    """Checks that need no limits state: action, price, market rules."""
    symbol = item.instrument.symbol
    current = book.qty(symbol)
    if item.action == "noop":
        return _outcome(item, "accepted", [], final_target=current)
    target = 0.0 if item.action == "flat" else item.target_qty
    if item.action == "flat" and not is_open(current):
        return _outcome(item, "accepted", [], final_target=current)
    veto = check_action(item.action, current, target) or check_price(symbol, prices)
    if veto:
        return _outcome(item, "rejected", [veto])
    try:
        market = rules.rules_for(symbol)
    except ConfigurationError as error:
        return _outcome(item, "rejected", [str(error)])
    # price x contract size, from the plan book (market_rules.contract_size_of): one lookup
    return _Work(index, item, current, target, book.unit_values[symbol], market, [], False)


def _limit_target(
    work: _Work, equity: float, digest: TradeDigest, limits: GuardrailLimits, now_ms: int
) -> list[_Work] | GuardrailOutcome:
    """Per-instrument clamps, then the confidence and cool-down vetoes; a flip splits in two legs.

    A vetoed flip still closes the old position: only its new exposure is refused.
    """
    current = work.current
    target, short_reason = clamp_short(work.target, current, limits.allow_short)
    cap = limits.max_position_qty.get(work.symbol)
    target, qty_reason = clamp_position_qty(target, current, cap)
    target, notional_reason = clamp_position_notional(
        target, current, work.unit_value, equity, limits.max_position_pct
    )
    reasons = [r for r in (short_reason, qty_reason, notional_reason) if r]
    increasing = is_increasing(current, target)
    veto = check_confidence(work.item.confidence, limits.min_confidence, increasing)
    veto = veto or check_cooldown(work.symbol, digest, now_ms, limits.cooldown_ms, increasing)
    flip = target * current < 0
    if veto and not flip:
        return _outcome(work.item, "rejected", [*reasons, veto])
    if veto:
        return [work.with_target(0.0, [*reasons, veto], increasing=False)]
    if flip:
        close = work.with_target(0.0, [], increasing=False, leg="close")
        opening = work.with_target(target, reasons, increasing=True, leg="open")
        return [close, opening]
    return [work.with_target(target, reasons, increasing)]


def _resolve(
    work: _Work, book: PlanBook, limits: GuardrailLimits, costs: TradingCosts, check_net: bool
) -> tuple[GuardrailOutcome, PlannedOrder | None]:
    """Portfolio-wide limits against the plan's book so far, then lot rounding."""
    current, target, reasons = work.current, work.target, list(work.reasons)
    veto = check_max_positions(
        work.symbol, current, target, book.open_symbols(), limits.max_positions
    )
    if veto:
        return _outcome(work.item, "rejected", [*reasons, veto]), None
    if limits.market_type == "spot":
        unit_cost = costs.cash_per_unit("buy", work.unit_value)
        target, reason = clamp_cash(target, current, unit_cost, book.cash)
        reasons.append(reason or "")
    remarks = book.remark_total()
    target, reason = clamp_gross(
        target,
        current,
        work.unit_value,
        book.gross() + remarks,
        book.cost_equity - remarks,
        limits.max_gross_exposure,
        costs.rates(),
    )
    reasons.append(reason or "")
    if check_net:
        target, reason = clamp_net(
            target, current, work.unit_value, book.net(), book.equity, limits.max_net_exposure
        )
        reasons.append(reason or "")
    reasons = [r for r in reasons if r]
    if target == current:
        reasons.append("no room left within the limits above; nothing to trade")
        return _outcome(work.item, "rejected", reasons), None
    rounded = round_order(work.symbol, current, target, work.unit_value, work.rules)
    if limits.market_type == "spot" and target > current:
        rounded = _within_cash(
            work, rounded, costs.cash_per_unit("buy", work.unit_value), book.cash
        )
    reasons.extend(rounded.reasons)
    if rounded.veto:
        return _outcome(work.item, "rejected", [*reasons, rounded.veto]), None
    side: Side = "buy" if target > current else "sell"
    status: OutcomeStatus = "clamped" if reasons else "accepted"
    outcome = _outcome(work.item, status, reasons, rounded.final_target, rounded.quantity)
    return outcome, PlannedOrder(
        work.index, work.item, side, rounded.quantity, rounded.final_target
    )


def _within_cash(work: _Work, rounded: RoundedOrder, unit_cost: float, cash: float) -> RoundedOrder:
    """One lot less when the lot tolerance rounded a cash-bound buy past the cash."""
    if rounded.veto or rounded.quantity * unit_cost <= cash:
        return rounded
    smaller = rounded.final_target - work.rules.qty_step
    if smaller <= work.current:
        return RoundedOrder(veto=f"cash {cash:,.2f} does not pay one lot of {work.symbol}")
    return round_order(work.symbol, work.current, smaller, work.unit_value, work.rules)


def _process(
    works: list[_Work],
    book: PlanBook,
    limits: GuardrailLimits,
    costs: TradingCosts,
    check_net: bool,
) -> tuple[PlanBook, list[tuple[GuardrailOutcome, PlannedOrder | None, int]]]:
    """Resolve items in order, each seeing the book the earlier ones left.

    Returns the book they leave (a copy; ``book`` itself when there is no item).
    """
    if not works:
        return book, []
    book = book.copy()
    results: list[tuple[GuardrailOutcome, PlannedOrder | None, int]] = []
    for work in works:
        if work.leg == "open":  # it starts where the closing leg left the position
            work = work.with_current(book.qty(work.symbol))
        if is_open(work.current) and work.leg == "open":
            reason = "the position is not fully closed, so no new position is opened this cycle"
            outcome, order = _outcome(work.item, "rejected", [reason]), None
        else:
            outcome, order = _resolve(work, book, limits, costs, check_net)
        if order is not None:
            unit_value = work.unit_value
            per_unit = costs.cash_per_unit(order.side, unit_value)
            cost_rate = costs.rates()[0 if order.side == "buy" else 1]
            book.positions[work.symbol] = order.final_target
            book.cash -= order.quantity * per_unit
            book.cost_equity -= order.quantity * unit_value * cost_rate
            book.remarks[work.symbol] = abs(order.final_target) * unit_value * costs.slippage
        results.append((outcome, order, work.index))
    return book, results


def _process_reducing(
    works: list[_Work], book: PlanBook, limits: GuardrailLimits, costs: TradingCosts
) -> tuple[PlanBook, list[tuple[GuardrailOutcome, PlannedOrder | None, int]]]:
    """Reductions as one batch; one by one under the net cap only if the batch breaks it."""
    if not works:
        return book, []
    batch_book, results = _process(works, book, limits, costs, check_net=False)
    bound = max(limits.max_net_exposure * book.equity, abs(book.net()))
    if abs(batch_book.net()) <= bound * (1 + _NET_SLACK):
        return batch_book, results
    return _process(works, book, limits, costs, check_net=True)


def apply_guardrails(
    items: list[LlmDecisionItem],
    portfolio: PortfolioView,
    prices: dict[str, float],
    digest: TradeDigest,
    limits: GuardrailLimits,
    rules: MarketRulesProvider,
    compose_id: str,
    now_ms: int,
) -> tuple[list[TradeInstruction], list[GuardrailOutcome]]:
    """Check, clamp and round a plan's items into instructions (see the module doc).

    Returns the instructions in execution order (reductions first) and one
    outcome per item, in the items' order. ``prices`` are the latest closes;
    equity is ``portfolio.total_value``.
    """
    book = book_from(portfolio, prices, rules, limits.symbols)
    outcomes: dict[int, GuardrailOutcome] = {}
    reducing: list[_Work] = []
    increasing: list[_Work] = []
    duplicates = screen_duplicates(items)
    for index, item in enumerate(items):
        veto = check_known_symbol(item.instrument.symbol, limits.symbols) or duplicates.get(index)
        if veto:
            outcomes[index] = _outcome(item, "rejected", [veto])
            continue
        prepared = _prepare(index, item, book, prices, rules)
        if isinstance(prepared, GuardrailOutcome):
            outcomes[index] = prepared
            continue
        limited = _limit_target(prepared, book.equity, digest, limits, now_ms)
        if isinstance(limited, GuardrailOutcome):
            outcomes[index] = limited
            continue
        for work in limited:
            (increasing if work.increasing else reducing).append(work)
    if not reducing and not increasing:  # nothing to size: every item has its outcome
        return [], [outcomes[i] for i in range(len(items))]
    costs = TradingCosts(fee=limits.fee_bps / 1e4, slippage=limits.slippage_bps / 1e4)
    book, reduced = _process_reducing(reducing, book, limits, costs)
    _, increased = _process(increasing, book, limits, costs, check_net=True)
    orders: list[PlannedOrder] = []
    for outcome, order, index in reduced + increased:
        earlier = outcomes.get(index)  # the closing leg of a flip
        outcomes[index] = merge_flip_legs(earlier, outcome) if earlier else outcome
        if order is not None:
            orders.append(order)
    return instructions_for(orders, compose_id), [outcomes[i] for i in range(len(items))]
