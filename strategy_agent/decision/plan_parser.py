"""Turn an LLM's reply text into an ``LlmPlanProposal``, tolerantly and item by item.

Tolerant in form: code fences, prose around the JSON, ``"BTC/USDT"`` or
``{"symbol": "BTC/USDT"}``, numbers as strings, items under ``items``,
``decisions`` or as a bare list, ``btcusdt`` matched to a configured symbol.
Strict in values: an item with a non-finite, non-numeric or missing quantity,
an unknown action or a wrong type is rejected *alone*, with its reason, and the
rest of the plan stands. Only a reply with no usable JSON at all (empty, prose
only, cut off) raises ``InvalidPlanError`` (the caller may ask for a repair).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from strategy_agent.errors import InvalidPlanError
from strategy_agent.models import (
    GuardrailOutcome,
    InstrumentRef,
    LlmDecisionItem,
    LlmPlanProposal,
)

MAX_REPLY_CHARS = 100_000
MAX_ITEMS = 100
MAX_SYMBOL_CHARS = 64
MAX_RATIONALE_CHARS = 500
MAX_NOTES_CHARS = 2_000
_MAX_CANDIDATES = 64

ACTIONS = ("buy", "sell", "flat", "noop")
_ACTION_ALIASES = {
    "hold": "noop",
    "none": "noop",
    "wait": "noop",
    "keep": "noop",
    "close": "flat",
    "exit": "flat",
    "long": "buy",
    "short": "sell",
}
_LIST_KEYS = ("items", "decisions", "plan", "orders", "actions", "trades")
_SYMBOL_KEYS = ("instrument", "symbol", "pair", "ticker", "asset")
_TARGET_KEYS = ("target_qty", "target", "target_position", "target_quantity")
_NOTES_KEYS = ("notes", "note", "summary", "reasoning")
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript|js)?[ \t]*\n?(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


@dataclass(frozen=True)
class ParsedPlan:
    """A proposal of the valid items, plus one rejected outcome per invalid item."""

    proposal: LlmPlanProposal
    rejected: list[GuardrailOutcome] = field(default_factory=list)


def parse_plan(reply: str | None, ts: int, known_symbols: Iterable[str] = ()) -> ParsedPlan:
    """Parse a reply into a plan; raises ``InvalidPlanError`` when it holds no usable JSON."""
    return plan_from_json(extract_json(reply), ts, known_symbols)


# --- finding the JSON ------------------------------------------------------------------


def extract_json(reply: str | None) -> Any:
    """The plan-shaped JSON value in ``reply`` (fences and prose ignored)."""
    if reply is None or not reply.strip():
        raise InvalidPlanError("the reply was empty; answer with one JSON object")
    if len(reply) > MAX_REPLY_CHARS:
        raise InvalidPlanError(
            f"the reply is {len(reply)} characters long (limit {MAX_REPLY_CHARS}); "
            f"answer with one short JSON object"
        )
    blocks = [m.group(1) for m in _FENCE.finditer(reply)]
    last_error: InvalidPlanError | None = None
    for text in [*blocks, reply]:
        try:
            return _plan_json_in(text)
        except InvalidPlanError as error:
            last_error = error
    assert last_error is not None  # the loop ran at least once
    raise last_error


def _plan_json_in(text: str) -> Any:
    decoder = json.JSONDecoder()
    truncated = False
    other_json: Any = None
    for start in _candidate_starts(text):
        value = _decode_at(decoder, text, start)
        if value is _UNBALANCED:
            truncated = True
            continue
        if value is _NO_JSON:
            continue
        if _looks_like_plan(value, explicit_only=truncated):
            return value
        if other_json is None:
            other_json = value
    if truncated:
        raise InvalidPlanError(
            "the reply ends inside a JSON object (cut off?); answer with a complete, "
            "shorter JSON object"
        )
    if other_json is not None:
        raise InvalidPlanError(
            f'the JSON has no "items" list of decisions (got {_describe(other_json)}); '
            f'answer {{"items": [...], "notes": "..."}}'
        )
    raise InvalidPlanError("the reply contains no JSON object; answer with one JSON object only")


_UNBALANCED = object()
_NO_JSON = object()


def _candidate_starts(text: str) -> Iterator[int]:
    count = 0
    for index, char in enumerate(text):
        if char in "{[":
            yield index
            count += 1
            if count >= _MAX_CANDIDATES:
                return


def _decode_at(decoder: json.JSONDecoder, text: str, start: int) -> Any:
    try:
        value, _ = decoder.raw_decode(text, start)
        return value
    except (ValueError, RecursionError):
        pass
    end = _balanced_end(text, start)
    if end is None:
        return _UNBALANCED
    repaired = _TRAILING_COMMA.sub(r"\1", text[start:end])
    try:
        return json.loads(repaired)
    except (ValueError, RecursionError):
        return _NO_JSON


def _balanced_end(text: str, start: int) -> int | None:
    """Index after the bracket closing the one at ``start``; ``None`` if the text ends first."""
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _looks_like_plan(value: Any, explicit_only: bool = False) -> bool:
    if isinstance(value, dict):
        if any(key in value for key in _LIST_KEYS):
            return True
        return not explicit_only and _looks_like_item(value)
    if isinstance(value, list) and not explicit_only:
        return all(isinstance(entry, dict) for entry in value)
    return False


def _looks_like_item(value: Mapping[str, Any]) -> bool:
    return "action" in value and any(key in value for key in _SYMBOL_KEYS)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(str(k) for k in list(value)[:6])
        return f"an object with keys {keys}" if keys else "an empty object"
    return f"a {type(value).__name__}"


# --- from JSON to a plan ------------------------------------------------------------------


def plan_from_json(value: Any, ts: int, known_symbols: Iterable[str] = ()) -> ParsedPlan:
    """Validate each item of a plan-shaped JSON value separately."""
    raw_items, notes = _items_and_notes(value)
    index = _symbol_index(known_symbols)
    items: list[LlmDecisionItem] = []
    rejected: list[GuardrailOutcome] = []
    for position, raw in enumerate(raw_items):
        if position >= MAX_ITEMS:
            rejected.append(_rejection(raw, index, [f"more than {MAX_ITEMS} items; ignored"]))
            continue
        parsed = parse_item(raw, index)
        if isinstance(parsed, LlmDecisionItem):
            items.append(parsed)
        else:
            rejected.append(parsed)
    proposal = LlmPlanProposal(ts=ts, items=items, notes=notes)
    return ParsedPlan(proposal=proposal, rejected=rejected)


def _items_and_notes(value: Any) -> tuple[list[Any], str | None]:
    if isinstance(value, list):
        return value, None
    if not isinstance(value, dict):
        raise InvalidPlanError(f'expected a JSON object with "items", got {_describe(value)}')
    notes = _notes(value)
    for key in _LIST_KEYS:
        if key not in value:
            continue
        inner = value[key]
        if key == "plan" and isinstance(inner, dict):
            nested, nested_notes = _items_and_notes(inner)
            return nested, nested_notes or notes
        if isinstance(inner, list):
            return inner, notes
        raise InvalidPlanError(
            f'"{key}" must be a list of decision objects, got {_describe(inner)}'
        )
    if _looks_like_item(value):
        return [value], None
    raise InvalidPlanError(f'the JSON has no "items" list of decisions (got {_describe(value)})')


def _notes(value: Mapping[str, Any]) -> str | None:
    for key in _NOTES_KEYS:
        note = value.get(key)
        if isinstance(note, str) and note.strip():
            return _clean_text(note, MAX_NOTES_CHARS)
    return None


def parse_item(raw: Any, symbol_index: Mapping[str, str]) -> LlmDecisionItem | GuardrailOutcome:
    """One decision item, or a rejected outcome that says what was wrong with it."""
    if not isinstance(raw, dict):
        return _rejection(raw, symbol_index, [f"item is {_describe(raw)}, expected an object"])
    reasons: list[str] = []
    symbol = _symbol(raw, symbol_index, reasons)
    action = _action(raw.get("action"), reasons)
    target_qty = _target_qty(raw, action, reasons)
    confidence = _confidence(raw.get("confidence"), reasons)
    if reasons or symbol is None or action is None or target_qty is None:
        return _rejection(raw, symbol_index, reasons or ["incomplete item"])
    try:
        return LlmDecisionItem(
            instrument=InstrumentRef(symbol=symbol),
            action=action,  # type: ignore[arg-type]
            target_qty=target_qty,
            confidence=confidence,
            rationale=_rationale(raw.get("rationale", raw.get("reason"))),
        )
    except ValidationError as error:
        first = error.errors()[0]
        return _rejection(raw, symbol_index, [f"invalid item: {first['msg']}"])


def _symbol_index(known_symbols: Iterable[str]) -> dict[str, str]:
    index: dict[str, str] = {}
    for symbol in known_symbols:
        index[symbol.upper()] = symbol
        index.setdefault(_compact(symbol), symbol)
    return index


def _compact(symbol: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", symbol.upper())


def _raw_symbol(raw: Mapping[str, Any]) -> Any:
    for key in _SYMBOL_KEYS:
        if key in raw:
            value = raw[key]
            if isinstance(value, dict):
                return value.get("symbol", value.get("name"))
            return value
    return None


def _symbol(raw: Mapping[str, Any], index: Mapping[str, str], reasons: list[str]) -> str | None:
    value = _raw_symbol(raw)
    if value is None:
        reasons.append('missing "instrument" (e.g. "BTC/USDT")')
        return None
    if not isinstance(value, str) or not value.strip():
        reasons.append(f"instrument must be a symbol string, got {_short(value)}")
        return None
    symbol = _clean_text(value.strip(), MAX_SYMBOL_CHARS + 1)
    if len(symbol) > MAX_SYMBOL_CHARS:
        reasons.append(f"instrument is longer than {MAX_SYMBOL_CHARS} characters")
        return None
    return index.get(symbol.upper()) or index.get(_compact(symbol)) or symbol


def _action(value: Any, reasons: list[str]) -> str | None:
    if not isinstance(value, str):
        reasons.append(f"action must be one of {', '.join(ACTIONS)}, got {_short(value)}")
        return None
    action = value.strip().lower()
    action = _ACTION_ALIASES.get(action, action)
    if action not in ACTIONS:
        reasons.append(f"action {_short(value)} is not one of {', '.join(ACTIONS)}")
        return None
    return action


def _target_qty(raw: Mapping[str, Any], action: str | None, reasons: list[str]) -> float | None:
    key = next((k for k in _TARGET_KEYS if k in raw and raw[k] is not None), None)
    if key is None:
        if action in ("flat", "noop"):
            return 0.0
        reasons.append(f"missing target_qty (the signed target position) for {action or 'item'}")
        return None
    number, problem = to_finite_float(raw[key])
    if problem:
        reasons.append(f"target_qty {problem}")
        return None
    if action == "flat":
        return 0.0
    return number


def _confidence(value: Any, reasons: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().endswith("%"):
        number, problem = to_finite_float(value.strip()[:-1])
        number = number / 100.0 if number is not None else None
    else:
        number, problem = to_finite_float(value)
    if problem or number is None:
        reasons.append(f"confidence {problem or 'is missing'}")
        return None
    if 1.0 < number <= 100.0:
        number /= 100.0  # a percentage given as a number
    if not 0.0 <= number <= 1.0:
        reasons.append(f"confidence {number:g} is outside 0..1")
        return None
    return number


def to_finite_float(value: Any) -> tuple[float | None, str | None]:
    """``(number, None)`` for a finite number or numeric string, else ``(None, why)``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, f"must be a number, got {_short(value)}"
    try:
        if isinstance(value, str):
            number = float(value.strip().replace(",", "").replace("_", ""))
        else:
            number = float(value)
    except ValueError:
        return None, f"{_short(value)} is not a number"
    except OverflowError:
        return None, "is too large to be finite"
    if not math.isfinite(number):
        return None, f"{_short(value)} is not a finite number"
    return number, None


def _rationale(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else _short(value, MAX_RATIONALE_CHARS)
    return _clean_text(text, MAX_RATIONALE_CHARS) or None


def _rejection(raw: Any, index: Mapping[str, str], reasons: list[str]) -> GuardrailOutcome:
    symbol = "?"
    action = "?"
    requested: float | None = None
    if isinstance(raw, dict):
        value = _raw_symbol(raw)
        if isinstance(value, str) and value.strip():
            cleaned = _clean_text(value.strip(), MAX_SYMBOL_CHARS)
            symbol = index.get(cleaned.upper()) or index.get(_compact(cleaned)) or cleaned
        if isinstance(raw.get("action"), str):
            action = _clean_text(raw["action"], 20)
        key = next((k for k in _TARGET_KEYS if k in raw), None)
        if key is not None:
            requested, _ = to_finite_float(raw[key])
    return GuardrailOutcome(
        symbol=symbol,
        action=action,
        status="rejected",
        requested_qty=requested,
        reasons=["unparseable item: " + "; ".join(reasons)],
    )


def _short(value: Any, limit: int = 40) -> str:
    try:
        text = json.dumps(value, allow_nan=True, default=str)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    text = _clean_text(text, limit + 1)
    return text if len(text) <= limit else text[:limit] + "..."


def _clean_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates replaced (they break JSON storage)."""
    return text[:limit].encode("utf-8", "replace").decode("utf-8")
