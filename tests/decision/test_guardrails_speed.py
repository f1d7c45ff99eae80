"""The guardrails' shortcuts give what the plain code gives: the written-out copies equal
``dataclasses.replace`` for every field, the duplicate screen equals the full scan, and an
outcome built through the model's validator equals (and validates like) the model's own
constructor."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from strategy_agent.decision.guardrail_checks import (
    _describe_intent,
    _intent_key,
    screen_duplicates,
)
from strategy_agent.decision.guardrails import _outcome, _Work
from strategy_agent.decision.plan_book import PlanBook
from strategy_agent.models import GuardrailOutcome, InstrumentRef, LlmDecisionItem, MarketRules

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
ACTIONS = ["buy", "sell", "flat", "noop"]

finite = st.floats(-1e6, 1e6, allow_nan=False)
signed_zero = st.sampled_from([0.0, -0.0])
quantity = st.one_of(finite, signed_zero)
texts = st.lists(st.text(max_size=8), max_size=3)


@st.composite
def items(draw: st.DrawFn) -> LlmDecisionItem:
    return LlmDecisionItem(
        instrument=InstrumentRef(symbol=draw(st.sampled_from(SYMBOLS))),
        action=draw(st.sampled_from(ACTIONS)),
        target_qty=draw(quantity),
        confidence=draw(st.none() | st.floats(0, 1)),
    )


@st.composite
def works(draw: st.DrawFn) -> _Work:
    return _Work(
        index=draw(st.integers(0, 50)),
        item=draw(items()),
        current=draw(quantity),
        target=draw(quantity),
        unit_value=draw(st.floats(1e-6, 1e6)),
        rules=MarketRules(symbol="BTC/USDT", qty_step=draw(st.sampled_from([1e-5, 0.01, 1.0]))),
        reasons=draw(texts),
        increasing=draw(st.booleans()),
        leg=draw(st.sampled_from(["whole", "close", "open"])),
    )


def same_fields(one: Any, other: Any) -> None:
    """Every field is the same object (a copy, like ``replace``, shares the values)."""
    assert type(one) is type(other)
    for name in (f.name for f in fields(one)):
        assert getattr(one, name) is getattr(other, name), name


@given(works(), quantity, texts, st.booleans(), st.sampled_from([None, "whole", "close", "open"]))
def test_work_with_target_is_dataclasses_replace(
    work: _Work, target: float, reasons: list[str], increasing: bool, leg: Any
) -> None:
    changes: dict[str, Any] = {"target": target, "reasons": reasons, "increasing": increasing}
    if leg is not None:
        changes["leg"] = leg
    same_fields(work.with_target(target, reasons, increasing, leg), replace(work, **changes))


@given(works(), quantity)
def test_work_with_current_is_dataclasses_replace(work: _Work, current: float) -> None:
    same_fields(work.with_current(current), replace(work, current=current))


book_dicts = st.dictionaries(st.sampled_from(SYMBOLS), quantity)


@given(book_dicts, book_dicts, finite, finite, finite, book_dicts)
def test_plan_book_copy_is_replace_with_its_own_positions_and_remarks(
    positions: dict[str, float],
    unit_values: dict[str, float],
    equity: float,
    cost_equity: float,
    cash: float,
    remarks: dict[str, float],
) -> None:
    book = PlanBook(positions, unit_values, equity, cost_equity, cash, remarks)
    copied = book.copy()
    plain = replace(book, positions=dict(book.positions), remarks=dict(book.remarks))
    assert copied == plain and [f.name for f in fields(copied)] == [f.name for f in fields(plain)]
    assert copied.unit_values is book.unit_values  # shared, as replace shares it
    copied.positions["NEW/USDT"] = 1.0
    copied.remarks["NEW/USDT"] = 1.0
    assert "NEW/USDT" not in book.positions and "NEW/USDT" not in book.remarks


def screen_duplicates_plainly(plan: list[LlmDecisionItem]) -> dict[int, str]:
    """The screen as it was before its shortcut for plans of distinct symbols."""
    by_symbol: dict[str, list[int]] = {}
    for index, item in enumerate(plan):
        by_symbol.setdefault(item.instrument.symbol, []).append(index)
    vetoes: dict[int, str] = {}
    for symbol, indexes in by_symbol.items():
        if len(indexes) < 2:
            continue
        intents = {_intent_key(plan[i]) for i in indexes}
        if len(intents) == 1:
            for index in indexes[1:]:
                vetoes[index] = (
                    f"duplicate of item {indexes[0] + 1} for {symbol}; only the first is used"
                )
            continue
        listed = ", ".join(f"#{i + 1} {_describe_intent(plan[i])}" for i in indexes)
        for index in indexes:
            vetoes[index] = (
                f"contradicting items for {symbol} ({listed}); send one item per symbol. "
                f"None of them was used"
            )
    return vetoes


@given(st.lists(items(), max_size=6))
def test_duplicate_screen_shortcut_gives_the_full_scan(plan: list[LlmDecisionItem]) -> None:
    vetoes = screen_duplicates(plan)
    assert vetoes == screen_duplicates_plainly(plan)
    if len({item.instrument.symbol for item in plan}) == len(plan):
        assert vetoes == {}


@given(
    items(),
    st.sampled_from(["accepted", "clamped", "rejected"]),
    texts,
    st.none() | quantity,
    st.none() | quantity,
)
def test_outcome_through_the_validator_equals_the_constructor(
    item: LlmDecisionItem,
    status: Any,
    reasons: list[str],
    final_target: float | None,
    order_qty: float | None,
) -> None:
    built = _outcome(item, status, reasons, final_target, order_qty)
    plain = GuardrailOutcome(
        symbol=item.instrument.symbol,
        action=item.action,
        status=status,
        requested_qty=item.target_qty,
        final_target_qty=final_target,
        order_qty=order_qty,
        reasons=reasons,
    )
    assert type(built) is GuardrailOutcome
    assert built == plain and built.model_dump() == plain.model_dump()
    assert built.model_fields_set == plain.model_fields_set
    assert built.reasons is not reasons  # validated: a list of its own


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_outcome_through_the_validator_still_refuses_what_the_model_refuses(bad: float) -> None:
    item = LlmDecisionItem(instrument=InstrumentRef(symbol="BTC/USDT"), action="buy")
    with pytest.raises(ValidationError):
        _outcome(item, "accepted", [], final_target=bad)
    with pytest.raises(ValidationError):
        _outcome(item, "done?", [])  # type: ignore[arg-type]
