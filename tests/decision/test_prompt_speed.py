"""The shortcuts that make a cached LLM replay fast write exactly what the plain code wrote.

Each fast path (number writers built once, remembered series closes, timestamps
and durations, the incremental prompt hash and cache key, the whole-object reply
parse) is compared with the plain formula it replaces, on drawn inputs.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy_agent.decision import plan_json, prompt_context, prompt_market, prompt_numbers
from strategy_agent.decision.plan_vocabulary import (
    SymbolIndex,
    action_word,
    compact,
    symbol_index,
)
from strategy_agent.decision.system_prompt import format_duration
from strategy_agent.errors import InvalidPlanError
from strategy_agent.models import FeatureVector, InstrumentRef
from strategy_agent.trading_history.response_cache import (
    PromptHasher,
    cache_key,
    messages_json,
)

# --- the plain formulas, as they were written before the shortcuts ---------------------------


def plain_num(value: float, digits: int = 6) -> str:
    if abs(value) >= 10 ** (digits - 1):
        magnitude = math.floor(math.log10(abs(value)))
        return f"{round(value, digits - 1 - magnitude):.0f}"
    return f"{value:.{digits}g}"


def plain_fixed(value: float, decimals: int, sign: str = "") -> str:
    rounded = round(value, decimals) or 0.0
    text = f"{rounded:{sign}.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def plain_finite_list(values: Any) -> list[float]:
    if not isinstance(values, list | tuple):
        return []
    return [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]


def plain_series(vectors: list[FeatureVector]) -> str:
    lines = []
    for vector in vectors:
        series = (vector.meta or {}).get("series")
        parts = []
        for name, label, digits in (("close", "close", 4), ("rsi_14", "rsi", 2)):
            values = plain_finite_list(series.get(name)) if isinstance(series, dict) else []
            if values:
                parts.append(f"{label} " + " ".join(plain_num(v, digits) for v in values))
        if parts:
            lines.append(f"{vector.instrument.symbol}: " + " | ".join(parts))
    return "series (oldest first):\n" + "\n".join(lines) if lines else ""


def plain_messages_json(messages: list[dict[str, Any]]) -> str:
    return json.dumps(list(messages), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plain_cache_key(model: str, temperature: Any, messages: Any, sample: int = 0) -> str:
    parts: list[Any] = [model, temperature, plain_messages_json(messages)]
    if sample:
        parts.append(sample)
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def same(fast: Any, plain: Any, *args: Any) -> bool:
    """Both give the same text, or both raise the same error (a float near the top of
    the range overflows when rounded, with or without the shortcuts)."""
    return _result(fast, *args) == _result(plain, *args)


def _result(write: Any, *args: Any) -> Any:
    try:
        return write(*args)
    except OverflowError as error:
        return type(error)


# --- numbers ----------------------------------------------------------------------------------

EDGES = [0.0, -0.0, 0.005, -0.005, 0.0049999, -0.004, 0.5, 1.5, 2.5, 9.5, 99.5, 99.49, 999.5]
EDGES += [9999.5, 99999.5, 99.99999999999999, 10.0, 1e15 + 0.125, 123456.5, -123456.5, 1e-7]
FLOATS = st.one_of(
    st.sampled_from(EDGES),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(min_value=-(10**15), max_value=10**15),
)


@settings(max_examples=400, deadline=None)
@given(value=FLOATS, digits=st.integers(min_value=1, max_value=9))
def test_num_writes_what_the_plain_formula_writes(value: float, digits: int) -> None:
    assert same(prompt_numbers.num, plain_num, value, digits)


@settings(max_examples=400, deadline=None)
@given(
    value=FLOATS, decimals=st.integers(min_value=0, max_value=6), sign=st.sampled_from(["", "+"])
)
def test_fixed_writes_what_the_plain_formula_writes(value: float, decimals: int, sign: str) -> None:
    assert same(prompt_numbers.fixed, plain_fixed, value, decimals, sign)


@settings(max_examples=300, deadline=None)
@given(value=FLOATS)
def test_each_market_cell_and_money_writer_matches_the_plain_formula(value: float) -> None:
    assert same(prompt_market.PERCENT.write, lambda v: plain_fixed(v * 100, 2), value)
    assert same(prompt_market.RSI.write, lambda v: plain_fixed(v, 1), value)
    assert same(prompt_market.TWO_DECIMALS.write, lambda v: plain_fixed(v, 2), value)
    assert same(prompt_market.OSCILLATOR.write, lambda v: plain_num(v, 3), value)
    assert same(prompt_market.PRICE.write, lambda v: plain_num(v, 5), value)
    assert same(prompt_numbers.money, lambda v: plain_fixed(v, 2), value)
    assert same(prompt_numbers.signed_money, lambda v: plain_fixed(v, 2, "+"), value)


KINDS = [prompt_market.PERCENT, prompt_market.RSI, prompt_market.TWO_DECIMALS]
KINDS += [prompt_market.OSCILLATOR, prompt_market.PRICE]


@settings(max_examples=400, deadline=None)
@given(values=st.lists(st.tuples(st.sampled_from(KINDS), FLOATS), min_size=1, max_size=8))
def test_a_row_in_one_format_is_what_the_cell_writers_write(
    values: list[tuple[prompt_market.CellKind, float]],
) -> None:
    """Each kind's ``%`` piece writes its writer's text: a %g piece unless it wrote an
    exponent (``e+``: the row then goes cell by cell), a %f piece once the marked
    cells are trimmed (``trim_fixed``), wherever the cell sits in the row."""
    pieces = "".join("|" + kind.piece for kind, _ in values)
    text = pieces % tuple(value * kind.scale for kind, value in values)
    cells = [_result(kind.write, value) for kind, value in values]
    if "e+" not in text:
        assert prompt_numbers.trim_fixed(text) == "".join(f"|{cell}" for cell in cells)


SEPARATORS = st.sampled_from(["|", ", ", " (", "", "x ", "%|"])


@settings(max_examples=400, deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.sampled_from([1, 2]), st.sampled_from(["", "+"]), FLOATS, SEPARATORS),
        min_size=1,
        max_size=6,
    )
)
def test_trimmed_marked_numbers_are_what_fixed_writes(
    cells: list[tuple[int, str, float, str]],
) -> None:
    """Unsigned (``~``) and signed (``^``) numbers of one or two places, next to each
    other or to any text, trim to ``fixed(value, places, sign)``."""
    text = "".join(
        before.replace("%", "%%") + f"%{sign}.{places}f{'^' if sign else '~'}"
        for places, sign, _, before in cells
    ) % tuple(value for _, _, value, _ in cells)
    plain = "".join(
        before + plain_fixed(value, places, sign) for places, sign, value, before in cells
    )
    assert prompt_numbers.trim_fixed(text) == plain


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            FLOATS,
            st.sampled_from([math.nan, math.inf, -math.inf, True, False, None, "1.5"]),
        ),
        max_size=14,
    )
)
def test_finite_list_and_the_series_section_match_the_plain_code(values: list[Any]) -> None:
    assert prompt_numbers.finite_list(values) == plain_finite_list(values)
    assert prompt_numbers.finite_list(tuple(values)) == plain_finite_list(tuple(values))
    vector = FeatureVector(
        ts=0,
        instrument=InstrumentRef(symbol="BTC/USDT"),
        values={},
        meta={"series": {"close": values, "rsi_14": values}},
    )
    plain = _result(plain_series, [vector])
    twice = [_result(prompt_context.render_series, [vector]) for _ in range(2)]  # remembered
    assert twice == [plain, plain]


def test_a_remembered_close_never_turns_minus_zero_into_zero_or_back() -> None:
    def vector(closes: list[Any]) -> FeatureVector:
        meta = {"series": {"close": closes}}
        return FeatureVector(ts=0, instrument=InstrumentRef(symbol="X"), values={}, meta=meta)

    assert prompt_context.render_series([vector([0.0, -0.0, 1.0])]).endswith("close 0 -0 1")
    assert prompt_context.render_series([vector([-0.0, 0.0, 1])]).endswith("close -0 0 1")
    assert prompt_context.render_series([vector([1, True, 1.0])]).endswith("close 1 1")


@settings(max_examples=300, deadline=None)
@given(value=st.floats(min_value=0, max_value=200))
def test_the_rsi_series_shortcut_writes_num_with_two_digits(value: float) -> None:
    vector = FeatureVector(
        ts=0,
        instrument=InstrumentRef(symbol="X"),
        values={},
        meta={"series": {"rsi_14": [value]}},
    )
    assert (
        prompt_context.render_series([vector])
        == f"series (oldest first):\nX: rsi {plain_num(value, 2)}"
    )


@settings(max_examples=200, deadline=None)
@given(ts=st.integers(min_value=-(10**12), max_value=10**14))
def test_remembered_timestamps_and_durations_are_the_plain_text(ts: int) -> None:
    plain = datetime.fromtimestamp(ts / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert prompt_numbers.format_ts(ts) == prompt_numbers.format_ts(ts) == plain
    assert prompt_numbers.format_ts(cast(int, float(ts))) == plain
    assert format_duration(abs(ts)) == format_duration(float(abs(ts)))


def test_a_remembered_date_gives_each_minute_of_the_day_its_plain_text() -> None:
    day = 86_400_000
    for start in [0, 20_198 * day, -3 * day, 2_932_896 * day]:  # 1970, 2025, 1969, year 9999
        for ts in [
            start - 60_001,
            start - 1,
            start,
            start + 59_999,
            start + 60_000,
            start + day - 1,
        ]:
            plain = datetime.fromtimestamp(ts / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            assert prompt_numbers.format_ts(ts) == plain


def test_durations_are_written_as_before() -> None:
    cases = {0: "0s", 59_999: "59s", 5_400_000: "1h30m", 86_400_000: "1d", 97_200_000: "1d3h"}
    for ms, text in cases.items():
        assert format_duration(ms) == format_duration(ms) == text


# --- the prompt's hash and cache key --------------------------------------------------------

TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(['"', "\\", "\n", "\t", "\x00", "\x1f", "\u2028", "€", "😀", "|"]),
    ),
    max_size=40,
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": TEXT}
)


@settings(max_examples=300, deadline=None)
@given(
    prompts=st.lists(st.lists(MESSAGE, min_size=0, max_size=4), min_size=1, max_size=6),
    systems=st.lists(TEXT, min_size=1, max_size=2),
    temperature=st.sampled_from([None, 0.0, 0.7, 1, 2.0]),
    sample=st.sampled_from([0, 0, 1, 12]),
)
def test_the_incremental_hash_and_key_are_the_plain_ones(
    prompts: list[list[dict[str, str]]], systems: list[str], temperature: Any, sample: int
) -> None:
    hasher = PromptHasher("openai/m€", temperature, sample)
    for index, messages in enumerate(prompts):
        if messages:  # the usual shape: a system message the prompts share, then the user's
            messages[0] = {"role": "system", "content": systems[index % len(systems)]}
        digest = hasher.digest(messages)
        plain = plain_messages_json(messages)
        assert messages_json(messages) == plain
        assert digest.prompt_hash == hashlib.sha256(plain.encode()).hexdigest()
        assert digest.cache_key == plain_cache_key("openai/m€", temperature, messages, sample)
        assert digest.cache_key == cache_key("openai/m€", temperature, messages, sample)


def test_prompts_of_another_shape_are_hashed_whole() -> None:
    hasher = PromptHasher("m", 0.0)
    odd: list[list[dict[str, Any]]] = [
        [{"role": "user", "content": "a", "name": "x"}, {"role": "user", "content": "b"}],
        [{"role": "system", "content": 1}, {"role": "user", "content": "b"}],
        [{"content": "b", "role": "user"}],
    ]
    for messages in odd:
        plain = plain_messages_json(messages)
        assert messages_json(messages) == plain
        assert hasher.digest(messages).cache_key == plain_cache_key("m", 0.0, messages)
    with pytest.raises(ValueError, match="sample_index"):
        PromptHasher("m", 0.0, -1)


# --- reading the reply ----------------------------------------------------------------------

JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["items", "notes", "instrument", "action", "plan", "x", "Items"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
PLAN = st.fixed_dictionaries(
    {
        "items": st.lists(
            st.dictionaries(st.sampled_from(["instrument", "action", "qty"]), JSON_VALUE),
            max_size=3,
        )
    },
    optional={"notes": TEXT, "extra": JSON_VALUE},
)


@settings(max_examples=400, deadline=None)
@given(
    value=st.one_of(PLAN, JSON_VALUE),
    before=st.sampled_from(["", " ", "\n\t", "```json\n", "Plan: ", "\x1c"]),
    after=st.sampled_from(["", " \n", "\n```", " ok", "\x1c"]),
    indent=st.sampled_from([None, 2]),
    cut=st.integers(min_value=0, max_value=3),
)
def test_the_whole_object_shortcut_finds_what_the_scan_finds(
    value: Any, before: str, after: str, indent: int | None, cut: int
) -> None:
    text = before + json.dumps(value, indent=indent) + after
    text = text[: len(text) - cut] if cut else text
    assert _outcome(plan_json._plan_in, text) == _outcome(plan_json._scanned_plan, text)


def _outcome(read: Any, text: str) -> Any:
    try:
        return ("plan", read(text))
    except InvalidPlanError as error:
        return ("error", str(error))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(TEXT, st.sampled_from(["Target_Qty", "Close Long", " BUY ", "x" * 80])))
def test_remembered_key_and_action_words_are_the_plain_ones(text: str) -> None:
    import re

    for _ in range(2):
        assert compact(text) == re.sub(r"[^a-z0-9]", "", text.lower())
        assert action_word(text) == re.sub(r"[\s\-]+", "_", text.strip().lower())


def test_a_remembered_symbol_index_resolves_as_a_new_one() -> None:
    symbols = ("BTC/USDT", "BTC/USDT:USDT", "eth/usdt", "ETH/USDT")
    shared, fresh = symbol_index(symbols), SymbolIndex(symbols)
    assert symbol_index(symbols) is shared
    for text in ["btcusdt", "BTC", "ETH/USDT", "eth", "BTC-USDT-SWAP", "SOL"]:
        assert shared.resolve(text) == fresh.resolve(text)
