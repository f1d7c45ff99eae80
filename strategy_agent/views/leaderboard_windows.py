"""Which strategies the Leaderboard may rank against each other, and the ranking itself.

Two strategies are comparable only when they traded the same data over the same
window: same market (exchange and market type; for the simulated market, its
seed), same bar interval, same set of symbols, and the same first and last
candle (their first and last cycle, to the candle). Each such window is a
group; the Leaderboard ranks inside a group and never across groups, so a
6-cycle strategy is never ranked above a 900-cycle one. A backtest run's window
is its ``runs`` row's (``RunDataWindow``): runs are ranked only against runs
over the same window of the same data (the sha256 of the candles or CSV file,
whatever path named the file).

``rank`` orders one group's rows best first by any column: higher is better,
except for the columns in ``LOWER_IS_BETTER``; a missing or "n/a" figure always
ranks last, never as 0.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, TypeGuard

import numpy as np
import pandas as pd

from strategy_agent.models import UserRequest, interval_ms
from strategy_agent.views import format as fmt

if TYPE_CHECKING:
    from strategy_agent.trading_history.runs import RunMark

RANK_COLUMN = "#"
DEFAULT_RANK_BY = "Return (%)"
LOWER_IS_BETTER = frozenset(
    {
        "Volatility (%)",
        "Max drawdown (%)",
        "Drawdown duration",
        "Fees (USDT)",
        "Fees / gross P&L (%)",
        "LLM cost (USD)",
        "Cost per trade (USD)",
    }
)
STATUS_REASON_CHARS = 80  # of a run's reason in its Status cell
TEXT_ORDER = frozenset({"Strategy", "Status", "Note", "Model", "Prompt", "Config", "Notes"})


@dataclass(frozen=True)
class MarketWindow:
    """The data a strategy traded: market, interval, symbols, first and last candle.

    ``first_ts``/``last_ts`` are the open times (epoch ms) of the candles its
    first and last cycles ran on; ``None`` before its first cycle.
    """

    market: str
    interval: str
    symbols: tuple[str, ...]
    first_ts: int | None
    last_ts: int | None

    @property
    def label(self) -> str:
        coins = ", ".join(symbol.split("/")[0] for symbol in self.symbols)
        head = f"{self.market} · {self.interval} · {coins}"
        if self.first_ts is None or self.last_ts is None:
            return f"{head} · not run yet"
        return f"{head} · {fmt.ts(self.first_ts)} → {fmt.ts(self.last_ts)}"

    @property
    def key(self) -> str:
        """A short stable name of the window (for widget keys)."""
        return hashlib.sha1(repr(self).encode()).hexdigest()[:12]


def market_window(request: UserRequest, span: tuple[int, int, int] | None) -> MarketWindow:
    """The window of a strategy configured by ``request`` whose cycles span ``span``
    (first cycle ts, last cycle ts, cycles; ``None`` before the first cycle)."""
    exchange = request.exchange
    market = f"{exchange.exchange_id} {exchange.market_type}"
    if exchange.exchange_id == "simulated":  # its prices come from the seed
        market = f"simulated market (seed {request.trading.seed})"
    bar = interval_ms(request.trading.interval)
    first = last = None
    if span is not None:
        first, last = span[0] // bar * bar, span[1] // bar * bar
    return MarketWindow(
        market, request.trading.interval, tuple(sorted(request.trading.symbols)), first, last
    )


@dataclass(frozen=True)
class RunDataWindow:
    """The window and data of a backtest run: its data sources and sha256, first and last
    candle it decided on (open times, epoch ms; ``None`` before its first cycle).

    Runs are grouped by data hash and window (``key``); the sources only name the data
    (the same CSV run by its path and uploaded on the page is one file, one group).
    Without a hash, the source is the data's identity.
    """

    data_sources: tuple[str, ...]
    data_hash: str | None
    first_ts: int | None
    last_ts: int | None

    @property
    def label(self) -> str:
        data = data_label(self.data_sources)
        if self.data_hash:
            data += f" (data sha256 {self.data_hash[:12]})"
        if self.first_ts is None or self.last_ts is None:
            return f"Backtest · {data} · not run yet"
        return f"Backtest · {data} · {fmt.ts(self.first_ts)} → {fmt.ts(self.last_ts)}"

    @property
    def key(self) -> str:
        """A short stable name of the window and data (for grouping and widget keys)."""
        data = self.data_hash or repr(self.data_sources)
        return hashlib.sha1(repr((data, self.first_ts, self.last_ts)).encode()).hexdigest()[:12]

    def joined(self, other: RunDataWindow) -> RunDataWindow:
        """This window naming ``other``'s sources too (same ``key``)."""
        sources = tuple(sorted(set(self.data_sources) | set(other.data_sources)))
        return RunDataWindow(sources, self.data_hash, self.first_ts, self.last_ts)


_UPLOAD_HASH = re.compile(r"-[0-9a-f]{16}(\.csv)$", re.IGNORECASE)


def data_label(sources: tuple[str, ...]) -> str:
    """A person's name of data sources: ``csv:/tmp/x.csv`` and the page's upload
    ``csv:data/uploads/x-<16 hex>.csv`` are both ``CSV x.csv``; ``simulated`` and
    ``store:okx`` as they are."""
    names: list[str] = []
    for source in sources:
        kind, _, rest = source.partition(":")
        if kind != "csv" or not rest:
            name = source
        else:
            files = [PurePath(item.partition("=")[2] or item).name for item in rest.split(",")]
            name = "CSV " + ", ".join(_UPLOAD_HASH.sub(r"\1", f) for f in files)
        if name not in names:
            names.append(name)
    return " / ".join(names)


def run_data_window(
    mark: RunMark, interval: str, span: tuple[int, int, int] | None
) -> RunDataWindow:
    """The window a backtest run is ranked over: its stored window, or while it still runs
    the candles it has decided on so far (``span``: first and last cycle ts, count)."""
    first, last = mark.window_from_ms, mark.window_to_ms
    if mark.status == "running":
        bar = interval_ms(interval)  # a cycle at ts decides on the candle opened at ts - bar
        first, last = (None, None) if span is None else (span[0] - bar, span[1] - bar)
    return RunDataWindow((mark.data_source,), mark.data_hash, first, last)


def is_backtest(mark: RunMark | None) -> TypeGuard[RunMark]:
    """True for the mark of a backtest run."""
    return mark is not None and mark.kind == "backtest"


def run_status(mark: RunMark) -> str:
    """A run's own status (its ``runs`` row, not its strategy row's): ``done``, or
    ``stopped: <reason>``, shortened to ``STATUS_REASON_CHARS``."""
    reason = " ".join((mark.status_reason or "").split())
    if not reason:
        return mark.status
    if len(reason) > STATUS_REASON_CHARS:
        reason = reason[: STATUS_REASON_CHARS - 1] + "…"
    return f"{mark.status}: {reason}"


def rank(table: pd.DataFrame, by: str = DEFAULT_RANK_BY) -> pd.DataFrame:
    """``table``'s rows best first by column ``by``, missing values last, numbered in ``#``.

    Numbers: higher first, lower first for ``LOWER_IS_BETTER``; text: A to Z.
    Ties keep the order by return. ``#`` is the position of rows that have a
    value in ``by`` (``None`` for the rest). An unknown column ranks by return.
    """
    if by not in table.columns or by == RANK_COLUMN:
        by = DEFAULT_RANK_BY
    ordered = _sorted(table, DEFAULT_RANK_BY) if DEFAULT_RANK_BY in table.columns else table
    ordered = _sorted(ordered, by).reset_index(drop=True)
    present = _keys(ordered, by).notna().to_numpy()
    numbers = [index + 1 if has else None for index, has in enumerate(present)]
    ordered.insert(0, RANK_COLUMN, pd.array(numbers, dtype="Int64"))
    return ordered


def _keys(table: pd.DataFrame, by: str) -> pd.Series:
    """What ``by`` sorts on: its text, or its numbers with non-finite ones as missing."""
    if by in TEXT_ORDER:
        return table[by].astype("string")
    # an infinite figure is a marker ("n/a"), not a value: it ranks with the missing
    keys = pd.to_numeric(table[by], errors="coerce").astype("float64")
    return keys.where(np.isfinite(keys))


def _sorted(table: pd.DataFrame, by: str) -> pd.DataFrame:
    ascending = by in TEXT_ORDER or by in LOWER_IS_BETTER
    keys = _keys(table, by)
    order = keys.sort_values(ascending=ascending, na_position="last", kind="mergesort").index
    return table.loc[order]
