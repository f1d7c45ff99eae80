"""The prompt's market table and series: each instrument's numbers, written every cycle.

A replay writes these for every cycle, so the usual row is written in one step:
when a vector has every column's feature, in column order, and all are finite,
its cells are one ``%`` format of its values (``_Columns.template``), which
writes exactly what the per-cell writers write (any other row, or a cell the
format would write in exponent form, goes through the per-cell writers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from math import isfinite as _isfinite
from operator import attrgetter
from typing import NamedTuple

from strategy_agent.data.market_rules import notional
from strategy_agent.decision.prompt_numbers import (
    MISSING,
    all_finite,
    finite_list,
    fixed_writer,
    format_ts,
    num_writer,
    remember,
    trim_fixed,
)
from strategy_agent.decision.system_prompt import PromptLimits
from strategy_agent.features.technical_indicators import FEATURE_NAMES
from strategy_agent.models import FeatureVector, PortfolioView, PositionSnapshot

# Known features in reading order; returns and volatility are fractions, shown in %.
# Unknown features follow in name order. Column names are the feature names.
FEATURE_ORDER: tuple[str, ...] = FEATURE_NAMES
_PERCENT_FEATURES = frozenset({"ret_1", "ret_4", "ret_24", "realized_vol_24"})
_TWO_DECIMALS = frozenset({"bb_pct_b", "volume_z_20"})
_SERIES_DIGITS = 4  # the series shows the shape; the table has the exact latest values
# The series closes as written: a close stays in the window for many cycles (0.0 is
# never stored: -0.0 is the same key but is written "-0").
_CLOSE_MEMO: dict[float, str] = {}
# _market_columns's answers, by the features' names (a tuple of each vector's keys)
_COLUMNS_MEMO: dict[tuple[tuple[str, ...], ...], tuple[_Columns, tuple[bool, ...]]] = {}
_MAX_COLUMN_SETS = 64


class CellKind(NamedTuple):
    """How the market table writes one kind of feature (a finite value).

    ``piece`` writes the same text as ``write`` as part of a ``%`` format: a
    ``%g`` piece as long as it writes no exponent (``e+``), a ``%f`` piece
    (marked ``~``) once ``trim_fixed`` has dropped its trailing zeros.
    """

    write: Callable[[float], str]
    piece: str
    scale: int = 1  # the value is multiplied by this first (fractions shown in %)


PERCENT = CellKind(fixed_writer(2, scale=100), "%.2f~", 100)
RSI = CellKind(fixed_writer(1), "%.1f~")
TWO_DECIMALS = CellKind(fixed_writer(2), "%.2f~")
OSCILLATOR = CellKind(num_writer(3), "%.3g")
PRICE = CellKind(num_writer(5), "%.5g")
_values_of = attrgetter("values")
_rsi_point = num_writer(2)  # a point of the RSI series
_max_qty = num_writer(4)
_close_writer = num_writer(_SERIES_DIGITS)
_WHOLE_NUMBERS = tuple(str(n) for n in range(101))  # str(n), looked up


@dataclass(frozen=True)
class _Columns:
    """The market table's columns for one set of feature names (worked out once)."""

    header: str  # "sym|close|...|max_qty"
    names: tuple[str, ...]
    kinds: tuple[CellKind, ...]
    template: str  # "|" + piece for each column: a row's cells in one format
    scaled: tuple[tuple[int, int], ...]  # (column index, scale) of the scaled columns


def render_market(
    features: Sequence[FeatureVector],
    prices: Mapping[str, float],
    view: PortfolioView,
    limits: PromptLimits,
    now_ms: int | None = None,
) -> str:
    """One row per instrument: its features and ``max_qty`` (contracts).

    The candle's open time is written as ``HH:MM`` when it is on ``now_ms``'s day.
    """
    if not features:
        return "market: no features this cycle (data missing): prefer noop"
    columns, in_order = _market_columns(features)
    lines = [columns.header]
    max_qty = _max_qty_writer(limits, equity_of(view, limits.contract_sizes))
    candle_times = set()
    for vector, ordered in zip(features, in_order, strict=True):
        symbol = vector.instrument.symbol
        values = vector.values
        price = prices.get(symbol) or values.get("close")
        lines.append(f"{symbol}{row_cells(values, columns, ordered)}|{max_qty(symbol, price)}")
        candle_ts = (vector.meta or {}).get("candle_ts")
        if isinstance(candle_ts, int) and not isinstance(candle_ts, bool):
            candle_times.add(candle_ts)
    as_of = ""
    if len(candle_times) == 1:
        opened = format_ts(min(candle_times))
        if now_ms is not None and opened[:10] == format_ts(now_ms)[:10]:
            opened = opened[11:16]
        as_of = f" (candle open {opened})"
    return f"market{as_of}:\n" + "\n".join(lines)


def row_cells(values: Mapping[str, float], columns: _Columns, in_order: bool) -> str:
    """``|cell`` for each of ``columns`` (``-`` for a missing or non-finite value).

    ``in_order``: ``values`` has exactly the columns' names, in their order.
    """
    if in_order and all_finite(numbers := list(values.values())):
        for index, scale in columns.scaled:
            numbers[index] = numbers[index] * scale
        text = columns.template % tuple(numbers)
        if "e+" not in text:  # a %g cell past its digits: the writers' text differs
            return trim_fixed(text)
    cells = []
    for name, kind in zip(columns.names, columns.kinds, strict=True):
        value = values.get(name)
        cells.append(MISSING if value is None or not _isfinite(value) else kind.write(value))
    return "".join("|" + cell for cell in cells)


def _market_columns(features: Sequence[FeatureVector]) -> tuple[_Columns, tuple[bool, ...]]:
    """The market table's columns, and for each vector whether its values are in column order
    (remembered by the features' names: they are the same every cycle)."""
    key = tuple(map(tuple, map(_values_of, features)))
    known = _COLUMNS_MEMO.get(key)
    if known is None:
        names = tuple(_feature_names(features))
        kinds = tuple(cell_kind(name) for name in names)
        columns = _Columns(
            header="|".join(["sym", *names, "max_qty"]),
            names=names,
            kinds=kinds,
            template="".join("|" + kind.piece for kind in kinds),
            scaled=tuple((i, kind.scale) for i, kind in enumerate(kinds) if kind.scale != 1),
        )
        if len(_COLUMNS_MEMO) >= _MAX_COLUMN_SETS:
            _COLUMNS_MEMO.clear()
        known = _COLUMNS_MEMO[key] = columns, tuple(keys == names for keys in key)
    return known


def cell_kind(name: str) -> CellKind:
    """How the market table writes a finite value of feature ``name``."""
    if name in _PERCENT_FEATURES:
        return PERCENT
    if name == "rsi_14":
        return RSI
    if name in _TWO_DECIMALS:
        return TWO_DECIMALS
    if name.startswith(("macd", "atr")):
        return OSCILLATOR
    return PRICE


def _feature_names(features: Iterable[FeatureVector]) -> list[str]:
    present: set[str] = set()
    for vector in features:
        present.update(vector.values)
    known = [name for name in FEATURE_ORDER if name in present]
    extra = sorted(present - set(FEATURE_ORDER))
    return known + extra


def render_series(features: Sequence[FeatureVector]) -> str:
    """The last closes and RSI values of each instrument, oldest first (few digits)."""
    lines = []
    for vector in features:
        series = (vector.meta or {}).get("series")
        if not isinstance(series, Mapping):
            continue
        parts = []
        closes = finite_list(series.get("close"))
        if closes:
            parts.append("close " + _closes_text(closes))
        rsi = finite_list(series.get("rsi_14"))
        if rsi:  # recomputed in each window: new values every cycle
            parts.append("rsi " + _rsi_text(rsi))
        if parts:
            lines.append(f"{vector.instrument.symbol}: " + " | ".join(parts))
    return "series (oldest first):\n" + "\n".join(lines) if lines else ""


def _rsi_text(rsi: list[float]) -> str:
    """``num(v, 2)`` of each value, space-separated."""
    # 10 <= v < 100 has 2 digits before the point: num(v, 2) is format(v, ".0f"),
    # the same digits as round(v) (both round the exact value half to even)
    texts = _WHOLE_NUMBERS
    return " ".join([texts[round(v)] if 10.0 <= v < 100.0 else _rsi_point(v) for v in rsi])


def _closes_text(closes: list[float]) -> str:
    """``num(v, 4)`` of each close, space-separated (each close stays in the window for
    many cycles: remembered)."""
    memo = _CLOSE_MEMO
    return " ".join([memo.get(v) or _close_num(v) for v in closes])


def _close_num(value: float) -> str:
    """A series close as written, remembered in ``_CLOSE_MEMO``."""
    text = _close_writer(value)
    if value:  # 0.0 and -0.0 are one key but are written "0" and "-0": never stored
        remember(_CLOSE_MEMO, value, text)
    return text


def _max_qty_writer(limits: PromptLimits, equity: float) -> Callable[[str, float | None], str]:
    """The ``max_qty`` cell of a symbol at a price: the largest |target_qty| (contracts)
    the per-instrument caps allow (``max_position_pct`` of ``equity``, ``max_position_qty``)."""
    pct, sizes, qty_caps = limits.max_position_pct, limits.contract_sizes, limits.max_position_qty
    budget = pct * equity if pct is not None and equity > 0 else None

    def cell(symbol: str, price: float | None) -> str:
        cap = None
        if budget is not None and price and price > 0:
            cap = budget / notional(1.0, price, sizes.get(symbol, 1.0))
        if symbol in qty_caps:
            cap = qty_caps[symbol] if cap is None else min(cap, qty_caps[symbol])
        return _max_qty(cap) if cap is not None else MISSING

    return cell


def equity_of(view: PortfolioView, sizes: Mapping[str, float]) -> float:
    """The ledger's equity; for a view without it, cash + the positions' notional."""
    if view.total_value is not None:
        return view.total_value
    if view.net_exposure is not None:
        return view.cash + view.net_exposure
    return view.cash + sum(notional_of(p, sizes) for p in view.positions.values())


def notional_of(position: PositionSnapshot, sizes: Mapping[str, float]) -> float:
    """The position's signed notional as the ledger gave it, else ``market_rules.notional``."""
    if position.notional is not None:
        return position.notional
    price = position.mark_price or position.avg_price or 0.0
    return notional(position.quantity, price, sizes.get(position.instrument.symbol, 1.0))
