"""A position marked dust (below the exchange's minimum order size) is not closed again and
again: the composer rejects its reductions with the reason; adding to it is still allowed."""

from __future__ import annotations

from strategy_agent.decision.composer import DUST_REASON
from strategy_agent.models import InstrumentRef, LlmDecisionItem, PositionSnapshot
from tests.decision.test_composer import BTC, ETH, ScriptedPolicy, buy, composer, context, decision


def item(symbol: str, action: str, target: float = 0.0) -> LlmDecisionItem:
    return LlmDecisionItem(
        instrument=InstrumentRef(symbol=symbol),
        action=action,
        target_qty=target,  # type: ignore[arg-type]
    )


def dusty(held: float = 0.000003):
    base = context(btc_held=held)
    dust = PositionSnapshot(instrument=InstrumentRef(symbol=BTC), quantity=held, dust=True)
    portfolio = base.portfolio.model_copy(update={"positions": {BTC: dust}})
    return base.model_copy(update={"portfolio": portfolio})


def test_a_close_of_a_dust_position_is_rejected_with_the_reason_and_not_sent() -> None:
    policy = ScriptedPolicy(decision(item(BTC, "flat"), buy(ETH, 10), item(BTC, "sell", 0.000001)))
    result = composer(policy).compose(dusty())

    assert [i.instrument.symbol for i in result.instructions] == [ETH]
    assert [o.status for o in result.outcomes] == ["rejected", "accepted", "rejected"]
    assert [o.symbol for o in result.outcomes] == [BTC, ETH, BTC]  # the plan's order
    assert result.outcomes[0].reasons == [DUST_REASON]
    assert DUST_REASON.startswith("dust: below the minimum order size")
    assert result.audit["rejected"] == 2


def test_adding_to_a_dust_position_is_allowed() -> None:
    result = composer(ScriptedPolicy(decision(buy(BTC, 1.0)))).compose(dusty())
    assert [o.status for o in result.outcomes] in (["accepted"], ["clamped"])
    assert [i.side for i in result.instructions] == ["buy"]


def test_a_position_not_marked_dust_is_closed_as_usual() -> None:
    result = composer(ScriptedPolicy(decision(item(BTC, "flat")))).compose(context(btc_held=2.0))
    assert [(i.side, i.quantity) for i in result.instructions] == [("sell", 2.0)]
