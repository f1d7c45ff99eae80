"""Guardrails: every check on both sides, duplicates, ordering, flips, rounding, minimums."""

from __future__ import annotations

import math
from typing import Any

import pytest

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.data.market_rules import quote_of
from strategy_agent.decision.guardrail_checks import (
    check_action,
    check_confidence,
    check_cooldown,
    check_known_symbol,
    check_max_positions,
    clamp_cash,
    clamp_gross,
    clamp_into_band,
    clamp_net,
    clamp_position_notional,
    clamp_position_qty,
    clamp_short,
    floor_to_step,
    is_increasing,
    round_order,
)
from strategy_agent.decision.guardrail_orders import PlannedOrder, instructions_for
from strategy_agent.decision.guardrails import GuardrailLimits, apply_guardrails
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import (
    ExchangeConfig,
    GuardrailOutcome,
    InstrumentRef,
    LlmDecisionItem,
    MarketRules,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradeDigestEntry,
    TradeInstruction,
    TradingConfig,
)

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
PRICES = {BTC: 100.0, ETH: 10.0, SOL: 1.0}
NOW = 1_700_000_000_000
HOUR = 3_600_000


class FakeRules(MarketRulesProvider):
    """Rules from a table; symbols outside it get ``default`` (or an error when None)."""

    def __init__(
        self, table: dict[str, MarketRules] | None = None, default_step: float | None = 0.001
    ) -> None:
        self.table = table or {}
        self.default_step = default_step

    def rules_for(self, symbol: str) -> MarketRules:
        if symbol in self.table:
            return self.table[symbol]
        if self.default_step is None:
            raise ConfigurationError(f"no market rules for {symbol!r}; known: {sorted(self.table)}")
        return MarketRules(symbol=symbol, qty_step=self.default_step)


def limits(**overrides: Any) -> GuardrailLimits:
    values: dict[str, Any] = {
        "symbols": [BTC, ETH, SOL],
        "market_type": "spot",
        "max_position_pct": 1.0,
        "max_gross_exposure": 1.0,
        "max_net_exposure": 1.0,
        "max_positions": 3,
        "fee_bps": 0.0,
        "slippage_bps": 0.0,
    }
    values.update(overrides)
    return GuardrailLimits(**values)


def margin(**overrides: Any) -> GuardrailLimits:
    values: dict[str, Any] = {
        "market_type": "margin",
        "allow_short": True,
        "max_leverage": 2.0,
        "max_position_pct": 2.0,
        "max_gross_exposure": 2.0,
        "max_net_exposure": 2.0,
    }
    values.update(overrides)
    return limits(**values)


def portfolio(
    cash: float = 10_000.0,
    positions: dict[str, float] | None = None,
    prices: dict[str, float] = PRICES,
    total_value: float | None = None,
) -> PortfolioView:
    """A cash-settled book: equity = cash + sum(quantity x price)."""
    positions = positions or {}
    equity = cash + sum(q * prices[s] for s, q in positions.items())
    return PortfolioView(
        ts=NOW,
        cash=cash,
        positions={
            s: PositionSnapshot(
                instrument=InstrumentRef(symbol=s), quantity=q, mark_price=prices[s]
            )
            for s, q in positions.items()
        },
        total_value=equity if total_value is None else total_value,
        available_cash=cash,
    )


def item(
    symbol: str,
    action: str,
    target: float = 0.0,
    confidence: float | None = None,
    rationale: str | None = None,
) -> LlmDecisionItem:
    return LlmDecisionItem(
        instrument=InstrumentRef(symbol=symbol),
        action=action,  # type: ignore[arg-type]
        target_qty=target,
        confidence=confidence,
        rationale=rationale,
    )


def run(
    items: list[LlmDecisionItem],
    *,
    book: PortfolioView | None = None,
    lim: GuardrailLimits | None = None,
    rules: MarketRulesProvider | None = None,
    prices: dict[str, float] = PRICES,
    digest: TradeDigest | None = None,
    now: int = NOW,
) -> tuple[list[TradeInstruction], list[GuardrailOutcome]]:
    return apply_guardrails(
        items,
        book or portfolio(),
        prices,
        digest or TradeDigest(ts=now),
        lim or limits(),
        rules or FakeRules(),
        "c1",
        now,
    )


def only(instructions: list[TradeInstruction]) -> TradeInstruction:
    assert len(instructions) == 1, instructions
    return instructions[0]


def signed(instruction: TradeInstruction) -> float:
    return instruction.quantity if instruction.side == "buy" else -instruction.quantity


# --- limits from the configuration --------------------------------------------------------


def test_limits_on_spot_are_long_only_at_one_x() -> None:
    trading = TradingConfig(allow_short=True, max_leverage=3, max_gross_exposure=2.5)
    result = GuardrailLimits.from_config(trading, ExchangeConfig(market_type="spot"))
    assert result.allow_short is False
    assert result.max_leverage == 1.0
    assert result.max_gross_exposure == 1.0
    assert result.max_net_exposure == 1.0


def test_limits_on_margin_cap_gross_by_leverage_and_convert_cooldown() -> None:
    trading = TradingConfig(
        symbols=[BTC, ETH],
        interval="15m",
        allow_short=True,
        max_leverage=2,
        max_gross_exposure=5,
        max_net_exposure=1.5,
        max_position_qty={BTC: 3.0},
        min_confidence=0.6,
        cooldown_bars=4,
    )
    exchange = ExchangeConfig(market_type="margin", fee_bps=5, slippage_bps=2)
    result = GuardrailLimits.from_config(trading, exchange)
    assert result.symbols == [BTC, ETH]
    assert result.allow_short is True
    assert result.max_leverage == 2
    assert result.max_gross_exposure == 2
    assert result.max_net_exposure == 1.5
    assert result.max_position_qty == {BTC: 3.0}
    assert result.min_confidence == 0.6
    assert result.cooldown_ms == 4 * 900_000
    assert (result.fee_bps, result.slippage_bps) == (5, 2)


def test_limits_round_trip_through_their_json_dump() -> None:
    original = margin(max_position_qty={BTC: 2.0}, cooldown_ms=HOUR)
    assert GuardrailLimits.model_validate(original.model_dump(mode="json")) == original


def test_limits_refuse_non_positive_quantity_caps() -> None:
    with pytest.raises(ValueError, match="max_position_qty"):
        limits(max_position_qty={BTC: 0.0})


# --- action semantics -----------------------------------------------------------------------


def test_buy_above_current_becomes_one_instruction_with_meta() -> None:
    instructions, outcomes = run([item(BTC, "buy", 10, confidence=0.8, rationale="trend up")])
    order = only(instructions)
    assert order.instruction_id == "c1:BTC/USDT"
    assert order.compose_id == "c1"
    assert (order.side, order.quantity) == ("buy", 10)
    assert order.meta == {
        "rationale": "trend up",
        "confidence": 0.8,
        "action": "buy",
        "target_qty": 10.0,
    }
    assert outcomes[0].status == "accepted"
    assert outcomes[0].reasons == []
    assert (outcomes[0].final_target_qty, outcomes[0].order_qty) == (10, 10)


def test_buy_not_above_current_is_rejected() -> None:
    instructions, outcomes = run([item(BTC, "buy", 0.5)], book=portfolio(positions={BTC: 1.0}))
    assert instructions == []
    assert outcomes[0].status == "rejected"
    assert outcomes[0].reasons[0].startswith("action buy but target 0.5 is not above current 1")


def test_sell_below_current_is_accepted_and_above_is_rejected() -> None:
    book = portfolio(positions={BTC: 1.0})
    instructions, _ = run([item(BTC, "sell", 0.4)], book=book)
    assert (only(instructions).side, only(instructions).quantity) == ("sell", 0.6)
    instructions, outcomes = run([item(BTC, "sell", 2.0)], book=book)
    assert instructions == []
    assert "action sell but target 2 is not below current 1" in outcomes[0].reasons[0]


def test_flat_closes_the_exact_position_without_dust() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.01)})
    book = portfolio(positions={BTC: 0.12345})
    instructions, outcomes = run([item(BTC, "flat", 3.0)], book=book, rules=rules)
    assert (only(instructions).side, only(instructions).quantity) == ("sell", 0.12345)
    assert outcomes[0].final_target_qty == 0.0


def test_flat_when_already_flat_emits_nothing() -> None:
    instructions, outcomes = run([item(BTC, "flat")])
    assert instructions == []
    assert outcomes[0].status == "accepted"
    assert outcomes[0].final_target_qty == 0.0


def test_noop_emits_nothing_whatever_its_target() -> None:
    instructions, outcomes = run([item(BTC, "noop", 5.0)], book=portfolio(positions={BTC: 1.0}))
    assert instructions == []
    assert outcomes[0].status == "accepted"
    assert outcomes[0].final_target_qty == 1.0
    assert outcomes[0].order_qty is None


def test_every_item_gets_exactly_one_outcome_in_plan_order() -> None:
    plan = [
        item(SOL, "buy", 10),
        item("DOGE/USDT", "buy", 1),
        item(BTC, "noop"),
        item(ETH, "sell", -1),
    ]
    _, outcomes = run(plan)
    assert [o.symbol for o in outcomes] == [SOL, "DOGE/USDT", BTC, ETH]
    assert [o.status for o in outcomes] == ["accepted", "rejected", "accepted", "rejected"]
    assert all(o.reasons for o in outcomes if o.status == "rejected")


# --- unknown symbols, duplicates, prices, rules -----------------------------------------------


def test_unknown_symbol_is_rejected_known_one_passes() -> None:
    instructions, outcomes = run([item("DOGE/USDT", "buy", 100), item(ETH, "buy", 1)])
    assert outcomes[0].status == "rejected"
    assert "DOGE/USDT is not one of this strategy's symbols" in outcomes[0].reasons[0]
    assert "trading.symbols" in outcomes[0].reasons[0]
    assert only(instructions).instrument.symbol == ETH


def test_identical_duplicates_keep_the_first() -> None:
    plan = [item(BTC, "buy", 1, rationale="a"), item(BTC, "buy", 1, rationale="b")]
    instructions, outcomes = run(plan)
    assert only(instructions).meta == {
        "rationale": "a",
        "confidence": None,
        "action": "buy",
        "target_qty": 1.0,
    }
    assert outcomes[0].status == "accepted"
    assert outcomes[1].status == "rejected"
    assert outcomes[1].reasons == ["duplicate of item 1 for BTC/USDT; only the first is used"]


def test_contradicting_items_for_one_symbol_are_all_rejected() -> None:
    plan = [item(BTC, "buy", 1), item(ETH, "buy", 2), item(BTC, "flat"), item(BTC, "noop")]
    instructions, outcomes = run(plan)
    assert only(instructions).instrument.symbol == ETH
    for index in (0, 2, 3):
        assert outcomes[index].status == "rejected"
        assert (
            "contradicting items for BTC/USDT (#1 buy 1, #3 flat, #4 noop)"
            in (outcomes[index].reasons[0])
        )


def test_same_action_with_other_target_contradicts() -> None:
    instructions, outcomes = run([item(BTC, "buy", 1), item(BTC, "buy", 2)])
    assert instructions == []
    assert [o.status for o in outcomes] == ["rejected", "rejected"]


def test_missing_price_rejects_trades_but_not_noop() -> None:
    prices = {BTC: 100.0, SOL: 1.0}
    instructions, outcomes = run([item(ETH, "buy", 1), item(ETH, "noop")][:1], prices=prices)
    assert instructions == []
    assert outcomes[0].reasons == [
        "no price for ETH/USDT in the market snapshot; it cannot be traded this cycle"
    ]
    instructions, outcomes = run([item(ETH, "noop")], prices=prices)
    assert outcomes[0].status == "accepted"
    instructions, outcomes = run([item(ETH, "buy", 1)])
    assert only(instructions).quantity == 1


def test_market_rules_error_rejects_the_item() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.001)}, default_step=None)
    instructions, outcomes = run([item(ETH, "buy", 1), item(BTC, "buy", 1)], rules=rules)
    assert outcomes[0].status == "rejected"
    assert "no market rules for 'ETH/USDT'" in outcomes[0].reasons[0]
    assert only(instructions).instrument.symbol == BTC


# --- confidence -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "plan_item", "min_confidence", "status"),
    [
        (0.0, item(BTC, "buy", 1, confidence=0.5), 0.6, "rejected"),
        (0.0, item(BTC, "buy", 1, confidence=0.6), 0.6, "accepted"),
        (0.0, item(BTC, "buy", 1, confidence=None), 0.6, "rejected"),
        (0.0, item(BTC, "buy", 1, confidence=None), 0.0, "accepted"),
        (2.0, item(BTC, "sell", 1, confidence=0.1), 0.6, "accepted"),
        (2.0, item(BTC, "flat", confidence=None), 0.6, "accepted"),
    ],
)
def test_min_confidence_blocks_only_exposure_increasing_items(
    held: float, plan_item: LlmDecisionItem, min_confidence: float, status: str
) -> None:
    book = portfolio(positions={BTC: held} if held else None)
    _, outcomes = run([plan_item], book=book, lim=limits(min_confidence=min_confidence))
    assert outcomes[0].status == status
    if status == "rejected":
        assert "min_confidence is 0.60" in outcomes[0].reasons[0] or (
            "below min_confidence 0.60" in outcomes[0].reasons[0]
        )


def test_low_confidence_flip_still_closes_the_old_position() -> None:
    book = portfolio(cash=5_000, positions={BTC: 50.0})
    instructions, outcomes = run(
        [item(BTC, "sell", -50, confidence=0.2)], book=book, lim=margin(min_confidence=0.5)
    )
    order = only(instructions)
    assert (order.side, order.quantity, order.meta) == (
        "sell",
        50.0,
        {"rationale": None, "confidence": 0.2, "action": "sell", "target_qty": 0.0},
    )
    assert (outcomes[0].status, outcomes[0].final_target_qty) == ("clamped", 0.0)
    assert outcomes[0].order_qty == 50.0
    assert "confidence 0.20 is below min_confidence 0.50" in outcomes[0].reasons[-1]


def test_check_confidence_both_sides() -> None:
    assert check_confidence(0.7, 0.6, increasing=True) is None
    assert check_confidence(0.5, 0.6, increasing=True) is not None
    assert check_confidence(0.5, 0.6, increasing=False) is None


# --- shorting ---------------------------------------------------------------------------------------


def test_sell_past_zero_on_spot_is_clamped_to_a_close() -> None:
    instructions, outcomes = run([item(BTC, "sell", -1)], book=portfolio(positions={BTC: 1.0}))
    assert (only(instructions).side, only(instructions).quantity) == ("sell", 1.0)
    assert outcomes[0].status == "clamped"
    assert outcomes[0].final_target_qty == 0.0
    assert outcomes[0].reasons[0].startswith("shorting is not allowed")


def test_opening_a_short_on_spot_is_rejected() -> None:
    instructions, outcomes = run([item(BTC, "sell", -1)])
    assert instructions == []
    assert outcomes[0].status == "rejected"
    assert outcomes[0].reasons[0].startswith("shorting is not allowed")


def test_opening_a_short_where_allowed_passes() -> None:
    instructions, outcomes = run([item(BTC, "sell", -1)], lim=margin())
    assert (only(instructions).side, only(instructions).quantity) == ("sell", 1)
    assert outcomes[0].status == "accepted"


def test_clamp_short_both_sides() -> None:
    assert clamp_short(-2.0, 1.0, allow_short=True) == (-2.0, None)
    target, reason = clamp_short(-2.0, 1.0, allow_short=False)
    assert target == 0.0 and reason is not None
    assert clamp_short(0.5, 1.0, allow_short=False) == (0.5, None)


# --- cool-down -----------------------------------------------------------------------------------------


def loss_digest(last_loss_ts: int) -> TradeDigest:
    entry = TradeDigestEntry(instrument=InstrumentRef(symbol=BTC), last_loss_ts=last_loss_ts)
    return TradeDigest(ts=NOW, by_instrument={BTC: entry})


def test_cooldown_blocks_new_exposure_after_a_recent_loss() -> None:
    instructions, outcomes = run(
        [item(BTC, "buy", 1)], lim=limits(cooldown_ms=HOUR), digest=loss_digest(NOW - 1000)
    )
    assert instructions == []
    assert outcomes[0].status == "rejected"
    assert "BTC/USDT is cooling down after a losing trade" in outcomes[0].reasons[0]


def test_cooldown_ends_after_cooldown_ms() -> None:
    instructions, _ = run(
        [item(BTC, "buy", 1)], lim=limits(cooldown_ms=HOUR), digest=loss_digest(NOW - HOUR)
    )
    assert only(instructions).quantity == 1


def test_cooldown_lets_reductions_through_and_flips_only_close() -> None:
    book = portfolio(positions={BTC: 2.0})
    digest = loss_digest(NOW - 1000)
    instructions, _ = run(
        [item(BTC, "sell", 1)], book=book, lim=limits(cooldown_ms=HOUR), digest=digest
    )
    assert only(instructions).quantity == 1
    instructions, outcomes = run(
        [item(BTC, "sell", -1)], book=book, lim=margin(cooldown_ms=HOUR), digest=digest
    )
    assert (only(instructions).side, only(instructions).quantity) == ("sell", 2.0)
    assert (outcomes[0].status, outcomes[0].final_target_qty) == ("clamped", 0.0)
    assert "BTC/USDT is cooling down after a losing trade" in outcomes[0].reasons[-1]


def test_check_cooldown_ignores_other_symbols_and_zero_cooldown() -> None:
    digest = loss_digest(NOW - 1000)
    assert check_cooldown(ETH, digest, NOW, HOUR, increasing=True) is None
    assert check_cooldown(BTC, digest, NOW, 0, increasing=True) is None
    assert check_cooldown(BTC, digest, NOW, HOUR, increasing=True) is not None


# --- per-instrument caps ---------------------------------------------------------------------------


def test_max_position_qty_clamps_and_lets_smaller_targets_pass() -> None:
    lim = limits(max_position_qty={BTC: 2.0})
    instructions, outcomes = run([item(BTC, "buy", 5)], lim=lim)
    assert only(instructions).quantity == 2
    assert outcomes[0].status == "clamped"
    assert outcomes[0].reasons == ["max_position_qty is 2: target 5 -> 2"]
    instructions, outcomes = run([item(BTC, "buy", 1.5)], lim=lim)
    assert only(instructions).quantity == 1.5
    assert outcomes[0].status == "accepted"


def test_max_position_qty_caps_the_short_side_of_a_flip() -> None:
    book = portfolio(positions={BTC: 1.0})
    instructions, outcomes = run(
        [item(BTC, "sell", -5)], book=book, lim=margin(max_position_qty={BTC: 2.0})
    )
    assert [(i.side, i.quantity) for i in instructions] == [("sell", 1), ("sell", 2)]
    assert (outcomes[0].final_target_qty, outcomes[0].order_qty) == (-2, 3)


def test_max_position_pct_clamps_notional() -> None:
    lim = limits(max_position_pct=0.25)  # 2,500 of 10,000 -> 25 BTC at 100
    instructions, outcomes = run([item(BTC, "buy", 40)], lim=lim)
    assert only(instructions).quantity == 25
    assert "max_position_pct 25% of equity 10,000.00 is 2,500.00" in outcomes[0].reasons[0]
    instructions, outcomes = run([item(BTC, "buy", 20)], lim=lim)
    assert only(instructions).quantity == 20
    assert outcomes[0].status == "accepted"


def test_notional_cap_counts_contract_size() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=1, contract_size=0.01)})
    lim = margin(max_position_pct=0.5)  # 5,000 of notional = 5,000 contracts of 0.01 BTC at 100
    instructions, _ = run([item(BTC, "buy", 8000)], lim=lim, rules=rules)
    assert only(instructions).quantity == 5000


def test_position_caps_with_no_equity_block_increases_but_not_closes() -> None:
    book = portfolio(cash=-100.0, positions={BTC: 1.0})  # equity 0
    instructions, outcomes = run([item(BTC, "buy", 2), item(ETH, "buy", 1)], book=book)
    assert instructions == []
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    instructions, _ = run([item(BTC, "flat")], book=book)
    assert only(instructions).quantity == 1


# --- max positions -------------------------------------------------------------------------------------


def test_max_positions_rejects_a_new_position_but_not_adding_to_one() -> None:
    book = portfolio(positions={BTC: 1.0})
    _, outcomes = run([item(ETH, "buy", 10)], book=book, lim=limits(max_positions=1))
    assert outcomes[0].status == "rejected"
    assert outcomes[0].reasons == [
        "max_positions is 1 and 1 are open (BTC/USDT); close one first (earlier in the plan works)"
    ]
    instructions, _ = run([item(BTC, "buy", 2)], book=book, lim=limits(max_positions=1))
    assert only(instructions).quantity == 1


def test_max_positions_counts_closes_of_the_same_plan() -> None:
    book = portfolio(positions={BTC: 1.0})
    plan = [item(ETH, "buy", 10), item(BTC, "flat")]
    instructions, outcomes = run(plan, book=book, lim=limits(max_positions=1))
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert [i.instrument.symbol for i in instructions] == [BTC, ETH]  # the close goes first


def test_max_positions_counts_opens_of_the_same_plan() -> None:
    plan = [item(BTC, "buy", 1), item(ETH, "buy", 1), item(SOL, "buy", 1)]
    instructions, outcomes = run(plan, lim=limits(max_positions=2))
    assert [i.instrument.symbol for i in instructions] == [BTC, ETH]
    assert outcomes[2].status == "rejected"


def test_check_max_positions_both_sides() -> None:
    assert check_max_positions(ETH, 0.0, 1.0, [BTC], 2) is None
    assert check_max_positions(ETH, 0.0, 1.0, [BTC, SOL], 2) is not None
    assert check_max_positions(ETH, 0.0, 0.0, [BTC, SOL], 2) is None  # not opening


# --- gross and net exposure -----------------------------------------------------------------------


def test_gross_cap_clamps_to_the_headroom_left() -> None:
    plan = [item(BTC, "buy", 150), item(ETH, "buy", 1000)]  # 15,000 + 10,000 of 20,000
    instructions, outcomes = run(plan, lim=margin())
    assert [i.quantity for i in instructions] == [150, 500]
    assert outcomes[0].status == "accepted"
    assert outcomes[1].status == "clamped"
    assert outcomes[1].reasons[0].startswith("max_gross_exposure 2x equity 10,000.00")


def test_gross_cap_leaves_room_for_fees_and_slippage() -> None:
    lim = margin(max_leverage=1.0, max_gross_exposure=1.0, fee_bps=10, slippage_bps=5)
    instructions, _ = run([item(BTC, "buy", 100)], lim=lim)
    quantity = only(instructions).quantity
    cost = quantity * 100 * ((1.0005 * 1.001) - 1)
    assert quantity * 100 <= 10_000 - cost
    assert quantity > 99.8


def test_gross_cap_lets_orders_within_it_pass() -> None:
    instructions, outcomes = run([item(BTC, "buy", 100), item(ETH, "sell", -900)], lim=margin())
    assert [i.quantity for i in instructions] == [100, 900]
    assert [o.status for o in outcomes] == ["accepted", "accepted"]


def test_net_cap_clamps_a_one_sided_book() -> None:
    lim = margin(max_net_exposure=0.5)
    instructions, outcomes = run([item(BTC, "buy", 80)], lim=lim)
    assert only(instructions).quantity == 50
    assert outcomes[0].reasons[0].startswith("max_net_exposure 0.5x equity 10,000.00")


def test_net_cap_lets_a_hedging_leg_pass() -> None:
    book = portfolio(positions={BTC: 50.0}, cash=5_000)  # net 5,000 = the cap of 0.5 x 10,000
    instructions, outcomes = run(
        [item(ETH, "sell", -500)], book=book, lim=margin(max_net_exposure=0.5)
    )
    assert only(instructions).quantity == 500
    assert outcomes[0].status == "accepted"


def test_closing_a_whole_hedge_passes_in_either_order() -> None:
    book = portfolio(positions={BTC: 80.0, ETH: -800.0})  # net 0, gross 16,000, equity 10,000
    lim = margin(max_net_exposure=0.5)
    for plan in ([item(BTC, "flat"), item(ETH, "flat")], [item(ETH, "flat"), item(BTC, "flat")]):
        instructions, outcomes = run(plan, book=book, lim=lim)
        assert sorted((i.instrument.symbol, i.quantity) for i in instructions) == [
            (BTC, 80.0),
            (ETH, 800.0),
        ]
        assert [o.status for o in outcomes] == ["accepted", "accepted"]


def test_closing_one_leg_of_a_hedge_is_clamped_by_the_net_cap() -> None:
    book = portfolio(positions={BTC: 80.0, ETH: -800.0})
    instructions, outcomes = run([item(ETH, "flat")], book=book, lim=margin(max_net_exposure=0.5))
    assert (only(instructions).side, only(instructions).quantity) == ("buy", 500)
    assert outcomes[0].status == "clamped"
    assert outcomes[0].final_target_qty == -300


def test_clamp_net_and_gross_keep_targets_inside_their_caps() -> None:
    assert clamp_net(5.0, 0.0, 100.0, 0.0, 1000.0, 1.0) == (5.0, None)
    target, reason = clamp_net(20.0, 0.0, 100.0, 0.0, 1000.0, 1.0)
    assert target == 10.0 and reason
    assert clamp_gross(5.0, 0.0, 100.0, 0.0, 1000.0, 1.0) == (5.0, None)
    target, _ = clamp_gross(-20.0, 0.0, 100.0, 500.0, 1000.0, 1.0)
    assert target == -5.0


# --- spot cash -------------------------------------------------------------------------------------------


def test_spot_buy_is_clamped_to_cash_with_fee_and_slippage() -> None:
    lim = limits(fee_bps=10, slippage_bps=5)
    instructions, outcomes = run([item(BTC, "buy", 20)], book=portfolio(cash=1_000), lim=lim)
    quantity = only(instructions).quantity
    cost = quantity * 100 * 1.0005 * 1.001
    assert cost <= 1_000
    assert cost > 1_000 - 0.11  # within one lot (0.001 BTC = 0.10)
    assert any(r.startswith("cash 1,000.00") for r in outcomes[0].reasons)


def test_buy_within_cash_passes_unchanged() -> None:
    instructions, outcomes = run([item(BTC, "buy", 5)], book=portfolio(cash=1_000))
    assert only(instructions).quantity == 5
    assert outcomes[0].status == "accepted"


def test_sell_before_buy_frees_the_cash_and_goes_first() -> None:
    book = portfolio(cash=0.0, positions={BTC: 10.0})
    plan = [item(ETH, "buy", 100), item(BTC, "flat")]
    instructions, outcomes = run(plan, book=book)
    assert [(i.instrument.symbol, i.side, i.quantity) for i in instructions] == [
        (BTC, "sell", 10.0),
        (ETH, "buy", 100.0),
    ]
    assert [o.symbol for o in outcomes] == [ETH, BTC]
    assert [o.status for o in outcomes] == ["accepted", "accepted"]


def test_buy_without_cash_is_rejected() -> None:
    _, outcomes = run([item(BTC, "buy", 1)], book=portfolio(cash=0.0, total_value=10_000))
    assert outcomes[0].status == "rejected"
    assert outcomes[0].reasons[-1] == "no room left within the limits above; nothing to trade"


def test_clamp_cash_only_limits_buys() -> None:
    assert clamp_cash(0.0, 1.0, 100.0, 0.0) == (0.0, None)
    target, reason = clamp_cash(3.0, 1.0, 100.0, 100.0)
    assert target == 2.0 and reason


# --- a portfolio already over a limit -------------------------------------------------------------


def test_position_over_its_cap_can_only_be_reduced() -> None:
    book = portfolio(cash=5_000, positions={BTC: 50.0})  # 5,000 of 10,000 > 30 %
    lim = limits(max_position_pct=0.3)
    instructions, outcomes = run([item(BTC, "buy", 60)], book=book, lim=lim)
    assert instructions == []
    assert outcomes[0].status == "rejected"
    instructions, outcomes = run([item(BTC, "sell", 40)], book=book, lim=lim)
    assert only(instructions).quantity == 10
    assert outcomes[0].status == "accepted"


def test_gross_over_its_cap_blocks_new_exposure_elsewhere() -> None:
    book = portfolio(cash=-2_000, positions={BTC: 120.0})  # gross 12,000 > 1 x 10,000
    lim = margin(max_leverage=1.0, max_gross_exposure=1.0, max_net_exposure=1.0)
    _, outcomes = run([item(ETH, "buy", 10)], book=book, lim=lim)
    assert outcomes[0].status == "rejected"
    instructions, _ = run([item(BTC, "sell", 100)], book=book, lim=lim)
    assert only(instructions).quantity == 20


def test_flip_of_a_position_over_its_cap_opens_at_most_the_cap() -> None:
    book = portfolio(cash=-10_000, positions={BTC: 200.0})  # 20,000 of 10,000
    instructions, outcomes = run(
        [item(BTC, "sell", -300)], book=book, lim=margin(max_position_pct=0.5)
    )
    assert [i.quantity for i in instructions] == [200, 50]
    assert (outcomes[0].final_target_qty, outcomes[0].order_qty) == (-50, 250)


# --- flips and rounding ------------------------------------------------------------------------------


def test_flip_is_a_close_then_an_open() -> None:
    book = portfolio(positions={BTC: 1.0})
    instructions, outcomes = run([item(BTC, "sell", -1)], book=book, lim=margin())
    legs = [
        (i.instruction_id, i.side, i.quantity, (i.meta or {})["target_qty"]) for i in instructions
    ]
    assert legs == [
        ("c1:BTC/USDT:1", "sell", 1.0, 0.0),
        ("c1:BTC/USDT:2", "sell", 1.0, -1.0),
    ]
    assert (outcomes[0].status, outcomes[0].final_target_qty, outcomes[0].order_qty) == (
        "accepted",
        -1,
        2.0,
    )


def test_flip_whose_close_is_capped_opens_nothing() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=1.0, max_qty=4.0)})
    book = portfolio(positions={BTC: 10.0})
    instructions, outcomes = run([item(BTC, "sell", -5)], book=book, lim=margin(), rules=rules)
    assert (only(instructions).side, only(instructions).quantity) == ("sell", 4.0)
    assert (outcomes[0].status, outcomes[0].final_target_qty) == ("clamped", 6.0)
    assert outcomes[0].reasons[0].startswith("max_qty for BTC/USDT is 4 per order")
    assert "not fully closed" in outcomes[0].reasons[-1]


def test_flip_close_is_sized_before_other_increases() -> None:
    """Closing a flip costs fees: the plan's increases get only the headroom left after them."""
    fee = 0.01
    lim = margin(
        max_leverage=125.0,
        max_gross_exposure=125.0,
        max_net_exposure=125.0,
        max_position_pct=125.0,
        fee_bps=fee * 1e4,
    )
    book = portfolio(cash=10_000 - 600_000, positions={BTC: 6_000.0})  # 60x equity 10,000
    plan = [item(ETH, "buy", 1e9), item(BTC, "sell", -6_000)]
    instructions, outcomes = run(plan, book=book, lim=lim)
    assert [(i.instrument.symbol, i.side) for i in instructions][:2] == [
        (BTC, "sell"),
        (ETH, "buy"),
    ]
    assert instructions[0].quantity == 6_000.0
    positions = {BTC: 6_000.0, ETH: 0.0}
    equity = 10_000.0
    for order in instructions:
        positions[order.instrument.symbol] += signed(order)
        equity -= order.quantity * PRICES[order.instrument.symbol] * fee
    gross = sum(abs(q) * PRICES[s] for s, q in positions.items())
    assert positions[BTC] <= 0.0
    assert gross <= 125.0 * equity * (1 + 1e-9), gross / equity
    assert outcomes[1].status == "clamped"  # the opening part had no room left


def test_flip_rounding_moves_toward_less_exposure() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.01)})
    book = portfolio(positions={BTC: 1.0})
    instructions, outcomes = run([item(BTC, "sell", -0.5555)], book=book, lim=margin(), rules=rules)
    assert [i.quantity for i in instructions] == [1.0, 0.55]
    assert outcomes[0].final_target_qty == pytest.approx(-0.55)


def test_order_is_floored_to_the_lot_size() -> None:
    instructions, outcomes = run([item(BTC, "buy", 0.123456)])
    assert only(instructions).quantity == 0.123
    assert outcomes[0].final_target_qty == 0.123


def test_order_below_one_lot_is_rejected() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.01)})
    _, outcomes = run([item(BTC, "buy", 0.005)], rules=rules)
    assert outcomes[0].status == "rejected"
    assert outcomes[0].reasons == ["order 0.005 BTC/USDT is smaller than one lot (0.01)"]


def test_min_qty_both_sides() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.01, min_qty=0.1)})
    _, outcomes = run([item(BTC, "buy", 0.05)], rules=rules)
    assert outcomes[0].reasons == ["min_qty for BTC/USDT is 0.1, order is 0.05"]
    instructions, _ = run([item(BTC, "buy", 0.1)], rules=rules)
    assert only(instructions).quantity == 0.1


def test_min_notional_both_sides() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.001, min_notional=5)})
    _, outcomes = run([item(BTC, "buy", 0.012)], rules=rules)
    assert outcomes[0].reasons == ["min_notional for BTC/USDT is 5 USDT, order is 1.20 USDT"]
    instructions, _ = run([item(BTC, "buy", 0.05)], rules=rules)
    assert only(instructions).quantity == 0.05


def test_full_close_is_exempt_from_minimums_but_partial_reduce_is_not() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.001, min_qty=0.5, min_notional=5)})
    book = portfolio(positions={BTC: 0.012})
    instructions, outcomes = run([item(BTC, "flat")], book=book, rules=rules)
    assert only(instructions).quantity == 0.012
    assert outcomes[0].status == "accepted"
    instructions, outcomes = run([item(BTC, "sell", 0.006)], book=book, rules=rules)
    assert instructions == []
    assert outcomes[0].reasons == ["min_qty for BTC/USDT is 0.5, order is 0.006"]


def test_max_qty_caps_one_order() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.001, max_qty=3)})
    instructions, outcomes = run([item(BTC, "buy", 5)], rules=rules)
    assert only(instructions).quantity == 3
    assert outcomes[0].status == "clamped"
    assert outcomes[0].reasons == ["max_qty for BTC/USDT is 3 per order: order 5 -> 3"]


def test_max_qty_turns_a_large_close_into_a_partial_one() -> None:
    rules = FakeRules({BTC: MarketRules(symbol=BTC, qty_step=0.001, max_qty=3)})
    instructions, outcomes = run(
        [item(BTC, "flat")], book=portfolio(positions={BTC: 5.0}), rules=rules
    )
    assert only(instructions).quantity == 3
    assert outcomes[0].final_target_qty == 2


def test_round_order_snaps_a_near_complete_close_to_the_exact_position() -> None:
    rules = MarketRules(symbol=BTC, qty_step=0.1)
    rounded = round_order(BTC, 0.30000000000000004, 1e-13, 100.0, rules)
    assert rounded.full_close
    assert (rounded.quantity, rounded.final_target) == (0.30000000000000004, 0.0)


@pytest.mark.parametrize(
    ("quantity", "step", "expected"),
    [
        (0.3, 0.1, 0.3),
        (0.7 - 0.4, 0.1, 0.3),
        (0.29, 0.1, 0.2),
        (0.74, 0.25, 0.5),
        (1234.5678, 1e-5, 1234.5678),
        (7.0, 5.0, 5.0),
        (0.0, 0.1, 0.0),
        (-1.0, 0.1, 0.0),
        (1e308, 1e-10, 1e308),  # exact decimal arithmetic: no overflow to guard against
        (math.inf, 0.1, 0.0),
        (math.nan, 0.1, 0.0),
    ],
)
def test_floor_to_step(quantity: float, step: float, expected: float) -> None:
    assert floor_to_step(quantity, step) == expected


# --- small pure helpers -------------------------------------------------------------------------------


def test_clamp_into_band_never_moves_past_the_current_position() -> None:
    assert clamp_into_band(5.0, 1.0, -2.0, 2.0) == 2.0
    assert clamp_into_band(5.0, 3.0, -2.0, 2.0) == 3.0  # already above: stay, do not sell
    assert clamp_into_band(-5.0, 3.0, -2.0, 2.0) == -2.0
    assert clamp_into_band(1.0, 0.0, -2.0, 2.0) == 1.0


def test_is_increasing() -> None:
    assert is_increasing(1.0, 2.0)
    assert is_increasing(1.0, -0.5)  # a flip
    assert not is_increasing(2.0, 1.0)
    assert not is_increasing(-2.0, 0.0)


def test_check_action_and_known_symbol_pass_valid_input() -> None:
    assert check_action("buy", 0.0, 1.0) is None
    assert check_action("sell", 0.0, -1.0) is None
    assert check_action("flat", 1.0, 0.0) is None
    assert check_known_symbol(BTC, [BTC]) is None
    assert check_known_symbol(BTC, [ETH]) is not None


def test_position_caps_helpers_both_sides() -> None:
    assert clamp_position_qty(1.0, 0.0, None) == (1.0, None)
    assert clamp_position_qty(1.0, 0.0, 2.0) == (1.0, None)
    assert clamp_position_qty(-3.0, 0.0, 2.0)[0] == -2.0
    assert clamp_position_notional(1.0, 0.0, 100.0, 1000.0, 0.5) == (1.0, None)
    assert clamp_position_notional(10.0, 0.0, 100.0, 1000.0, 0.5)[0] == 5.0


def test_quote_of() -> None:
    assert quote_of("BTC/USDT") == "USDT"
    assert quote_of("BTC/USDT:USDT") == "USDT"
    assert quote_of("BTCUSDT") == "quote"


def test_several_orders_for_one_symbol_get_ordinals() -> None:
    plan_item = item(BTC, "buy", 2)
    orders = [
        PlannedOrder(0, plan_item, "buy", 1.0, 1.0),
        PlannedOrder(1, plan_item, "buy", 1.0, 2.0),
        PlannedOrder(2, item(ETH, "buy", 1), "buy", 1.0, 1.0),
    ]
    ids = [i.instruction_id for i in instructions_for(orders, "c9")]
    assert ids == ["c9:BTC/USDT:1", "c9:BTC/USDT:2", "c9:ETH/USDT"]
