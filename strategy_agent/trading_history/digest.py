"""Per-instrument trade digest: the composer's feedback on how each symbol has traded.

Two builders compute the same ``TradeDigest`` and must agree (a property test
checks it): ``IncrementalDigest`` keeps running sums and costs O(1) per fill;
``rebuild_digest`` recomputes everything from the full lists of fills and
closed trades.

Definitions, per symbol (fills and trades are taken in the order given, which
is the order they happened):

- ``trade_count``: number of closed round trips (``TradeHistoryEntry`` rows).
- ``realized_pnl``: realized P&L net of fees: sum of ``fill.realized_pnl - fill.fee``
  (``metrics.net_pnl`` per fill; the same definition as a trade's net P&L, so this
  figure, the win rate and the score agree in sign).
- ``win_rate``: winners / closed trades, where a winner has net P&L
  ``metrics.trade_net_pnl`` (``realized_pnl - fees``, the trade's entry and exit
  fees) > 0; ``None`` with no closed trade.
- ``avg_holding_ms``: mean holding time of closed trades: ``holding_ms``, or
  ``exit_ts - entry_ts`` when it is missing; trades with neither are left out.
- ``last_trade_ts``: ``ts`` of the last fill (``None`` without fills).
- ``avg_entry_price``: quantity-weighted mean ``entry_price`` of closed trades
  that have one; ``None`` if none (or their total quantity is 0).
- ``max_drawdown``: largest peak-to-trough fall of the cumulative net P&L of
  closed trades, starting from 0, in the quote currency (>= 0); ``None``
  with no closed trade.
- ``recent_performance_score``: mean ``realized_pnl_pct`` (percent, net of
  fees: the ledger sets it with ``metrics.trade_net_pnl_pct``) of the last 5
  closed trades that have one; ``None`` if none.
- ``last_loss_ts``: the latest ``exit_ts`` of a closed trade with net P&L < 0;
  ``None`` if no losing trade has an ``exit_ts``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from itertools import accumulate

from strategy_agent.models import (
    Fill,
    InstrumentRef,
    TradeDigest,
    TradeDigestEntry,
    TradeHistoryEntry,
)
from strategy_agent.trading_history.metrics import net_pnl, trade_net_pnl

RECENT_TRADES = 5


def holding_ms(trade: TradeHistoryEntry) -> int | None:
    """How long the trade was open: ``holding_ms``, else ``exit_ts - entry_ts``, else ``None``."""
    if trade.holding_ms is not None:
        return trade.holding_ms
    if trade.entry_ts is not None and trade.exit_ts is not None:
        return max(0, trade.exit_ts - trade.entry_ts)
    return None


class DigestBuilder(ABC):
    """Builds a ``TradeDigest`` from every fill and closed trade of a strategy."""

    @abstractmethod
    def build(self, fills: list[Fill], trades: list[TradeHistoryEntry], ts: int) -> TradeDigest: ...


@dataclass
class _SymbolStats:
    """Running sums of one symbol; each update is O(1)."""

    realized_pnl: float = 0.0
    last_fill_ts: int | None = None
    trade_count: int = 0
    winners: int = 0
    holding_sum_ms: int = 0
    holding_count: int = 0
    entry_notional: float = 0.0
    entry_quantity: float = 0.0
    cumulative_net: float = 0.0
    peak_net: float = 0.0
    max_drawdown: float = 0.0
    recent_pct: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_TRADES))
    last_loss_ts: int | None = None

    def add_fill(self, fill: Fill) -> None:
        self.realized_pnl += net_pnl(fill.realized_pnl, fill.fee)
        self.last_fill_ts = fill.ts

    def add_trade(self, trade: TradeHistoryEntry) -> None:
        net = trade_net_pnl(trade)
        self.trade_count += 1
        if net > 0:
            self.winners += 1
        held = holding_ms(trade)
        if held is not None:
            self.holding_sum_ms += held
            self.holding_count += 1
        if trade.entry_price is not None:
            self.entry_notional += trade.quantity * trade.entry_price
            self.entry_quantity += trade.quantity
        self.cumulative_net += net
        self.peak_net = max(self.peak_net, self.cumulative_net)
        self.max_drawdown = max(self.max_drawdown, self.peak_net - self.cumulative_net)
        if trade.realized_pnl_pct is not None:
            self.recent_pct.append(trade.realized_pnl_pct)
        if net < 0 and trade.exit_ts is not None:
            previous = self.last_loss_ts
            self.last_loss_ts = trade.exit_ts if previous is None else max(previous, trade.exit_ts)

    def entry(self, symbol: str) -> TradeDigestEntry:
        closed = self.trade_count
        return TradeDigestEntry(
            instrument=InstrumentRef(symbol=symbol),
            trade_count=closed,
            realized_pnl=self.realized_pnl,
            win_rate=self.winners / closed if closed else None,
            avg_holding_ms=(
                self.holding_sum_ms / self.holding_count if self.holding_count else None
            ),
            last_trade_ts=self.last_fill_ts,
            avg_entry_price=(
                self.entry_notional / self.entry_quantity if self.entry_quantity > 0 else None
            ),
            max_drawdown=self.max_drawdown if closed else None,
            recent_performance_score=(
                sum(self.recent_pct) / len(self.recent_pct) if self.recent_pct else None
            ),
            last_loss_ts=self.last_loss_ts,
        )


class IncrementalDigest(DigestBuilder):
    """The digest kept up to date fill by fill (O(1) per fill and closed trade)."""

    def __init__(self) -> None:
        self._stats: dict[str, _SymbolStats] = {}
        # Each symbol's entry, kept until its statistics change (a cycle without a
        # fill builds none).
        self._entries: dict[str, TradeDigestEntry] = {}

    @classmethod
    def from_history(cls, fills: list[Fill], trades: list[TradeHistoryEntry]) -> IncrementalDigest:
        """Resume from stored fills and closed trades (each list in the order it happened)."""
        digest = cls()
        digest._feed(fills, trades)
        return digest

    def update(self, fill: Fill, closed_trades: list[TradeHistoryEntry]) -> None:
        """Account for one fill and the round trips it closed."""
        self._stats_of(fill.symbol).add_fill(fill)
        for trade in closed_trades:
            self._stats_of(trade.instrument.symbol).add_trade(trade)

    def digest(self, ts: int) -> TradeDigest:
        """The digest as of now, stamped ``ts``; symbols sorted."""
        return TradeDigest(
            ts=ts,
            by_instrument={symbol: self._entry(symbol) for symbol in sorted(self._stats)},
        )

    def build(self, fills: list[Fill], trades: list[TradeHistoryEntry], ts: int) -> TradeDigest:
        """Reset to exactly ``fills`` and ``trades`` and return the digest at ``ts``."""
        self._stats, self._entries = {}, {}
        self._feed(fills, trades)
        return self.digest(ts)

    def _feed(self, fills: list[Fill], trades: list[TradeHistoryEntry]) -> None:
        # Fill-based and trade-based statistics are independent, so the two
        # streams need not be interleaved as they happened.
        for fill in fills:
            self._stats_of(fill.symbol).add_fill(fill)
        for trade in trades:
            self._stats_of(trade.instrument.symbol).add_trade(trade)

    def _entry(self, symbol: str) -> TradeDigestEntry:
        entry = self._entries.get(symbol)
        if entry is None:
            entry = self._entries[symbol] = self._stats[symbol].entry(symbol)
        return entry

    def _stats_of(self, symbol: str) -> _SymbolStats:
        """The statistics of ``symbol``, about to change (its kept entry is dropped)."""
        self._entries.pop(symbol, None)
        stats = self._stats.get(symbol)
        if stats is None:
            stats = self._stats[symbol] = _SymbolStats()
        return stats


class RebuildDigest(DigestBuilder):
    """The digest recomputed from scratch each time (the reference implementation)."""

    def build(self, fills: list[Fill], trades: list[TradeHistoryEntry], ts: int) -> TradeDigest:
        return rebuild_digest(fills, trades, ts)


def rebuild_digest(fills: list[Fill], trades: list[TradeHistoryEntry], ts: int) -> TradeDigest:
    """Compute the digest from every fill and closed trade, independently of the running sums."""
    symbols = sorted({f.symbol for f in fills} | {t.instrument.symbol for t in trades})
    by_instrument = {}
    for symbol in symbols:
        symbol_fills = [f for f in fills if f.symbol == symbol]
        symbol_trades = [t for t in trades if t.instrument.symbol == symbol]
        by_instrument[symbol] = _rebuild_entry(symbol, symbol_fills, symbol_trades)
    return TradeDigest(ts=ts, by_instrument=by_instrument)


def _rebuild_entry(
    symbol: str, fills: list[Fill], trades: list[TradeHistoryEntry]
) -> TradeDigestEntry:
    nets = [trade_net_pnl(t) for t in trades]
    holdings = [h for h in (holding_ms(t) for t in trades) if h is not None]
    priced = [t for t in trades if t.entry_price is not None]
    priced_qty = sum(t.quantity for t in priced)
    pcts = [t.realized_pnl_pct for t in trades if t.realized_pnl_pct is not None]
    recent = pcts[-RECENT_TRADES:]
    loss_exits = [t.exit_ts for t, net in zip(trades, nets, strict=True) if net < 0]
    loss_exit_ts = [e for e in loss_exits if e is not None]
    return TradeDigestEntry(
        instrument=InstrumentRef(symbol=symbol),
        trade_count=len(trades),
        realized_pnl=sum(net_pnl(f.realized_pnl, f.fee) for f in fills),
        win_rate=sum(1 for n in nets if n > 0) / len(trades) if trades else None,
        avg_holding_ms=sum(holdings) / len(holdings) if holdings else None,
        last_trade_ts=fills[-1].ts if fills else None,
        avg_entry_price=(
            sum(t.quantity * (t.entry_price or 0.0) for t in priced) / priced_qty
            if priced_qty > 0
            else None
        ),
        max_drawdown=_drawdown_of_curve(nets) if trades else None,
        recent_performance_score=sum(recent) / len(recent) if recent else None,
        last_loss_ts=max(loss_exit_ts) if loss_exit_ts else None,
    )


def _drawdown_of_curve(nets: list[float]) -> float:
    """Largest fall from a running peak of the cumulative sum of ``nets`` (curve starts at 0)."""
    curve = list(accumulate(nets, initial=0.0))
    peaks = list(accumulate(curve, max))
    return max(peak - value for peak, value in zip(peaks, curve, strict=True))
