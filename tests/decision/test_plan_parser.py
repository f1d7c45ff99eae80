from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategy_agent.decision.plan_parser import (
    MAX_ITEMS,
    extract_json,
    parse_plan,
    to_finite_float,
)
from strategy_agent.decision.plan_vocabulary import ACCEPTED_WORDS
from strategy_agent.errors import InvalidPlanError
from strategy_agent.models import LlmDecisionItem

TS = 1_736_000_000_000
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
VALID = (
    '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 0.5, '
    '"confidence": 0.8, "rationale": "trend up"}], "notes": "one buy"}'
)


def _items(reply: str) -> list[tuple[str, str, float]]:
    plan = parse_plan(reply, TS, SYMBOLS).proposal
    return [(i.instrument.symbol, i.action, i.target_qty) for i in plan.items]


def test_valid_plan_is_parsed_with_notes_and_confidence() -> None:
    parsed = parse_plan(VALID, TS, SYMBOLS)
    assert parsed.rejected == []
    assert parsed.proposal.ts == TS
    assert parsed.proposal.notes == "one buy"
    (item,) = parsed.proposal.items
    assert (item.instrument.symbol, item.action, item.target_qty) == ("BTC/USDT", "buy", 0.5)
    assert item.confidence == 0.8
    assert item.rationale == "trend up"


def test_code_fence_is_stripped() -> None:
    assert _items(f"```json\n{VALID}\n```") == [("BTC/USDT", "buy", 0.5)]
    assert _items(f"Here you go:\n```\n{VALID}\n```\nGood luck!") == [("BTC/USDT", "buy", 0.5)]


def test_prose_around_json_and_stray_brackets_are_ignored() -> None:
    reply = f"I considered [the trend] and {{maybe}} more. Plan: {VALID} That is all [end]."
    assert _items(reply) == [("BTC/USDT", "buy", 0.5)]


def test_instrument_as_object_and_numbers_as_strings() -> None:
    reply = json.dumps(
        {
            "decisions": [
                {
                    "instrument": {"symbol": "ETH/USDT", "exchange_id": "x"},
                    "action": "SELL",
                    "target_qty": "-1.25",
                    "confidence": "0.7",
                }
            ]
        }
    )
    parsed = parse_plan(reply, TS, SYMBOLS)
    (item,) = parsed.proposal.items
    assert (item.instrument.symbol, item.action, item.target_qty) == ("ETH/USDT", "sell", -1.25)
    assert item.confidence == 0.7


def test_bare_list_and_single_item_object_are_plans() -> None:
    bare = '[{"symbol": "SOL/USDT", "action": "flat"}]'
    assert _items(bare) == [("SOL/USDT", "flat", 0.0)]
    single = '{"instrument": "SOL/USDT", "action": "noop"}'
    assert _items(single) == [("SOL/USDT", "noop", 0.0)]


def test_symbols_are_matched_to_configured_ones() -> None:
    reply = '{"items": [{"instrument": "btcusdt", "action": "buy", "target_qty": 1}, {"instrument": "eth-usdt", "action": "buy", "target_qty": 2}]}'
    assert _items(reply) == [("BTC/USDT", "buy", 1.0), ("ETH/USDT", "buy", 2.0)]


def test_action_aliases_and_flat_forces_zero_target() -> None:
    reply = '{"items": [{"instrument": "BTC/USDT", "action": "close", "target_qty": 3}, {"instrument": "ETH/USDT", "action": "hold"}]}'
    assert _items(reply) == [("BTC/USDT", "flat", 0.0), ("ETH/USDT", "noop", 0.0)]


@pytest.mark.parametrize(
    "quantity",
    ["NaN", "Infinity", "-Infinity", '"nan"', '"inf"', '"abc"', "1e999", "true", "null", "[1]"],
)
def test_non_finite_or_non_numeric_quantity_rejects_only_that_item(quantity: str) -> None:
    reply = (
        '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": '
        + quantity
        + '}, {"instrument": "ETH/USDT", "action": "buy", "target_qty": 0.1}]}'
    )
    parsed = parse_plan(reply, TS, SYMBOLS)
    assert [i.instrument.symbol for i in parsed.proposal.items] == ["ETH/USDT"]
    (rejected,) = parsed.rejected
    assert rejected.status == "rejected"
    assert rejected.symbol == "BTC/USDT"
    assert rejected.action == "buy"
    assert rejected.requested_qty is None
    assert "target_qty" in rejected.reasons[0]


def test_huge_and_negative_quantities_are_parsed_for_the_guardrails() -> None:
    reply = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 1e300}, {"instrument": "ETH/USDT", "action": "sell", "target_qty": -5000}]}'
    assert _items(reply) == [("BTC/USDT", "buy", 1e300), ("ETH/USDT", "sell", -5000.0)]


def test_unknown_symbols_and_contradicting_duplicates_are_passed_on() -> None:
    reply = json.dumps(
        {
            "items": [
                {"instrument": "DOGE/USDT", "action": "buy", "target_qty": 10},
                {"instrument": "BTC/USDT", "action": "buy", "target_qty": 1},
                {"instrument": "BTC/USDT", "action": "sell", "target_qty": -1},
            ]
        }
    )
    assert _items(reply) == [
        ("DOGE/USDT", "buy", 10.0),
        ("BTC/USDT", "buy", 1.0),
        ("BTC/USDT", "sell", -1.0),
    ]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"instrument": 42, "action": "buy", "target_qty": 1}, "instrument"),
        ({"action": "buy", "target_qty": 1}, "missing"),
        ({"instrument": "BTC/USDT", "action": "moon", "target_qty": 1}, "action"),
        ({"instrument": "BTC/USDT", "action": ["buy"], "target_qty": 1}, "action"),
        ({"instrument": "BTC/USDT", "action": "buy"}, "missing target_qty"),
        ({"instrument": "BTC/USDT", "action": "buy", "target_qty": {"a": 1}}, "target_qty"),
        (
            {"instrument": "BTC/USDT", "action": "buy", "target_qty": 1, "confidence": "high"},
            "confidence",
        ),
        (
            {"instrument": "BTC/USDT", "action": "buy", "target_qty": 1, "confidence": -0.2},
            "confidence",
        ),
        ({"instrument": "X" * 100, "action": "buy", "target_qty": 1}, "longer"),
    ],
)
def test_wrong_types_reject_the_item_with_a_reason(item: dict, reason: str) -> None:
    parsed = parse_plan(json.dumps({"items": [item, "not an object"]}), TS, SYMBOLS)
    assert parsed.proposal.items == []
    assert len(parsed.rejected) == 2
    assert reason in parsed.rejected[0].reasons[0]
    assert "expected an object" in parsed.rejected[1].reasons[0]


def test_confidence_percent_string_is_read_but_a_number_above_one_is_refused() -> None:
    reply = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 1, "confidence": "75%"}, {"instrument": "ETH/USDT", "action": "buy", "target_qty": 1, "confidence": 60}, {"instrument": "SOL/USDT", "action": "buy", "target_qty": 1, "confidence": 7}]}'
    parsed = parse_plan(reply, TS, SYMBOLS)
    assert [i.confidence for i in parsed.proposal.items] == [0.75]
    assert [r.symbol for r in parsed.rejected] == ["ETH/USDT", "SOL/USDT"]
    assert all("outside 0..1" in r.reasons[0] for r in parsed.rejected)


def test_a_reasoning_draft_is_never_the_plan() -> None:
    draft = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 0.066}]}'
    for opening in ("", "<think>", "\n\n<think>\n"):
        reply = f"{opening}I could buy: {draft}\nNo, do nothing.\n</think>\n\n" + '{"items": []}'
        parsed = parse_plan(reply, TS, SYMBOLS)
        assert parsed.proposal.items == [] and parsed.rejected == []
        assert parsed.reasoning is not None and "I could buy" in parsed.reasoning


def test_the_last_complete_plan_wins_and_prose_fragments_are_not_plans() -> None:
    first = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 1}]}'
    last = '{"items": [{"instrument": "ETH/USDT", "action": "buy", "target_qty": 2}]}'
    assert _items(f"Draft {first}. Final: {last}") == [("ETH/USDT", "buy", 2.0)]
    assert _items(f"Open positions: [] RSI[14] is 28 {{see above}}. {first}") == [
        ("BTC/USDT", "buy", 1.0)
    ]
    assert _items(f"{first} ... and positions are now [].") == [("BTC/USDT", "buy", 1.0)]
    with pytest.raises(InvalidPlanError):
        parse_plan("Open positions: [] so I would buy.", TS, SYMBOLS)


def test_an_item_inside_a_cut_off_plan_is_not_taken_as_the_plan() -> None:
    reply = (
        '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 1}, '
        '{"instrument": "ETH/USDT", "action": "sell", "target_'
    )
    with pytest.raises(InvalidPlanError, match="cut off"):
        parse_plan(reply, TS, SYMBOLS)
    complete = '{"items": [{"instrument": "SOL/USDT", "action": "buy", "target_qty": 3}]}'
    with pytest.raises(InvalidPlanError, match="cut off"):
        parse_plan(complete + "\nRevised: " + reply, TS, SYMBOLS)


@pytest.mark.parametrize(
    ("word", "held", "expected"),
    [
        ("long", 0.5, ("sell", 0.2)),  # a long of 0.2 when 0.5 is held: sell down to it
        ("long", 0.2, ("noop", 0.0)),
        ("short", 0.0, ("sell", -0.2)),
        ("short", -0.5, ("buy", -0.2)),
        ("close", -0.5, ("flat", 0.0)),
        ("close_short", -0.5, ("flat", 0.0)),
        ("close_long", 0.0, ("flat", 0.0)),
        ("hold", 0.5, ("noop", 0.0)),
    ],
)
def test_action_words_follow_the_quantity_rule(
    word: str, held: float, expected: tuple[str, float]
) -> None:
    reply = json.dumps({"items": [{"symbol": "BTC/USDT", "action": word, "qty": 0.2}]})
    plan = parse_plan(reply, TS, SYMBOLS, {"BTC/USDT": held}).proposal
    assert [(i.action, i.target_qty) for i in plan.items] == [expected]


def test_trailing_commas_are_tolerated() -> None:
    reply = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 1,},],}'
    assert _items(reply) == [("BTC/USDT", "buy", 1.0)]


def test_too_many_items_are_rejected_beyond_the_cap() -> None:
    items = [{"instrument": "BTC/USDT", "action": "noop"}] * (MAX_ITEMS + 3)
    parsed = parse_plan(json.dumps(items), TS, SYMBOLS)
    assert len(parsed.proposal.items) == MAX_ITEMS
    assert len(parsed.rejected) == 3


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        (None, "empty"),
        ("I would buy some bitcoin now.", "no JSON"),
        ('{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 0.', "cut off"),
        ('```json\n{"items": [{"instrument": "BTC/USDT", "action": "buy"}, {"instr', "cut off"),
        ('{"answer": 42}', '"items"'),
        ('{"items": "none"}', "must be a list"),
        ("[1, 2, 3]", '"items"'),
    ],
)
def test_unusable_replies_raise_invalid_plan_error(reply: str | None, message: str) -> None:
    with pytest.raises(InvalidPlanError, match=message):
        parse_plan(reply, TS, SYMBOLS)


def test_empty_items_is_a_valid_do_nothing_plan() -> None:
    parsed = parse_plan('{"items": [], "notes": "wait"}', TS, SYMBOLS)
    assert parsed.proposal.items == [] and parsed.rejected == []
    assert parsed.proposal.notes == "wait"


def test_deep_nesting_and_huge_integers_do_not_crash() -> None:
    with pytest.raises(InvalidPlanError):
        extract_json("[" * 5000 + "]" * 5000)
    reply = (
        '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": ' + "9" * 5000 + "}]}"
    )
    with pytest.raises(InvalidPlanError):
        parse_plan(reply, TS, SYMBOLS)  # python refuses to parse a 5000-digit int: no JSON


def test_lone_surrogates_are_replaced_so_the_plan_can_be_stored() -> None:
    reply = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 1, "rationale": "x\\ud800y"}], "notes": "\\udfff"}'
    plan = parse_plan(reply, TS, SYMBOLS).proposal
    assert plan.model_dump_json()  # would raise on a lone surrogate
    assert plan.items[0].rationale == "x?y"


def test_to_finite_float() -> None:
    assert to_finite_float("1,000.5") == (1000.5, None)
    assert to_finite_float("1,250,000") == (1_250_000.0, None)
    for ambiguous in ("0,01", "2,5", "1,250", "1.250,5", "12,50.1"):
        number, problem = to_finite_float(ambiguous)
        assert number is None and problem is not None and "ambiguous" in problem
    assert to_finite_float(3) == (3.0, None)
    assert to_finite_float(True)[0] is None
    assert to_finite_float(10**400)[1] == "is too large to be finite"
    assert to_finite_float(float("nan"))[0] is None


@given(st.integers(min_value=0, max_value=99_999), st.integers(min_value=1, max_value=999_999))
def test_a_decimal_comma_is_never_read_as_another_number(whole: int, fraction: int) -> None:
    number, problem = to_finite_float(f"{whole},{fraction}")
    assert number is None and problem is not None


@given(st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False))
def test_thousands_separators_read_as_the_number_written(value: object) -> None:
    text = f"{value:,.3f}"
    assert to_finite_float(text) == (pytest.approx(float(str(value))), None)


# --- property: arbitrary JSON-ish replies ----------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "BTC/USDT",
            "BTC",
            "btc-usdt",
            "buy",
            "sell",
            "flat",
            "noop",
            "close_long",
            "short",
            "reduce",
            "NaN",
            "1e999",
            "-0.5",
            "75%",
            "0,01",
            "1,250.5",
            "</think>",
        ]
    ),
)
_keys = st.sampled_from(
    [
        "items",
        "Items",
        "decisions",
        "instrument",
        "Instrument",
        "symbol",
        "ticker",
        "action",
        "Action",
        "side",
        "decision",
        "target_qty",
        "TargetQty",
        "quantity",
        "confidence",
        "rationale",
        "notes",
        "plan",
    ]
)
_json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_keys | st.text(max_size=5), children, max_size=5),
    ),
    max_leaves=20,
)


def _render(value: object) -> str:
    return json.dumps(value, allow_nan=True)


_replies = st.one_of(
    st.text(max_size=200),
    _json_values.map(_render),
    st.tuples(st.text(max_size=30), _json_values.map(_render), st.text(max_size=30)).map(
        lambda parts: f"{parts[0]}```json\n{parts[1]}\n```{parts[2]}"
    ),
    _json_values.map(_render).flatmap(
        lambda text: st.integers(min_value=0, max_value=len(text)).map(lambda cut: text[:cut])
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_replies)
def test_parser_only_raises_invalid_plan_error_and_items_are_valid(reply: str) -> None:
    try:
        parsed = parse_plan(reply, TS, SYMBOLS)
    except InvalidPlanError:
        return
    for item in parsed.proposal.items:
        assert isinstance(item, LlmDecisionItem)
        LlmDecisionItem.model_validate(item.model_dump())
        assert math.isfinite(item.target_qty)
        assert item.confidence is None or 0 <= item.confidence <= 1
    for outcome in parsed.rejected:
        assert outcome.status == "rejected" and outcome.reasons
    parsed.proposal.model_dump_json()


def test_the_readme_lists_every_accepted_action_word() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text("utf-8")
    missing = [w for w in ACCEPTED_WORDS.split(", ") if f"`{w}`" not in readme]
    assert missing == []
