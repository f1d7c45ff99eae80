"""Contract size is counted wherever a quantity becomes money: guardrails, paper fee, ledger, rules.

A linear swap of 0.01 BTC per contract at 48,000 USDT: one contract is worth 480
USDT. Quantities are in contracts; notional = contracts x 0.01 x price.
"""

from __future__ import annotations

import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.data.market_rules import StaticMarketRules
from strategy_agent.decision.builtin_policies import BuyAndHoldPolicy
from strategy_agent.decision.composer import GuardedComposer
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.interfaces import Policy, PolicyDecision
from strategy_agent.execution.fills import fill_from_result
from strategy_agent.execution.paper_trading import PaperExecutionGateway
from strategy_agent.models import (
    ComposeContext,
    FeatureVector,
    InstrumentRef,
    LlmDecisionItem,
    LlmPlanProposal,
    MarketRules,
    TradeDigest,
)
from strategy_agent.portfolio.ledger import Ledger

SWAP = "BTC/USDT:USDT"
PRICE = 48_000.0
CONTRACT = 0.01  # BTC per contract: one contract is worth 480 USDT
NOW = 1_700_000_000_000
RULES = StaticMarketRules(
    {SWAP: MarketRules(symbol=SWAP, qty_step=0.01, min_qty=0.01, contract_size=CONTRACT)}
)


class TargetPolicy(Policy):
    """Asks for a fixed number of contracts."""

    name = "target"

    def __init__(self, contracts: float) -> None:
        self.contracts = contracts

    def propose(self, context: ComposeContext) -> PolicyDecision:
        item = LlmDecisionItem(
            instrument=InstrumentRef(symbol=SWAP), action="buy", target_qty=self.contracts
        )
        return PolicyDecision(proposal=LlmPlanProposal(ts=context.ts, items=[item]))


def limits(max_leverage: float) -> GuardrailLimits:
    return GuardrailLimits(
        symbols=[SWAP],
        market_type="swap",
        max_leverage=max_leverage,
        max_position_pct=0.5,
        max_gross_exposure=1.0,
        fee_bps=10.0,
        slippage_bps=0.0,
    )


def run_cycle(policy: Policy, guard: GuardrailLimits) -> Ledger:
    """Compose, guard, execute on paper and apply the fills to the real ledger."""
    ledger = Ledger(
        10_000, market_type="swap", max_leverage=guard.max_leverage, strategy_id="s1", rules=RULES
    )
    context = ComposeContext(
        ts=NOW,
        compose_id="c1",
        features=[
            FeatureVector(ts=NOW, instrument=InstrumentRef(symbol=SWAP), values={"close": PRICE})
        ],
        portfolio=ledger.get_view(NOW),
        digest=TradeDigest(ts=NOW),
        prompt_text="contracts",
        market_snapshot={SWAP: PRICE},
    )
    result = GuardedComposer(policy, guard, RULES).compose(context)
    gateway = PaperExecutionGateway(
        ledger, {SWAP: PRICE}.get, ManualClock(NOW), fee_bps=10.0, slippage_bps=0.0
    )
    executed = gateway.execute(result.instructions)
    assert [(r.status, r.reason) for r in executed] == [("filled", None)] * len(executed)
    for filled in executed:
        ledger.apply(fill_from_result(filled, "s1"))
    return ledger


@pytest.mark.parametrize("max_leverage", [3.0, 100.0])
def test_a_guarded_order_in_contracts_fills_with_the_right_fee_and_exposure(
    max_leverage: float,
) -> None:
    # 10 contracts = 4,800 USDT = 48 % of equity, under the 50 % cap
    ledger = run_cycle(TargetPolicy(10.0), limits(max_leverage))
    assert ledger.quantity(SWAP) == pytest.approx(10.0)
    assert ledger.fees_paid == pytest.approx(4.80)  # 10 bps of 4,800, not of 480,000
    view = ledger.get_view(NOW)
    assert view.positions[SWAP].notional == pytest.approx(4_800.0)
    assert view.gross_exposure == pytest.approx(4_800.0)
    assert view.total_value == pytest.approx(10_000 - 4.80)
    assert ledger.gross_exposure <= 0.5 * ledger.equity  # the 50 % cap, counted in USDT
    assert ledger.cash == pytest.approx(10_000 - 4_800 - 4.80)


def test_the_ledger_values_contracts_and_their_pnl_with_the_contract_size() -> None:
    ledger = run_cycle(TargetPolicy(10.0), limits(3.0))
    ledger.mark({SWAP: 49_000.0}, NOW + 1)
    assert ledger.unrealized_pnl == pytest.approx(10 * CONTRACT * 1_000)  # 100 USDT, not 10,000
    assert ledger.equity == pytest.approx(10_000 - 4.80 + 100.0)
    assert ledger.get_view().positions[SWAP].pnl_pct == pytest.approx(1_000 / PRICE * 100)


def test_a_built_in_rule_sizes_its_position_in_contracts() -> None:
    # one of one symbol, 50 % cap: 0.95 x 5,000 USDT = 4,750 USDT = 9.89 contracts of 480
    ledger = run_cycle(BuyAndHoldPolicy(rules=RULES), limits(3.0))
    view = ledger.get_view(NOW)
    assert view.positions[SWAP].quantity == pytest.approx(9.89)
    assert view.positions[SWAP].notional == pytest.approx(9.89 * 480.0)
    assert ledger.gross_exposure / ledger.equity == pytest.approx(0.4748, abs=1e-3)
