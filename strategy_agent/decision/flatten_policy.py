"""FlattenPolicy: the plan of a "Stop and close positions" cycle.

Not a strategy a user picks (it is not in ``BUILTIN_POLICIES``): the runtime
injects it for one cycle, which then goes through the usual guardrails (an
exit is always allowed), execution, ledger and history, so the closing fills
are recorded like any other.
"""

from __future__ import annotations

from strategy_agent.decision.builtin_policies import RULE_CONFIDENCE
from strategy_agent.decision.guardrail_checks import is_open
from strategy_agent.decision.interfaces import Policy, PolicyDecision
from strategy_agent.models import ComposeContext, LlmDecisionItem, LlmPlanProposal

FLATTEN_NOTES = "closed by user on stop"


class FlattenPolicy(Policy):
    """Close every open position: one ``flat`` item (target 0) per open position."""

    name = "flatten"

    def __init__(self, notes: str = FLATTEN_NOTES) -> None:
        self.notes = notes

    def propose(self, context: ComposeContext) -> PolicyDecision:
        items = [
            LlmDecisionItem(
                instrument=position.instrument,
                action="flat",
                target_qty=0.0,
                confidence=RULE_CONFIDENCE,
                rationale=f"{self.notes}: close {position.quantity:.6g}",
            )
            for position in context.portfolio.positions.values()
            if is_open(position.quantity)
        ]
        proposal = LlmPlanProposal(
            ts=context.ts,
            items=items,
            notes=self.notes,
            model_meta={"policy": self.name, "provider": "builtin"},
        )
        return PolicyDecision(proposal=proposal, audit={"provider": "builtin", "model": self.name})
