"""GuardedComposer: a policy proposes, the guardrails decide what is executed.

Failure handling, in one place:

- ``AuthenticationError`` and ``ConfigurationError`` from the policy are
  re-raised: retrying cannot help, the coordinator stops the strategy.
- Any other failure (an unparsable answer, a timeout, a bug in a rule) uses the
  fallback policy, or an empty plan when there is none (or it fails too). The
  audit then says ``fallback_used: True`` and ``fallback_reason``.

A close (or any reduction) of a position the portfolio view marks ``dust``
(below the exchange's minimum order size) is rejected here with the reason,
never sent, so it is not retried every cycle.

The audit of a compose always holds the policy's name, its latency, the number
of accepted, clamped and rejected items, plus what the policy itself reported
(model, tokens, cost...).
"""

from __future__ import annotations

import time
from typing import Any

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.decision.guardrails import GuardrailLimits, apply_guardrails
from strategy_agent.decision.interfaces import Composer, Policy, PolicyDecision
from strategy_agent.errors import AuthenticationError, ConfigurationError, StrategyAgentError
from strategy_agent.models import (
    ComposeContext,
    ComposeResult,
    GuardrailOutcome,
    LlmDecisionItem,
    LlmPlanProposal,
    PortfolioView,
)

_FATAL = (AuthenticationError, ConfigurationError)
DUST_REASON = (
    "dust: below the minimum order size; the leftover stays in the position and its close is "
    "not retried"
)


class GuardedComposer(Composer):
    """Asks ``policy`` for a plan, falls back on failure, and guards the plan."""

    def __init__(
        self,
        policy: Policy,
        limits: GuardrailLimits,
        rules: MarketRulesProvider,
        fallback: Policy | None = None,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self.rules = rules
        self.fallback = fallback

    def compose(self, context: ComposeContext) -> ComposeResult:
        """Propose, guard, and account for both (see the module doc)."""
        if context.constraints is None:
            context = context.model_copy(
                update={"constraints": self.limits.model_dump(mode="json")}
            )
        decision, audit = self._decide(context)
        proposal = decision.proposal
        if proposal.ts != context.ts:
            audit["proposal_ts_replaced"] = proposal.ts
            proposal = proposal.model_copy(update={"ts": context.ts})
        skipped = _dust_closes(proposal.items, context.portfolio)
        guarded = proposal.items
        if skipped:
            guarded = [item for index, item in enumerate(proposal.items) if index not in skipped]
        instructions, outcomes = apply_guardrails(
            guarded,
            context.portfolio,
            context.market_snapshot,
            context.digest,
            self.limits,
            self.rules,
            context.compose_id,
            context.ts,
        )
        if skipped:
            kept = iter(outcomes)  # one outcome per item, in the plan's order
            outcomes = [skipped.get(i) or next(kept) for i in range(len(proposal.items))]
        outcomes += decision.rejected_items
        audit.update(_counts(outcomes))
        audit["instructions"] = len(instructions)
        return ComposeResult(
            instructions=instructions, proposal=proposal, outcomes=outcomes, audit=audit
        )

    def _decide(self, context: ComposeContext) -> tuple[PolicyDecision, dict[str, Any]]:
        started = time.perf_counter()
        try:
            decision = self.policy.propose(context)
            if not isinstance(decision, PolicyDecision):
                raise TypeError(
                    f"policy {self.policy.name} returned {type(decision).__name__}, "
                    f"not a PolicyDecision"
                )
        except _FATAL:
            raise
        except Exception as error:
            latency_ms = _elapsed_ms(started)
            return self._fall_back(context, error, latency_ms)
        audit = dict(decision.audit)
        audit.update(policy=self.policy.name, latency_ms=_elapsed_ms(started), fallback_used=False)
        return decision, audit

    def _fall_back(
        self, context: ComposeContext, error: Exception, latency_ms: float
    ) -> tuple[PolicyDecision, dict[str, Any]]:
        reason = _message(error)
        # keep what the failing policy knew (model, tokens, raw reply, retries, repair)
        audit: dict[str, Any] = dict(getattr(error, "audit", None) or {})
        audit.update(
            policy=self.policy.name,
            latency_ms=latency_ms,
            fallback_used=True,
            fallback_reason=reason,
        )
        if self.fallback is not None:
            audit["fallback_policy"] = self.fallback.name
            started = time.perf_counter()
            try:
                decision = self.fallback.propose(context)
            except _FATAL:
                raise
            except Exception as fallback_error:
                audit["fallback_error"] = _message(fallback_error)
            else:
                audit["fallback_latency_ms"] = _elapsed_ms(started)
                audit["fallback_audit"] = dict(decision.audit)
                return decision, audit
        empty = LlmPlanProposal(ts=context.ts, items=[], notes=f"no plan this cycle: {reason}")
        return PolicyDecision(proposal=empty), audit


def _dust_closes(
    items: list[LlmDecisionItem], portfolio: PortfolioView
) -> dict[int, GuardrailOutcome]:
    """Rejections of the items that would reduce a position marked dust (by their index).

    A dust position is below the exchange's minimum order size: its close would
    be refused every cycle, so it is not proposed (adding to it is allowed).
    """
    skipped: dict[int, GuardrailOutcome] = {}
    if not any(position.dust for position in portfolio.positions.values()):
        return skipped
    for index, item in enumerate(items):
        position = portfolio.positions.get(item.instrument.symbol)
        if position is None or not position.dust or item.action == "noop":
            continue
        held, target = position.quantity, 0.0 if item.action == "flat" else item.target_qty
        if target * held > 0 and abs(target) >= abs(held):
            continue
        skipped[index] = GuardrailOutcome(
            symbol=item.instrument.symbol,
            action=item.action,
            status="rejected",
            requested_qty=item.target_qty,
            final_target_qty=held,
            reasons=[DUST_REASON],
        )
    return skipped


def _counts(outcomes: list[GuardrailOutcome]) -> dict[str, int]:
    counts = {"accepted": 0, "clamped": 0, "rejected": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _message(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if isinstance(error, StrategyAgentError) else f"{type(error).__name__}: {text}"
