"""The parser's shortcuts give what the plain code gives: the quick look for reasoning
markers, the items remembered across replies (``RecentItems``), the replies remembered
whatever is held when they read no position (``RecentParses``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy_agent.decision import plan_parser
from strategy_agent.decision.plan_json import (
    _REASONING_START,
    REASONING_END,
    ReplyParts,
    split_reasoning,
)
from strategy_agent.decision.plan_parser import (
    RecentItems,
    RecentParses,
    parse_item,
    parse_plan,
)
from strategy_agent.decision.plan_vocabulary import (
    POSITION_KINDS,
    Resolved,
    resolve_action,
    symbol_index,
)
from strategy_agent.errors import InvalidPlanError

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
TS = 1_736_000_000_000
KINDS = [
    "buy",
    "sell",
    "long",
    "short",
    "flat",
    "close_long",
    "close_short",
    "increase",
    "reduce",
    "noop",
]


# --- reasoning markers -----------------------------------------------------------------


def split_reasoning_plainly(reply: str) -> ReplyParts:
    """``split_reasoning`` as it was before its quick look for marker characters."""
    ends = list(REASONING_END.finditer(reply))
    if ends:
        last = ends[-1]
        reasoning = reply[: last.start()]
        opening = _REASONING_START.match(reasoning)
        if opening:
            reasoning = reasoning[opening.end() :]
        return ReplyParts(reply[last.end() :], reasoning.strip() or None)
    if _REASONING_START.match(reply):
        raise InvalidPlanError("never ends")
    return ReplyParts(reply, None)


fragments = st.sampled_from(
    [
        "</think>",
        "</THINKING>",
        "</reasoning>",
        "[/THINK]",
        "<|channel|>final<|message|>",
        "<think>",
        "<|channel|>analysis",
        "<",
        "/",
        "[",
        "|",
        "</",
        "[/",
        "<|",
        "think",
        "]",
        ">",
        " ",
        "\n",
        '{"items": []}',
        "prose",
    ]
)


def outcome_of(split: Any, reply: str) -> Any:
    try:
        return split(reply)
    except InvalidPlanError:
        return "never ends"


@given(st.lists(fragments | st.text(max_size=4), max_size=12).map("".join))
def test_the_quick_look_for_markers_splits_as_the_regex_does(reply: str) -> None:
    assert outcome_of(split_reasoning, reply) == outcome_of(split_reasoning_plainly, reply)


# --- the position read only for the words that need it ---------------------------------


@given(
    st.sampled_from([kind for kind in KINDS if kind not in POSITION_KINDS]),
    st.none() | st.floats(-1e6, 1e6),
    st.floats(-1e6, 1e6),
)
def test_only_position_words_depend_on_the_position(
    kind: str, number: float | None, current: float
) -> None:
    held = resolve_action(kind, number, current, "BTC/USDT")
    assert held == resolve_action(kind, number, 0.0, "BTC/USDT")


@pytest.mark.parametrize("kind", sorted(POSITION_KINDS))
def test_each_position_word_does_depend_on_the_position(kind: str) -> None:
    readings = {str(resolve_action(kind, 0.5, current, "BTC/USDT")) for current in (-1, 0, 1)}
    assert len(readings) > 1


# --- items remembered across replies ---------------------------------------------------


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 0.0, -0.0, 1.0, 0.5, -0.5, 1e308, "0,5", "1,250.5", "80%"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 3),
    st.sampled_from(["BTC", "btcusdt", "ETH/USDT", "SOL", "DOGE", "", " "]),
    st.sampled_from([*KINDS, "hold", "close", "open", "Close Long", "buy_to_open", "??"]),
    st.text(max_size=6),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)
keys = st.sampled_from(
    [
        "instrument",
        "Symbol",
        "action",
        "Action",
        "side",
        "direction",
        "target_qty",
        "TargetQty",
        "qty",
        "size",
        "confidence",
        "rationale",
        "reason",
    ]
)
raw_items = st.one_of(
    st.fixed_dictionaries(
        {
            "instrument": st.sampled_from(["BTC/USDT", "ETH", "SOL/USDT", "XRP"]),
            "action": st.sampled_from([*KINDS, "hold"]),
        },
        optional={
            "target_qty": scalars,
            "confidence": scalars,
            "rationale": st.sampled_from(["no edge", "rsi 30"]),
        },
    ),
    st.dictionaries(keys, values, max_size=6),
    scalars,
)
positions = st.dictionaries(st.sampled_from(SYMBOLS), st.sampled_from([0.0, 0.3, -0.3, 1.0]))


# Values equal to each other (==, hash) that an item must not mix up.
_LOOKALIKES = ([0, 0.0, -0.0, False], [1, 1.0, True])


def lookalikes(raw: Any) -> list[Any]:
    """``raw`` with each value that has lookalikes replaced by each of them."""
    if not isinstance(raw, dict):
        return []
    twins = []
    for key, value in raw.items():
        for group in _LOOKALIKES:
            if any(value is member or repr(value) == repr(member) for member in group):
                twins += [{**raw, key: other} for other in group]
    return twins


@settings(max_examples=400)
@given(st.lists(st.tuples(raw_items, positions), min_size=1, max_size=12), st.data())
def test_remembered_items_are_what_parse_item_gives(
    steps: list[tuple[Any, dict[str, float]]], data: st.DataObject
) -> None:
    recent = RecentItems(size=data.draw(st.sampled_from([2, 1_024])))
    index = symbol_index(SYMBOLS)
    steps += [(twin, held) for raw, held in steps for twin in lookalikes(raw)]
    for raw, held in steps + steps:  # each item met at least twice
        expected = parse_item(raw, index, held)
        got = recent.parse(raw, index, held)
        assert repr(got) == repr(expected)  # repr: == reads 0.0 and -0.0 alike


class NoMemory:
    """``RecentItems`` without the memory: the plain parse."""

    def parse(self, raw: Any, index: Any, positions: Any) -> Any:
        return parse_item(raw, index, positions)


def test_an_item_met_in_another_reply_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    noop = {"instrument": "BTC/USDT", "action": "noop", "target_qty": 0, "rationale": "no edge"}
    buys = [{"instrument": "ETH/USDT", "action": "buy", "target_qty": q} for q in (0.5, 0.6)]
    reduce = {"instrument": "SOL/USDT", "action": "reduce", "target_qty": 1}
    replies = [json.dumps({"items": [noop, buy, reduce]}) for buy in buys]
    held = {"SOL/USDT": 2.0}
    monkeypatch.setattr(plan_parser, "_RECENT_ITEMS", NoMemory())
    plain = [parse_plan(reply, TS, SYMBOLS, held) for reply in replies]
    monkeypatch.setattr(plan_parser, "_RECENT_ITEMS", RecentItems())
    parsed: list[Any] = []

    def counted(raw: Any, *args: Any) -> Any:
        parsed.append(raw)
        return parse_item(raw, *args)

    monkeypatch.setattr(plan_parser, "parse_item", counted)
    assert [parse_plan(reply, TS, SYMBOLS, held) for reply in replies] == plain
    # the noop once, each buy, and the reduce each time (it reads the position held)
    assert parsed == [noop, buys[0], reduce, buys[1], reduce]


def test_an_item_with_a_long_rationale_is_parsed_each_time_never_remembered() -> None:
    recent = RecentItems()
    index = symbol_index(SYMBOLS)
    long_item = {"instrument": "BTC/USDT", "action": "noop", "rationale": "x" * 90_000}
    short_item = {"instrument": "BTC/USDT", "action": "noop", "rationale": "no edge"}
    for _ in range(2):
        got = recent.parse(long_item, index, {})
        assert repr(got) == repr(parse_item(long_item, index, {}))
        recent.parse(short_item, index, {})
    assert len(recent._items) == 1  # the short one only: keys stay small
    assert plan_parser.MAX_ITEM_KEY_CHARS < 90_000


# --- replies remembered ----------------------------------------------------------------


def reply_of(words: list[tuple[str, str, float]]) -> str:
    items = [{"instrument": s, "action": a, "target_qty": q} for s, a, q in words]
    return json.dumps({"items": items, "notes": "n"})


replies = st.lists(
    st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(KINDS), st.sampled_from([0, 0.3, 2])),
    max_size=3,
).map(reply_of) | st.sampled_from(["", "no plan here", '{"items": 5}'])


@settings(max_examples=300)
@given(st.lists(st.tuples(replies, positions), min_size=1, max_size=16))
def test_remembered_replies_are_what_parse_plan_gives(
    steps: list[tuple[str, dict[str, float]]],
) -> None:
    recent = RecentParses(size=3)
    for step, (reply, held) in enumerate(steps + steps):
        try:
            expected = parse_plan(reply, TS + step, list(SYMBOLS), held)
        except InvalidPlanError as error:
            with pytest.raises(InvalidPlanError, match=str(error)[:20]):
                recent.parse(reply, TS + step, list(SYMBOLS), held)
            continue
        got = recent.parse(reply, TS + step, list(SYMBOLS), held)
        assert got.proposal.items == expected.proposal.items  # ts: the caller stamps its own
        assert got.proposal.notes == expected.proposal.notes
        assert got.rejected == expected.rejected and got.reasoning == expected.reasoning


def test_a_reply_that_reads_no_position_is_parsed_once_whatever_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def counted(text: str, *args: Any) -> Any:
        seen.append(text)
        return parse_plan(text, *args)

    monkeypatch.setattr(plan_parser, "parse_plan", counted)
    plain = reply_of([("BTC/USDT", "buy", 0.3), ("ETH/USDT", "flat", 0)])
    reduce = reply_of([("BTC/USDT", "reduce", 0.3)])
    recent = RecentParses()
    for held in ({}, {"BTC/USDT": 1.0}, {"BTC/USDT": 2.0}):
        for reply in (plain, reduce):
            got = recent.parse(reply, TS, list(SYMBOLS), held)
            assert got.proposal.items == parse_plan(reply, TS, SYMBOLS, held).proposal.items
    assert seen == [plain, reduce, reduce, reduce]
    assert isinstance(resolve_action("reduce", 0.3, 1.0, "BTC/USDT"), Resolved)
