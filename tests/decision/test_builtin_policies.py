"""Built-in rules on hand-made feature vectors: signals, sizing, noop when matched, registry."""

from __future__ import annotations

from typing import Any

import pytest

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.decision.builtin_policies import (
    BUILTIN_POLICIES,
    BuyAndHoldPolicy,
    EmaCrossoverPolicy,
    NoopPolicy,
    RsiReversionPolicy,
    builtin_policy,
    position_size,
)
from strategy_agent.decision.composer import GuardedComposer
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.interfaces import Policy
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import (
    ComposeContext,
    FeatureVector,
    InstrumentRef,
    LlmDecisionItem,
    MarketRules,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
)

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
PRICES = {BTC: 100.0, ETH: 10.0, SOL: 1.0}
NOW = 1_700_000_000_000
# Two symbols, 40 % cap, gross 1.0: weight min(0.4, 1.0 / 2) = 0.4 -> 0.95 x 4,000 = 3,800.
LIMITS = GuardrailLimits(symbols=[BTC, ETH], max_position_pct=0.4)
FULL_BTC = 38.0
FULL_ETH = 380.0


def vector(symbol: str, **values: float) -> FeatureVector:
    return FeatureVector(
        ts=NOW, instrument=InstrumentRef(symbol=symbol), values={"close": PRICES[symbol], **values}
    )


def context(
    features: list[FeatureVector],
    held: dict[str, float] | None = None,
    limits: GuardrailLimits = LIMITS,
    prices: dict[str, float] | None = None,
) -> ComposeContext:
    held = held or {}
    cash = 10_000.0 - sum(q * PRICES[s] for s, q in held.items())
    return ComposeContext(
        ts=NOW,
        compose_id="c1",
        features=features,
        portfolio=PortfolioView(
            ts=NOW,
            cash=cash,
            positions={
                s: PositionSnapshot(instrument=InstrumentRef(symbol=s), quantity=q)
                for s, q in held.items()
            },
            total_value=10_000.0,
            available_cash=cash,
        ),
        digest=TradeDigest(ts=NOW),
        prompt_text="rule",
        market_snapshot=PRICES if prices is None else prices,
        constraints=limits.model_dump(mode="json"),
    )


def items_of(policy: Policy, ctx: ComposeContext) -> dict[str, LlmDecisionItem]:
    decision = policy.propose(ctx)
    assert decision.proposal.ts == ctx.ts
    items = decision.proposal.items
    assert all(i.rationale for i in items)
    assert [i.instrument.symbol for i in items] == [BTC, ETH]
    return {i.instrument.symbol: i for i in items}


def action_and_target(item: LlmDecisionItem) -> tuple[str, float]:
    return item.action, round(item.target_qty, 9)


# --- sizing --------------------------------------------------------------------------------------


def test_position_size_is_an_equal_share_within_the_caps() -> None:
    assert position_size(LIMITS, 10_000, 100.0, BTC) == pytest.approx(FULL_BTC)
    three = GuardrailLimits(symbols=[BTC, ETH, SOL], max_position_pct=0.5)
    assert position_size(three, 9_000, 1.0, SOL) == pytest.approx(0.95 * 3_000)  # gross / 3
    capped = LIMITS.model_copy(update={"max_position_qty": {BTC: 10.0}})
    assert position_size(capped, 10_000, 100.0, BTC) == pytest.approx(9.5)
    assert position_size(LIMITS, 0.0, 100.0, BTC) == 0.0


def test_position_size_counts_contracts_of_the_contract_size() -> None:
    # one contract of 0.01 BTC at 100 is worth 1: 3,800 of notional is 3,800 contracts
    assert position_size(LIMITS, 10_000, 100.0, BTC, contract_size=0.01) == pytest.approx(3_800)
    assert position_size(LIMITS, 10_000, 100.0, BTC, contract_size=10) == pytest.approx(3.8)


def test_builtin_policy_sizes_with_the_rules_it_is_given() -> None:
    class Contracts(MarketRulesProvider):
        def rules_for(self, symbol: str) -> MarketRules:
            return MarketRules(symbol=symbol, qty_step=0.001, contract_size=0.1)

    policy = builtin_policy("buy_and_hold", Contracts())
    items = items_of(policy, context([vector(BTC), vector(ETH)]))
    assert action_and_target(items[BTC]) == ("buy", FULL_BTC * 10)
    assert action_and_target(items[ETH]) == ("buy", FULL_ETH * 10)


def test_equal_weight_longs_pass_the_guardrails_unclamped() -> None:
    class Lots(MarketRulesProvider):
        def rules_for(self, symbol: str) -> MarketRules:
            return MarketRules(symbol=symbol, qty_step=0.001, min_notional=5)

    limits = GuardrailLimits(symbols=[BTC, ETH, SOL], max_position_pct=0.4)  # fees 10, slip 5 bps
    ctx = context([vector(BTC), vector(ETH), vector(SOL)], limits=limits)
    result = GuardedComposer(BuyAndHoldPolicy(), limits, Lots()).compose(ctx)
    assert [o.status for o in result.outcomes] == ["accepted"] * 3
    assert [i.quantity for i in result.instructions] == [31.666, 316.666, 3166.666]


# --- buy and hold ---------------------------------------------------------------------------------


def test_buy_and_hold_buys_every_symbol_then_holds() -> None:
    items = items_of(BuyAndHoldPolicy(), context([vector(BTC), vector(ETH)]))
    assert action_and_target(items[BTC]) == ("buy", FULL_BTC)
    assert action_and_target(items[ETH]) == ("buy", FULL_ETH)
    assert items[BTC].confidence == 1.0
    items = items_of(BuyAndHoldPolicy(), context([vector(BTC), vector(ETH)], held={BTC: 20.0}))
    assert action_and_target(items[BTC]) == ("noop", 20.0)
    assert items[ETH].action == "buy"


# --- EMA crossover ----------------------------------------------------------------------------------


def test_ema_crossover_goes_long_in_an_uptrend_and_flat_otherwise() -> None:
    features = [vector(BTC, ema_12=101, ema_26=100), vector(ETH, ema_12=9, ema_26=10)]
    items = items_of(EmaCrossoverPolicy(), context(features, held={ETH: 50.0}))
    assert action_and_target(items[BTC]) == ("buy", FULL_BTC)
    assert action_and_target(items[ETH]) == ("flat", 0.0)
    assert "ema_12 9 <= ema_26 10" in (items[ETH].rationale or "")


def test_ema_crossover_noops_when_the_position_already_matches() -> None:
    features = [vector(BTC, ema_12=101, ema_26=100), vector(ETH, ema_12=9, ema_26=10)]
    items = items_of(EmaCrossoverPolicy(), context(features, held={BTC: FULL_BTC * 1.04}))
    assert items[BTC].action == "noop"
    assert items[BTC].target_qty == pytest.approx(FULL_BTC * 1.04)
    assert items[ETH].action == "noop"  # flat already
    items = items_of(EmaCrossoverPolicy(), context(features, held={BTC: FULL_BTC * 0.9}))
    assert action_and_target(items[BTC]) == ("buy", FULL_BTC)  # 10 % off: top up


def test_ema_crossover_goes_short_when_allowed() -> None:
    limits = LIMITS.model_copy(update={"market_type": "margin", "allow_short": True})
    features = [vector(BTC, ema_12=99, ema_26=100), vector(ETH, ema_12=11, ema_26=10)]
    items = items_of(EmaCrossoverPolicy(), context(features, held={BTC: 5.0}, limits=limits))
    assert action_and_target(items[BTC]) == ("sell", -FULL_BTC)
    assert items[ETH].action == "buy"


def test_ema_crossover_trend_filter_needs_close_above_ema_50() -> None:
    features = [
        vector(BTC, ema_12=101, ema_26=100, ema_50=120),  # close 100 below ema_50
        vector(ETH, ema_12=11, ema_26=10, ema_50=8),
    ]
    items = items_of(EmaCrossoverPolicy(trend_filter=True), context(features, held={BTC: 5.0}))
    assert items[BTC].action == "flat"
    assert "close below ema_50" in (items[BTC].rationale or "")
    assert items[ETH].action == "buy"
    items = items_of(EmaCrossoverPolicy(), context(features))
    assert items[BTC].action == "buy"  # filter off by default


def test_ema_crossover_waits_during_warm_up_and_without_price() -> None:
    features = [vector(BTC, ema_12=101), vector(ETH, ema_12=11, ema_26=10)]
    items = items_of(EmaCrossoverPolicy(), context(features, prices={BTC: 100.0}))
    assert items[BTC].action == "noop"
    assert "warm-up" in (items[BTC].rationale or "")
    assert items[ETH].action == "buy"  # priced from the features' close
    no_price = [FeatureVector(ts=NOW, instrument=InstrumentRef(symbol=BTC), values={})]
    items = items_of(EmaCrossoverPolicy(), context(no_price, prices={}))
    assert items[BTC].action == "noop"
    assert "no price" in (items[BTC].rationale or "")


# --- RSI reversion -----------------------------------------------------------------------------------


def test_rsi_reversion_buys_oversold_exits_rebounds_holds_between() -> None:
    features = [vector(BTC, rsi_14=25), vector(ETH, rsi_14=60)]
    items = items_of(RsiReversionPolicy(), context(features, held={ETH: 100.0}))
    assert action_and_target(items[BTC]) == ("buy", FULL_BTC)
    assert action_and_target(items[ETH]) == ("flat", 0.0)
    features = [vector(BTC, rsi_14=40), vector(ETH, rsi_14=54.9)]
    items = items_of(RsiReversionPolicy(), context(features, held={ETH: 100.0}))
    assert action_and_target(items[BTC]) == ("noop", 0.0)
    assert action_and_target(items[ETH]) == ("noop", 100.0)


def test_rsi_reversion_noops_when_already_positioned_or_warming_up() -> None:
    features = [vector(BTC, rsi_14=20), vector(ETH)]
    items = items_of(RsiReversionPolicy(), context(features, held={BTC: FULL_BTC}))
    assert items[BTC].action == "noop"
    assert items[ETH].action == "noop"
    assert "warm-up" in (items[ETH].rationale or "")


# --- noop and the registry --------------------------------------------------------------------------


def test_noop_policy_holds_every_symbol() -> None:
    items = items_of(NoopPolicy(), context([], held={BTC: 3.0}))
    assert [action_and_target(i) for i in items.values()] == [("noop", 3.0), ("noop", 0.0)]


def test_noop_policy_works_without_constraints() -> None:
    ctx = context([vector(ETH)]).model_copy(update={"constraints": None})
    decision = NoopPolicy().propose(ctx)
    assert [i.instrument.symbol for i in decision.proposal.items] == [ETH]


@pytest.mark.parametrize("constraints", [None, {"symbols": []}, {"nonsense": 1}])
def test_rules_refuse_missing_or_broken_constraints(constraints: dict[str, Any] | None) -> None:
    ctx = context([vector(BTC)]).model_copy(update={"constraints": constraints})
    with pytest.raises(ConfigurationError, match=r"context\.constraints"):
        EmaCrossoverPolicy().propose(ctx)


def test_registry_names_and_builder() -> None:
    assert set(BUILTIN_POLICIES) == {"buy_and_hold", "ema_crossover", "rsi_reversion", "noop"}
    for name, policy_class in BUILTIN_POLICIES.items():
        policy = builtin_policy(name)
        assert isinstance(policy, policy_class)
        assert policy.name == name
        assert (type(policy).__doc__ or "").strip()  # the factory shows it as the prompt


def test_unknown_builtin_policy_lists_the_valid_names() -> None:
    with pytest.raises(ConfigurationError) as raised:
        builtin_policy("moon_shot")
    message = str(raised.value)
    assert "'moon_shot'" in message
    assert "buy_and_hold, ema_crossover, noop, rsi_reversion" in message
