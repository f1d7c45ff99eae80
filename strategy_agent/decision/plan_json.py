"""Find the plan in a reply: reasoning dropped, prose ignored, the last plan-shaped JSON wins.

- Reasoning: everything up to the last end-of-reasoning marker (``</think>``,
  ``</thinking>``, ``</reasoning>``, ``[/THINK]``, or gpt-oss's
  ``<|channel|>final<|message|>``) is reasoning, never the plan, whether or not
  the opening tag is there. A reply that opens reasoning and never closes it
  has no answer.
- JSON: the answer is scanned for top-level JSON values (code fences are just
  text; trailing commas and Python-style quotes are repaired). The last
  plan-shaped one is the plan: a model that drafts and then corrects itself
  meant the correction.
- Prose fragments are never a plan: ``[]``, ``[14]`` or ``{see above}`` inside a
  sentence are skipped. A bare list or ``[]`` is a plan only when it is the
  whole answer.
- A reply that ends inside a JSON value was cut off: it is refused whole, even
  when an earlier draft is complete.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from strategy_agent.decision.plan_vocabulary import (
    ACTION_KEYS,
    LIST_KEYS,
    SYMBOL_KEYS,
    compact,
    compact_keys,
)
from strategy_agent.errors import InvalidPlanError

MAX_REPLY_CHARS = 100_000
_MAX_CANDIDATES = 64
_MAX_LITERAL_CHARS = 20_000
REASONING_END = re.compile(
    r"</think>|</thinking>|</reasoning>|\[/THINK\]|<\|channel\|>final<\|message\|>", re.I
)
_REASONING_START = re.compile(
    r"\s*(?:<think>|<thinking>|<reasoning>|\[THINK\]|<\|channel\|>analysis)", re.I
)
_FENCE_OPEN = re.compile(r"\s*(?:```[ \t]*[A-Za-z]*)?\s*")
_FENCE_CLOSE = re.compile(r"\s*(?:```)?\s*")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_JSON_LIKE_START = re.compile(r"""\{\s*["']|\[\s*[{\[]""")


@dataclass(frozen=True)
class ReplyParts:
    """A reply split into the answer and the reasoning before it (``None``: there was none)."""

    answer: str
    reasoning: str | None


def split_reasoning(reply: str) -> ReplyParts:
    """The text after the last end-of-reasoning marker, and the reasoning before it.

    Raises ``InvalidPlanError`` when the reply opens reasoning and never closes it.
    """
    # every end marker holds "</", "[/" or "<|": most replies have none of them
    quick = "</" not in reply and "[/" not in reply and "<|" not in reply
    ends = [] if quick else list(REASONING_END.finditer(reply))
    if ends:
        last = ends[-1]
        reasoning = reply[: last.start()]
        opening = _REASONING_START.match(reasoning)
        if opening:
            reasoning = reasoning[opening.end() :]
        return ReplyParts(reply[last.end() :], reasoning.strip() or None)
    if _REASONING_START.match(reply):
        raise InvalidPlanError(
            "the reply is reasoning that never ends (no </think>), so it has no answer; "
            "finish the reasoning, then answer with one JSON object"
        )
    return ReplyParts(reply, None)


def extract_json(reply: str | None) -> Any:
    """The plan-shaped JSON value of ``reply`` (module doc); ``InvalidPlanError`` if none."""
    return find_plan(reply)[0]


def find_plan(reply: str | None) -> tuple[Any, str | None]:
    """``(plan JSON value, dropped reasoning or None)``; ``InvalidPlanError`` when there is none."""
    if reply is None or not reply.strip():
        raise InvalidPlanError("the reply was empty; answer with one JSON object")
    if len(reply) > MAX_REPLY_CHARS:
        raise InvalidPlanError(
            f"the reply is {len(reply)} characters long (limit {MAX_REPLY_CHARS}); "
            f"answer with one short JSON object"
        )
    parts = split_reasoning(reply)
    if not parts.answer.strip():
        raise InvalidPlanError(
            "the reply has reasoning but no answer after it; after the reasoning, "
            "answer with one JSON object"
        )
    return _plan_in(parts.answer), parts.reasoning


class _Found(NamedTuple):
    value: Any
    start: int
    end: int


def _plan_in(text: str) -> Any:
    whole = _whole_object(text)
    if whole is not None:
        return whole
    return _scanned_plan(text)


def _scanned_plan(text: str) -> Any:
    """The plan found by scanning ``text`` for its top-level JSON values (module doc)."""
    found, cuts = _top_level_values(text)
    whole = len(found) == 1 and not cuts and _is_whole(text, found[0])
    plans: list[tuple[int, Any]] = []
    for value in found:
        after_cut = bool(cuts) and value.start > cuts[0]
        plan = _as_plan(value.value, whole, explicit_only=after_cut)
        if plan is not None:
            plans.append((value.start, plan))
    if cuts and (not plans or cuts[-1] > plans[-1][0]):
        raise InvalidPlanError(
            "the reply ends inside a JSON object (cut off?); answer with a complete, "
            "shorter JSON object"
        )
    if plans:
        return plans[-1][1]
    if found:
        raise InvalidPlanError(
            f'the JSON has no "items" list of decisions (got {describe(found[-1].value)}); '
            f'answer {{"items": [...], "notes": "..."}}'
        )
    raise InvalidPlanError("the reply contains no JSON object; answer with one JSON object only")


def _whole_object(text: str) -> Any:
    """The plan when ``text`` is one JSON object and nothing else (the usual reply), else
    ``None`` (then the full scan decides, with its messages).

    The scan would give the same: a valid JSON object's brackets balance exactly at
    its end, so it is the one top-level value, no JSON is cut off, and only whitespace
    surrounds it (``_is_whole``); it decodes with ``json.loads`` at the first try.
    """
    trimmed = text.strip()
    if not trimmed.startswith("{"):
        return None
    try:
        value = json.loads(trimmed)
    except (ValueError, RecursionError):
        return None
    start = len(text) - len(text.lstrip())
    found = _Found(value, start, start + len(trimmed))
    if not isinstance(value, dict) or not _is_whole(text, found):
        return None
    return _as_plan(value, True)


def _top_level_values(text: str) -> tuple[list[_Found], list[int]]:
    """Complete JSON values not nested in another, and where JSON starts that never ends.

    After such a start, only explicit plans count (a complete item inside a cut-off
    plan is not a plan; a plan written again after an abandoned draft is).
    """
    found: list[_Found] = []
    cuts: list[int] = []
    attempts = 0
    for start in _bracket_positions(text):
        if found and start < found[-1].end:
            continue  # inside a value already read
        attempts += 1
        if attempts > _MAX_CANDIDATES:
            break
        end = _balanced_end(text, start)
        if end is None:
            if _JSON_LIKE_START.match(text, start):
                cuts.append(start)
            continue  # a lone bracket in prose, or JSON that never ends
        value = _decode(text[start:end])
        if value is not _NO_JSON:
            found.append(_Found(value, start, end))
    return found, cuts


def _bracket_positions(text: str) -> Iterator[int]:
    for index, char in enumerate(text):
        if char in "{[":
            yield index


_NO_JSON = object()


def _decode(fragment: str) -> Any:
    for candidate in (fragment, _TRAILING_COMMA.sub(r"\1", fragment)):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    if "'" in fragment and len(fragment) <= _MAX_LITERAL_CHARS:
        return _python_literal(fragment)
    return _NO_JSON


def _python_literal(fragment: str) -> Any:
    """``{'items': [...], 'ok': True}`` as some small models write it; only plain data."""
    try:
        value = ast.literal_eval(fragment)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO_JSON
    return value if _plain_data(value) else _NO_JSON


def _plain_data(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_plain_data(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_data(v, depth + 1) for k, v in value.items())
    return False


def _balanced_end(text: str, start: int) -> int | None:
    """Index after the bracket closing the one at ``start``; ``None`` if the text ends first."""
    depth = 0
    quote: str | None = None
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char == '"':
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _is_whole(text: str, found: _Found) -> bool:
    """True when nothing but whitespace and code-fence markers surrounds the value."""
    before, after = text[: found.start], text[found.end :]
    return bool(_FENCE_OPEN.fullmatch(before) and _FENCE_CLOSE.fullmatch(after))


def _as_plan(value: Any, whole: bool, explicit_only: bool = False) -> Any:
    """``value`` (or the plan wrapped in it) when it is plan-shaped, else ``None``."""
    if explicit_only:
        return value if isinstance(value, dict) and _explicit_plan(value) else None
    if isinstance(value, list):
        if whole and all(isinstance(entry, dict) for entry in value):
            return value
        if value and all(isinstance(entry, dict) and looks_like_item(entry) for entry in value):
            return value
        return None
    if not isinstance(value, dict):
        return None
    keys = compact_keys(value)
    if any(key in keys for key in LIST_KEYS):
        return value
    if looks_like_item(value):
        return value
    wrapped = [v for v in value.values() if isinstance(v, dict) and _explicit_plan(v)]
    return wrapped[0] if len(wrapped) == 1 else None


def _explicit_plan(value: dict[str, Any]) -> bool:
    """A dict with a list of decisions under ``items`` (or a spelling of it)."""
    for key, inner in value.items():
        name = compact(key)
        if name in LIST_KEYS and isinstance(inner, list):
            return True
        if name == "plan" and isinstance(inner, dict) and _explicit_plan(inner):
            return True
    return False


def looks_like_item(value: dict[str, Any]) -> bool:
    """An object with an action and an instrument (in any spelling): one decision."""
    keys = compact_keys(value)
    return any(k in keys for k in ACTION_KEYS) and any(k in keys for k in SYMBOL_KEYS)


def describe(value: Any) -> str:
    """``an object with keys a, b`` / ``a list``: for messages."""
    if isinstance(value, dict):
        keys = ", ".join(str(k) for k in list(value)[:6])
        return f"an object with keys {keys}" if keys else "an empty object"
    return f"a {type(value).__name__}"
