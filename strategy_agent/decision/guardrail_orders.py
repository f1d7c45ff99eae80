"""What the guardrails hand out: the instructions of a plan's orders, one outcome per flip.

An order is what the guardrails accepted of an item (of each leg, for a flip):
its side, its quantity in contracts and the signed target position it reaches.
Instruction ids are ``{compose_id}:{symbol}``, numbered ``:1``, ``:2`` when a
symbol has two orders (a flip).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from strategy_agent.models import GuardrailOutcome, LlmDecisionItem, Side, TradeInstruction


@dataclass(frozen=True)
class PlannedOrder:
    """An accepted order of a plan's item (``index``: the item's place in the plan)."""

    index: int
    item: LlmDecisionItem
    side: Side
    quantity: float
    final_target: float


def instructions_for(orders: list[PlannedOrder], compose_id: str) -> list[TradeInstruction]:
    """The orders as instructions, in the given (execution) order."""
    if not orders:
        return []
    per_symbol = Counter(order.item.instrument.symbol for order in orders)
    seen: Counter[str] = Counter()
    instructions = []
    for order in orders:
        symbol = order.item.instrument.symbol
        seen[symbol] += 1
        suffix = f":{seen[symbol]}" if per_symbol[symbol] > 1 else ""
        instructions.append(
            TradeInstruction(
                instruction_id=f"{compose_id}:{symbol}{suffix}",
                compose_id=compose_id,
                instrument=order.item.instrument,
                side=order.side,
                quantity=order.quantity,
                meta={
                    "rationale": order.item.rationale,
                    "confidence": order.item.confidence,
                    "action": order.item.action,
                    "target_qty": order.final_target,
                },
            )
        )
    return instructions


def merge_flip_legs(close: GuardrailOutcome, opening: GuardrailOutcome) -> GuardrailOutcome:
    """One outcome for a flip's two legs: the total order and the target it reaches."""
    opening_reasons = opening.reasons
    if opening.status == "rejected" and close.order_qty is not None:
        opening_reasons = [f"only the close was sent: {reason}" for reason in opening_reasons]
    reasons = [*close.reasons, *opening_reasons]
    legs = [leg for leg in (close, opening) if leg.order_qty is not None]
    if not legs:
        return close.model_copy(update={"status": "rejected", "reasons": reasons})
    return close.model_copy(
        update={
            "status": "clamped" if reasons else "accepted",
            "reasons": reasons,
            "final_target_qty": legs[-1].final_target_qty,
            "order_qty": sum(leg.order_qty or 0.0 for leg in legs),
        }
    )
