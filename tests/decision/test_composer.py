"""GuardedComposer: guarding a plan, fallback on failure, fatal errors re-raised, audit content."""

from __future__ import annotations

from typing import Any

import pytest

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.decision.composer import GuardedComposer
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.interfaces import Policy, PolicyDecision
from strategy_agent.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidPlanError,
    ProviderTimeoutError,
)
from strategy_agent.models import (
    ComposeContext,
    GuardrailOutcome,
    InstrumentRef,
    LlmDecisionItem,
    LlmPlanProposal,
    MarketRules,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradeDigestEntry,
)

BTC, ETH = "BTC/USDT", "ETH/USDT"
PRICES = {BTC: 100.0, ETH: 10.0}
NOW = 1_700_000_000_000
LIMITS = GuardrailLimits(
    symbols=[BTC, ETH],
    max_position_pct=0.5,
    fee_bps=0.0,
    slippage_bps=0.0,
    cooldown_ms=3_600_000,
)


class LotRules(MarketRulesProvider):
    def rules_for(self, symbol: str) -> MarketRules:
        return MarketRules(symbol=symbol, qty_step=0.001)


class ScriptedPolicy(Policy):
    """Answers with a fixed decision, or raises a fixed error; remembers its contexts."""

    def __init__(
        self, answer: PolicyDecision | BaseException | Any, name: str = "scripted"
    ) -> None:
        self.answer = answer
        self.name = name
        self.contexts: list[ComposeContext] = []

    def propose(self, context: ComposeContext) -> PolicyDecision:
        self.contexts.append(context)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer  # type: ignore[no-any-return]


def buy(symbol: str, target: float, rationale: str = "why") -> LlmDecisionItem:
    return LlmDecisionItem(
        instrument=InstrumentRef(symbol=symbol),
        action="buy",
        target_qty=target,
        confidence=0.9,
        rationale=rationale,
    )


def decision(*items: LlmDecisionItem, ts: int = NOW, **audit: Any) -> PolicyDecision:
    return PolicyDecision(proposal=LlmPlanProposal(ts=ts, items=list(items)), audit=audit)


def context(
    *,
    prices: dict[str, float] = PRICES,
    digest: TradeDigest | None = None,
    constraints: dict[str, Any] | None = None,
    btc_held: float = 0.0,
) -> ComposeContext:
    positions = (
        {BTC: PositionSnapshot(instrument=InstrumentRef(symbol=BTC), quantity=btc_held)}
        if btc_held
        else {}
    )
    cash = 10_000.0 - btc_held * PRICES[BTC]
    return ComposeContext(
        ts=NOW,
        compose_id="c7",
        features=[],
        portfolio=PortfolioView(
            ts=NOW, cash=cash, positions=positions, total_value=10_000.0, available_cash=cash
        ),
        digest=digest or TradeDigest(ts=NOW),
        prompt_text="test",
        market_snapshot=prices,
        constraints=constraints if constraints is not None else LIMITS.model_dump(mode="json"),
    )


def composer(policy: Policy, fallback: Policy | None = None) -> GuardedComposer:
    return GuardedComposer(policy, LIMITS, LotRules(), fallback=fallback)


def test_compose_guards_the_plan_and_audits_it() -> None:
    policy = ScriptedPolicy(decision(buy(BTC, 80), buy(ETH, 10), model="m1", tokens=42))
    result = composer(policy).compose(context())
    assert [(i.instruction_id, i.quantity) for i in result.instructions] == [
        ("c7:BTC/USDT", 50.0),
        ("c7:ETH/USDT", 10.0),
    ]
    assert [o.status for o in result.outcomes] == ["clamped", "accepted"]
    assert result.proposal is not None and len(result.proposal.items) == 2
    audit = result.audit
    assert audit["policy"] == "scripted"
    assert (audit["accepted"], audit["clamped"], audit["rejected"]) == (1, 1, 0)
    assert audit["instructions"] == 2
    assert audit["fallback_used"] is False
    assert isinstance(audit["latency_ms"], float) and audit["latency_ms"] >= 0
    assert (audit["model"], audit["tokens"]) == ("m1", 42)  # the policy's own audit is kept


def test_policy_rejected_items_become_rejected_outcomes() -> None:
    unparsed = GuardrailOutcome(
        symbol="?", action="buy", status="rejected", reasons=["item 2 has no symbol"]
    )
    answer = PolicyDecision(
        proposal=LlmPlanProposal(ts=NOW, items=[buy(BTC, 1)]), rejected_items=[unparsed]
    )
    result = composer(ScriptedPolicy(answer)).compose(context())
    assert result.outcomes[-1] == unparsed
    assert len(result.outcomes) == 2
    assert (result.audit["accepted"], result.audit["rejected"]) == (1, 1)


def test_prices_come_from_the_market_snapshot() -> None:
    result = composer(ScriptedPolicy(decision(buy(ETH, 1)))).compose(context(prices={BTC: 100.0}))
    assert result.instructions == []
    assert "no price for ETH/USDT" in result.outcomes[0].reasons[0]


def test_cooldown_reads_the_context_digest() -> None:
    entry = TradeDigestEntry(instrument=InstrumentRef(symbol=BTC), last_loss_ts=NOW - 60_000)
    digest = TradeDigest(ts=NOW, by_instrument={BTC: entry})
    result = composer(ScriptedPolicy(decision(buy(BTC, 1)))).compose(context(digest=digest))
    assert result.instructions == []
    assert "cooling down" in result.outcomes[0].reasons[0]


def test_proposal_ts_is_the_context_ts() -> None:
    result = composer(ScriptedPolicy(decision(buy(BTC, 1), ts=123))).compose(context())
    assert result.proposal is not None and result.proposal.ts == NOW
    assert result.audit["proposal_ts_replaced"] == 123


def test_missing_constraints_are_filled_from_the_limits() -> None:
    policy = ScriptedPolicy(decision())
    composer(policy).compose(context(constraints={}).model_copy(update={"constraints": None}))
    assert policy.contexts[0].constraints == LIMITS.model_dump(mode="json")


@pytest.mark.parametrize(
    "error",
    [
        InvalidPlanError("the reply contains no JSON object"),
        ProviderTimeoutError("no answer in 60 s"),
        RuntimeError("boom"),
    ],
)
def test_policy_failure_uses_the_fallback(error: Exception) -> None:
    fallback = ScriptedPolicy(decision(buy(ETH, 5), model="rule"), name="backup")
    result = composer(ScriptedPolicy(error), fallback).compose(context())
    assert [(i.instrument.symbol, i.quantity) for i in result.instructions] == [(ETH, 5.0)]
    audit = result.audit
    assert audit["fallback_used"] is True
    assert str(error) in audit["fallback_reason"]
    assert audit["fallback_policy"] == "backup"
    assert audit["fallback_audit"] == {"model": "rule"}
    assert audit["policy"] == "scripted"
    assert audit["accepted"] == 1


def test_non_domain_errors_name_their_type_in_the_reason() -> None:
    result = composer(ScriptedPolicy(RuntimeError("boom"))).compose(context())
    assert result.audit["fallback_reason"] == "RuntimeError: boom"


def test_policy_failure_without_fallback_is_an_empty_plan() -> None:
    result = composer(ScriptedPolicy(InvalidPlanError("bad json"))).compose(context())
    assert result.instructions == []
    assert result.outcomes == []
    assert result.proposal is not None
    assert result.proposal.items == [] and result.proposal.ts == NOW
    assert "bad json" in (result.proposal.notes or "")
    assert result.audit["fallback_used"] is True
    assert result.audit["fallback_reason"] == "bad json"


def test_failing_fallback_gives_an_empty_plan_and_says_why() -> None:
    fallback = ScriptedPolicy(RuntimeError("rule broke"), name="backup")
    result = composer(ScriptedPolicy(InvalidPlanError("bad json")), fallback).compose(context())
    assert result.instructions == []
    assert result.audit["fallback_error"] == "RuntimeError: rule broke"


def test_a_non_decision_answer_uses_the_fallback() -> None:
    result = composer(ScriptedPolicy({"items": []})).compose(context())
    assert result.audit["fallback_used"] is True
    assert "not a PolicyDecision" in result.audit["fallback_reason"]


@pytest.mark.parametrize(
    "error", [AuthenticationError("key refused"), ConfigurationError("unknown model")]
)
def test_fatal_errors_are_re_raised_without_fallback(error: Exception) -> None:
    fallback = ScriptedPolicy(decision(buy(ETH, 5)), name="backup")
    with pytest.raises(type(error), match=str(error)):
        composer(ScriptedPolicy(error), fallback).compose(context())
    assert fallback.contexts == []


def test_fatal_error_of_the_fallback_is_re_raised() -> None:
    fallback = ScriptedPolicy(ConfigurationError("constraints missing"), name="backup")
    with pytest.raises(ConfigurationError):
        composer(ScriptedPolicy(RuntimeError("boom")), fallback).compose(context())


def test_outcomes_cover_every_item_of_a_messy_plan() -> None:
    plan = decision(buy(BTC, 1), buy(BTC, 2), buy("DOGE/USDT", 1), buy(ETH, 1))
    result = composer(ScriptedPolicy(plan)).compose(context(btc_held=0.0))
    assert [o.status for o in result.outcomes] == ["rejected", "rejected", "rejected", "accepted"]
    assert result.audit["rejected"] == 3
