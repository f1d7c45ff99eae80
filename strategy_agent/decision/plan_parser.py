"""Turn an LLM's reply text into an ``LlmPlanProposal``, tolerantly and item by item.

Tolerant in form (``plan_json``): reasoning before ``</think>`` dropped, code
fences and prose ignored, the last plan-shaped JSON value taken. Tolerant in
words (``plan_vocabulary``): keys in any casing or spelling, the action words
of other tools mapped to buy/sell/flat/noop by one quantity rule, symbols
written ``BTCUSDT`` or ``BTC`` matched to the configured one. Strict in values:
an item with a non-finite, ambiguous or missing quantity, an unknown action, a
confidence outside 0..1 or a wrong type is rejected *alone*, with its reason,
and the rest of the plan stands. Only a reply with no usable plan at all
(empty, prose only, cut off, reasoning without an answer) raises
``InvalidPlanError`` (the caller may ask for a repair).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from strategy_agent.decision.plan_json import (
    MAX_REPLY_CHARS,
    describe,
    extract_json,
    find_plan,
    looks_like_item,
)
from strategy_agent.decision.plan_vocabulary import (
    ACTION_KEYS,
    ACTIONS,
    CONFIDENCE_KEYS,
    LIST_KEYS,
    NO_QUANTITY_KINDS,
    NOTES_KEYS,
    POSITION_KINDS,
    RATIONALE_KEYS,
    SYMBOL_KEYS,
    TARGET_KEYS,
    Resolved,
    SymbolIndex,
    action_kind,
    action_word,
    clean_text,
    compact_keys,
    first_of,
    resolve_action,
    short_text,
    symbol_index,
    to_confidence,
    to_finite_float,
)
from strategy_agent.errors import InvalidPlanError
from strategy_agent.models import (
    GuardrailOutcome,
    InstrumentRef,
    LlmDecisionItem,
    LlmPlanProposal,
)

__all__ = [
    "ACTIONS",
    "MAX_ITEMS",
    "MAX_REPLY_CHARS",
    "ParsedPlan",
    "RecentItems",
    "RecentParses",
    "extract_json",
    "parse_item",
    "parse_plan",
    "plan_from_json",
    "to_finite_float",
]

MAX_ITEMS = 100
MAX_SYMBOL_CHARS = 64
MAX_RATIONALE_CHARS = 500
MAX_NOTES_CHARS = 2_000
MAX_REASONING_CHARS = 2_000


@dataclass(frozen=True)
class ParsedPlan:
    """A proposal of the valid items, one rejected outcome per invalid item, and the
    reasoning dropped from before the answer (cut to ``MAX_REASONING_CHARS``), if any."""

    proposal: LlmPlanProposal
    rejected: list[GuardrailOutcome] = field(default_factory=list)
    reasoning: str | None = None


def parse_plan(
    reply: str | None,
    ts: int,
    known_symbols: Iterable[str] = (),
    positions: Mapping[str, float] | None = None,
) -> ParsedPlan:
    """Parse a reply into a plan; raises ``InvalidPlanError`` when it holds no usable plan.

    ``positions`` maps symbol to the signed quantity held (base units); words
    like ``close_long``, ``reduce`` or ``short`` are resolved against it.
    """
    value, reasoning = find_plan(reply)
    parsed = plan_from_json(value, ts, known_symbols, positions)
    if reasoning is None:
        return parsed
    return ParsedPlan(parsed.proposal, parsed.rejected, clean_text(reasoning, MAX_REASONING_CHARS))


class RecentParses:
    """``parse_plan``, remembered for the last replies (a replay from the cache meets the
    same reply many times: a rule-like model repeats "all noop" or "all flat").

    ``parse_plan`` is a pure function of the reply, the known symbols (in order) and
    the positions held; ``ts`` only stamps the proposal, and the caller stamps its own
    again. A plan whose parse never read the positions (no item said a word of
    ``POSITION_KINDS`` such as reduce or close_long; which words it says depends on
    the reply and symbols alone) is reused whatever is held; any other only for the
    same positions (compared by value: 0.0 and -0.0 read alike). A reply that is no
    plan raises each time. The least recently used entry goes first; 32 hold the
    repeats, more only cost the garbage collector.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._plans: dict[tuple[Any, ...], ParsedPlan] = {}

    def parse(
        self, reply: str, ts: int, known_symbols: list[str], positions: Mapping[str, float]
    ) -> ParsedPlan:
        """``parse_plan(reply, ts, known_symbols, positions)``, or the same plan remembered."""
        plans = self._plans
        key: tuple[Any, ...] = (reply, tuple(known_symbols))  # a plan that reads no position
        if key not in plans:
            key = (*key, tuple(sorted(positions.items())))
        parsed = plans.pop(key, None)
        if parsed is None:
            watched = _WatchedPositions(positions)
            parsed = parse_plan(reply, ts, known_symbols, watched)
            if not watched.read:
                key = key[:2]
            if len(plans) >= self.size:
                del plans[next(iter(plans))]  # the least recently used
        plans[key] = parsed  # (again) the most recent
        return parsed


class _WatchedPositions(Mapping[str, float]):
    """Positions that note whether anything read them."""

    def __init__(self, positions: Mapping[str, float]) -> None:
        self._positions = positions
        self.read = False

    def __getitem__(self, symbol: str) -> float:
        self.read = True
        return self._positions[symbol]

    def __iter__(self) -> Iterator[str]:
        self.read = True
        return iter(self._positions)

    def __len__(self) -> int:
        self.read = True
        return len(self._positions)


class RecentItems:
    """``parse_item``, remembered for the items met before (replies of one model repeat
    items such as ``{"instrument": "BTC/USDT", "action": "noop", ...}`` even when the
    rest of the reply differs).

    An item is remembered only when it parsed into a decision without reading the
    positions (which it reads depends on the item and the symbols alone), and found
    again only with the same ``SymbolIndex`` and the same keys and values in the same
    order, told apart by ``repr`` (so ``1``, ``1.0``, ``True`` and ``0.0``, ``-0.0``
    differ). The decisions are frozen: plans share them. Up to ``size`` items; then
    it starts again. ``plan_from_json`` uses one for the process (a dict, as the
    vocabulary's memos: safe across threads).
    """

    def __init__(self, size: int = 1_024) -> None:
        self.size = size
        self._items: dict[tuple[Any, ...], LlmDecisionItem] = {}

    def parse(
        self, raw: Any, index: SymbolIndex, positions: Mapping[str, float]
    ) -> LlmDecisionItem | GuardrailOutcome:
        """``parse_item(raw, index, positions)``, or the same decision remembered."""
        if type(raw) is not dict:
            return parse_item(raw, index, positions)
        try:
            values = tuple(map(repr, raw.values()))
        except (ValueError, RecursionError):  # an integer too long or a list too deep
            return parse_item(raw, index, positions)
        if sum(map(len, values)) > MAX_ITEM_KEY_CHARS:  # a long rationale: not remembered
            return parse_item(raw, index, positions)
        key = (index, tuple(raw), values)
        item = self._items.get(key)
        if item is not None:
            return item
        watched = _WatchedPositions(positions)
        parsed = parse_item(raw, index, watched)
        if isinstance(parsed, LlmDecisionItem) and not watched.read:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = parsed
        return parsed


# Items whose values' reprs are longer than this are parsed each time: 1,024 remembered
# items then hold at most about a megabyte of keys.
MAX_ITEM_KEY_CHARS = 1_000
_RECENT_ITEMS = RecentItems()


def plan_from_json(
    value: Any,
    ts: int,
    known_symbols: Iterable[str] = (),
    positions: Mapping[str, float] | None = None,
) -> ParsedPlan:
    """Validate each item of a plan-shaped JSON value separately."""
    raw_items, notes = _items_and_notes(value)
    index = symbol_index(tuple(known_symbols))
    held = positions if positions is not None else {}
    items: list[LlmDecisionItem] = []
    rejected: list[GuardrailOutcome] = []
    for position, raw in enumerate(raw_items):
        if position >= MAX_ITEMS:
            rejected.append(_rejection(raw, index, [f"more than {MAX_ITEMS} items; ignored"]))
            continue
        parsed = _RECENT_ITEMS.parse(raw, index, held)
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
        raise InvalidPlanError(f'expected a JSON object with "items", got {describe(value)}')
    keys = compact_keys(value)
    notes = _notes(keys)
    for key in LIST_KEYS:
        if key not in keys:
            continue
        inner = keys[key]
        if key == "plan" and isinstance(inner, dict):
            nested, nested_notes = _items_and_notes(inner)
            return nested, nested_notes or notes
        if isinstance(inner, list):
            return inner, notes
        raise InvalidPlanError(f'"{key}" must be a list of decision objects, got {describe(inner)}')
    if looks_like_item(value):
        return [value], None
    raise InvalidPlanError(f'the JSON has no "items" list of decisions (got {describe(value)})')


def _notes(keys: Mapping[str, Any]) -> str | None:
    for key in NOTES_KEYS:
        note = keys.get(key)
        if isinstance(note, str) and note.strip():
            return clean_text(note, MAX_NOTES_CHARS)
    return None


def parse_item(
    raw: Any, index: SymbolIndex, positions: Mapping[str, float] | None = None
) -> LlmDecisionItem | GuardrailOutcome:
    """One decision item, or a rejected outcome that says what was wrong with it."""
    if not isinstance(raw, dict):
        return _rejection(raw, index, [f"item is {describe(raw)}, expected an object"])
    keys = compact_keys(raw)
    reasons: list[str] = []
    symbol = _symbol(keys, index, reasons)
    kind, problem = action_kind(keys)
    if problem:
        reasons.append(problem)
    number = _number(keys, kind, reasons)
    confidence = _confidence(keys, reasons)
    if reasons or symbol is None or kind is None:
        return _rejection(raw, index, reasons or ["incomplete item"])
    current = 0.0  # read only when it matters: RecentParses counts on it
    if kind in POSITION_KINDS and positions is not None:
        current = positions.get(symbol, 0.0)
    resolved = resolve_action(kind, number, current, symbol)
    if not isinstance(resolved, Resolved):
        return _rejection(raw, index, [resolved], prefix="unclear item: ")
    try:
        return LlmDecisionItem(
            instrument=_instrument(symbol),
            action=resolved.action,  # type: ignore[arg-type]
            target_qty=resolved.target_qty,
            confidence=confidence,
            rationale=_rationale(first_of(keys, RATIONALE_KEYS)[1]),
        )
    except ValidationError as error:
        first = error.errors()[0]
        return _rejection(raw, index, [f"invalid item: {first['msg']}"])


@functools.lru_cache(maxsize=256)
def _instrument(symbol: str) -> InstrumentRef:
    """The ``InstrumentRef`` of a symbol, validated once (it is frozen: items share it)."""
    return InstrumentRef(symbol=symbol)


def _raw_symbol(keys: Mapping[str, Any]) -> Any:
    _, value = first_of(keys, SYMBOL_KEYS)
    if isinstance(value, dict):
        inner = compact_keys(value)
        return inner.get("symbol", inner.get("name"))
    return value


def _symbol(keys: Mapping[str, Any], index: SymbolIndex, reasons: list[str]) -> str | None:
    value = _raw_symbol(keys)
    if value is None:
        reasons.append('missing "instrument" (e.g. "BTC/USDT")')
        return None
    if not isinstance(value, str) or not value.strip():
        reasons.append(f"instrument must be a symbol string, got {short_text(value)}")
        return None
    symbol = clean_text(value.strip(), MAX_SYMBOL_CHARS + 1)
    if len(symbol) > MAX_SYMBOL_CHARS:
        reasons.append(f"instrument is longer than {MAX_SYMBOL_CHARS} characters")
        return None
    resolved, problem = index.resolve(symbol)
    if problem:
        reasons.append(problem)
        return None
    return resolved


def _number(keys: Mapping[str, Any], kind: str | None, reasons: list[str]) -> float | None:
    """The quantity, read only for actions that need one (a close or a hold ignores it)."""
    if kind in NO_QUANTITY_KINDS:
        return None
    name, value = first_of(keys, TARGET_KEYS)
    if name is None:
        return None  # resolve_action says it is missing, for the actions that need it
    number, problem = to_finite_float(value)
    if problem:
        reasons.append(f"target_qty {problem}")
    return number


def _confidence(keys: Mapping[str, Any], reasons: list[str]) -> float | None:
    name, value = first_of(keys, CONFIDENCE_KEYS)
    if name is None:
        return None
    number, problem = to_confidence(value)
    if problem:
        reasons.append(problem)
    return number


def _rationale(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else short_text(value, MAX_RATIONALE_CHARS)
    return clean_text(text, MAX_RATIONALE_CHARS) or None


def _rejection(
    raw: Any, index: SymbolIndex, reasons: list[str], prefix: str = "unparseable item: "
) -> GuardrailOutcome:
    symbol = "?"
    action = "?"
    requested: float | None = None
    if isinstance(raw, dict):
        keys = compact_keys(raw)
        value = _raw_symbol(keys)
        if isinstance(value, str) and value.strip():
            symbol = index.resolve(clean_text(value.strip(), MAX_SYMBOL_CHARS))[0]
        _, word = first_of(keys, ACTION_KEYS)
        if action_word(word) is not None:
            action = clean_text(str(word), 20)
        name, quantity = first_of(keys, TARGET_KEYS)
        if name is not None:
            requested, _ = to_finite_float(quantity)
    return GuardrailOutcome(
        symbol=symbol,
        action=action,
        status="rejected",
        requested_qty=requested,
        reasons=[prefix + "; ".join(reasons)],
    )
