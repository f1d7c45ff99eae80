"""The words models use in a plan, mapped to the design's: keys, actions, symbols, numbers.

Keys are matched without case or separators (``TargetQty``, ``target_qty`` and
``target-qty`` are one key). Actions come in many vocabularies; each word maps
to one of the four actions (buy, sell, flat, noop) by one quantity rule:

- the number (``target_qty``, or ``qty``/``quantity``/``size``/``amount``) is
  always the size of the position AFTER the trade, never an order size;
- ``buy``/``sell`` take it signed, as the design says (-0.5 = short 0.5);
- ``long``-type words (long, open_long, buy_to_enter, enter_long...) mean a long
  of |number|; ``short``-type words (short, open_short, sell_to_enter...) a short
  of |number|; each becomes a buy or a sell by comparing with the held position;
- ``flat``-type words (flat, close, exit...) close the position and need no
  number; ``close_long`` and ``close_short`` also close it, but are refused when
  the position held is on the other side;
- ``increase``/``reduce``/``partial_close`` keep the side of the open position
  and move it to |number| (a reduce must end smaller, an increase larger);
- ``noop``-type words (hold, wait...) keep the position and need no number.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Item keys, compacted (lower case, letters and digits only), in order of preference.
LIST_KEYS = ("items", "decisions", "plan", "orders", "actions", "trades")
SYMBOL_KEYS = ("instrument", "symbol", "pair", "ticker", "asset", "market", "coin")
ACTION_KEYS = ("action", "decision", "signal", "side")
DIRECTION_KEYS = ("side", "direction", "positionside")
TARGET_KEYS = (
    "targetqty",
    "targetquantity",
    "targetposition",
    "targetsize",
    "qty",
    "quantity",
    "size",
    "amount",
    "positionsize",
    "target",  # last: a bare "target" is sometimes a price target
)
CONFIDENCE_KEYS = ("confidence", "conf")
RATIONALE_KEYS = ("rationale", "reason", "reasoning", "justification", "explanation")
NOTES_KEYS = ("notes", "note", "summary", "reasoning", "analysis", "commentary")

ACTIONS = ("buy", "sell", "flat", "noop")
_WORDS: dict[str, tuple[str, ...]] = {
    "buy": ("buy",),
    "sell": ("sell",),
    "long": ("long", "open_long", "buy_to_enter", "enter_long", "go_long", "buy_to_open"),
    "short": (
        "short",
        "open_short",
        "sell_to_enter",
        "enter_short",
        "go_short",
        "sell_short",
        "sell_to_open",
    ),
    "flat": ("flat", "close", "exit", "close_all", "close_position", "flatten"),
    "close_long": ("close_long", "exit_long", "sell_to_close"),
    "close_short": ("close_short", "exit_short", "buy_to_close", "cover"),
    "increase": ("increase", "add", "scale_in", "add_to_position"),
    "reduce": ("reduce", "partial_close", "decrease", "trim", "scale_out"),
    "noop": ("noop", "no_op", "hold", "wait", "none", "keep", "no_action", "do_nothing", "skip"),
}
_KIND_OF = {word: kind for kind, words in _WORDS.items() for word in words}
_OPEN_WORDS = frozenset({"open", "enter", "entry"})
ACCEPTED_WORDS = ", ".join(word for words in _WORDS.values() for word in words)
NO_QUANTITY_KINDS = frozenset({"flat", "close_long", "close_short", "noop"})

_GROUPED_NUMBER = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_NOT_KEY_CHAR = re.compile(r"[^a-z0-9]")
_WORD_GAPS = re.compile(r"[\s\-]+")
# compact() and action_word() of the strings seen (a replay parses the same keys every cycle)
_MEMO_SIZE = 4_096
_MEMO_KEY_CHARS = 64  # longer strings (a model may write anything) are not remembered
_COMPACT_MEMO: dict[str, str] = {}
_WORD_MEMO: dict[str, str] = {}
_SETTLE_SUFFIX = re.compile(r"(:[A-Z0-9]+|-SWAP|-PERP|PERP|\.P)$")


def compact(text: Any) -> str:
    """``"Target_Qty"`` -> ``"targetqty"``: how keys are compared."""
    if type(text) is not str or len(text) > _MEMO_KEY_CHARS:  # not remembered
        return _NOT_KEY_CHAR.sub("", str(text).lower())
    out = _COMPACT_MEMO.get(text)
    if out is None:
        out = _remember(_COMPACT_MEMO, text, _NOT_KEY_CHAR.sub("", text.lower()))
    return out


def _remember(memo: dict[str, str], key: str, value: str) -> str:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
    return value


def compact_keys(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping with compacted keys (the first spelling of a key wins)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out.setdefault(compact(key), value)
    return out


def first_of(keys: Mapping[str, Any], names: Iterable[str]) -> tuple[str | None, Any]:
    """``(name, value)`` of the first of ``names`` present (and not null) in ``keys``."""
    for name in names:
        if name in keys and keys[name] is not None:
            return name, keys[name]
    return None, None


# --- actions ----------------------------------------------------------------------------


def action_word(value: Any) -> str | None:
    """``"Close Long"`` -> ``"close_long"``; ``None`` for a non-string."""
    if not isinstance(value, str):
        return None
    if type(value) is not str or len(value) > _MEMO_KEY_CHARS:  # not remembered
        return _WORD_GAPS.sub("_", value.strip().lower())
    word = _WORD_MEMO.get(value)
    if word is None:
        word = _remember(_WORD_MEMO, value, _WORD_GAPS.sub("_", value.strip().lower()))
    return word


def action_kind(keys: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(kind, None)`` for a known action word, else ``(None, why)``.

    An ``open``/``close`` action with a ``side``/``direction`` of long or short
    (or buy or sell) is read as one word: open + long = long, close + sell =
    close_long.
    """
    name, value = first_of(keys, ACTION_KEYS)
    word = action_word(value)
    if word is None:
        shown = "missing" if name is None else f"got {short_text(value)}"
        return None, f"action must be one of {', '.join(ACTIONS)} ({shown})"
    direction = _direction(keys, skip=name)
    if word in _OPEN_WORDS and direction is not None:
        word = direction
    elif word in ("close", "exit") and direction is not None:
        word = "close_long" if direction == "long" else "close_short"
    kind = _KIND_OF.get(word)
    if kind is None:
        return None, (
            f"action {short_text(value)} is not accepted; use buy, sell, flat or noop "
            f"(also understood: {ACCEPTED_WORDS})"
        )
    return kind, None


def _direction(keys: Mapping[str, Any], skip: str | None) -> str | None:
    for name in DIRECTION_KEYS:
        if name == skip:
            continue
        word = action_word(keys.get(name))
        if word in ("long", "buy"):
            return "long"
        if word in ("short", "sell"):
            return "short"
    return None


# The kinds whose meaning depends on the position held; resolve_action reads
# ``current`` for these only.
POSITION_KINDS = frozenset({"long", "short", "close_long", "close_short", "increase", "reduce"})


@dataclass(frozen=True)
class Resolved:
    """A decided item: one of the four actions and its signed target position."""

    action: str
    target_qty: float


def resolve_action(kind: str, number: float | None, current: float, symbol: str) -> Resolved | str:
    """Apply the quantity rule (module doc) to an action kind; a string says why not.

    ``current`` (the signed position held) matters only for ``POSITION_KINDS``.
    """
    if kind == "noop":
        return Resolved("noop", 0.0)
    if kind in ("flat", "close_long", "close_short"):
        wrong_side = (kind == "close_long" and current < 0) or (
            kind == "close_short" and current > 0
        )
        if wrong_side:
            held = "long" if current > 0 else "short"
            return (
                f"{kind}, but the {symbol} position is {held} ({current:g}); use flat to close it"
            )
        return Resolved("flat", 0.0)
    if number is None:
        return f"missing target_qty (the position after the trade) for {kind}"
    if kind in ("buy", "sell"):
        return Resolved(kind, number)
    if kind in ("long", "short"):
        return _towards(abs(number) if kind == "long" else -abs(number), current)
    return _resize(kind, abs(number), current, symbol)


def _resize(kind: str, size: float, current: float, symbol: str) -> Resolved | str:
    if current == 0:
        verb = "buy or sell" if kind == "increase" else "nothing"
        return f"{kind}: there is no open {symbol} position (use {verb})"
    side = "long" if current > 0 else "short"
    if kind == "increase" and size <= abs(current):
        return (
            f"increase to {size:g} would not increase the {side} {abs(current):g}; "
            f"target_qty is the position size after the trade"
        )
    if kind == "reduce" and size >= abs(current):
        return (
            f"{kind} to {size:g} would not reduce the {side} {abs(current):g}; "
            f"target_qty is the position size after the trade"
        )
    return _towards(math.copysign(size, current), current)


def _towards(target: float, current: float) -> Resolved:
    if target > current:
        return Resolved("buy", target)
    if target < current:
        return Resolved("sell", target)
    return Resolved("noop", 0.0)


# --- numbers -----------------------------------------------------------------------------


def to_finite_float(value: Any) -> tuple[float | None, str | None]:
    """``(number, None)`` for a finite number or numeric string, else ``(None, why)``.

    ``"1,250.5"`` is 1250.5 (comma groups of three before a decimal point, or
    several groups). A comma that may be a decimal comma (``"0,01"``, ``"2,5"``,
    ``"1,250"``) is refused: read either way, one reading is 100x the other.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, f"must be a number, got {short_text(value)}"
    try:
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            if "," in text:
                if not _GROUPED_NUMBER.fullmatch(text) or ("." not in text and text.count(",") < 2):
                    return None, (
                        f"{short_text(value)} is ambiguous (a decimal comma?); "
                        f"write numbers with a decimal point and no commas, e.g. 0.01"
                    )
                text = text.replace(",", "")
            number = float(text)
        else:
            number = float(value)
    except ValueError:
        return None, f"{short_text(value)} is not a number"
    except OverflowError:
        return None, "is too large to be finite"
    if not math.isfinite(number):
        return None, f"{short_text(value)} is not a finite number"
    return number, None


def to_confidence(value: Any) -> tuple[float | None, str | None]:
    """0..1 from a number or ``"80%"``; a number outside 0..1 is refused, not rescaled."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number, problem = to_finite_float(value.strip()[:-1])
        if number is not None:
            number /= 100.0
    else:
        number, problem = to_finite_float(value)
    if problem or number is None:
        return None, f"confidence {problem or 'is missing'}"
    if not 0.0 <= number <= 1.0:
        return None, f"confidence {short_text(value)} is outside 0..1 (write 0.7 for 70%)"
    return number, None


# --- symbols -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def symbol_index(known_symbols: tuple[str, ...]) -> SymbolIndex:
    """The ``SymbolIndex`` of these symbols, built once (it is never changed after)."""
    return SymbolIndex(known_symbols)


class SymbolIndex:
    """Maps what a model writes (``btcusdt``, ``BTC-USDT``, ``BTC/USDT:USDT``, ``BTC``)
    to a configured symbol, when exactly one configured symbol fits."""

    def __init__(self, known_symbols: Iterable[str] = ()) -> None:
        self.known = list(dict.fromkeys(known_symbols))
        self._exact = {symbol.upper(): symbol for symbol in self.known}
        self._compact: dict[str, list[str]] = {}
        self._base: dict[str, list[str]] = {}
        for symbol in self.known:
            for form in {_compact_symbol(symbol), _compact_symbol(symbol, keep_settle=True)}:
                self._compact.setdefault(form, []).append(symbol)
            base = re.split(r"[/:\-]", symbol.upper())[0]
            self._base.setdefault(base, []).append(symbol)

    def resolve(self, text: str) -> tuple[str, str | None]:
        """``(symbol, None)``, or ``(text, why)`` when several configured symbols fit."""
        upper = text.upper()
        if upper in self._exact:
            return self._exact[upper], None
        key = _compact_symbol(text)
        for candidates in (self._compact.get(key), self._base.get(key)):
            if candidates:
                unique = list(dict.fromkeys(candidates))
                if len(unique) == 1:
                    return unique[0], None
                return text, f"{text} is ambiguous: write one of {', '.join(unique)}"
        return text, None


def _compact_symbol(symbol: str, keep_settle: bool = False) -> str:
    upper = symbol.strip().upper()
    if not keep_settle:
        upper = _SETTLE_SUFFIX.sub("", upper)
    return re.sub(r"[^A-Z0-9]", "", upper)


# --- text --------------------------------------------------------------------------------


def short_text(value: Any, limit: int = 40) -> str:
    """``value`` as short JSON for a message (cut with ``...``)."""
    try:
        text = json.dumps(value, allow_nan=True, default=str)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    text = clean_text(text, limit + 1)
    return text if len(text) <= limit else text[:limit] + "..."


def clean_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates replaced (they break JSON storage)."""
    return text[:limit].encode("utf-8", "replace").decode("utf-8")
