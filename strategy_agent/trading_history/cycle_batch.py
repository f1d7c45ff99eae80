"""Cycles written in batches: one transaction per ``size`` cycles (replays and backtests).

A live or paper strategy writes each cycle in its own transaction, so a crash
loses nothing that was decided. A replay can afford to lose the cycles it has
not written yet (it is deterministic: a restart resumes from what is stored
and decides them again), and committing thousands of cycles one by one costs
more than deciding them. ``BatchedCycleStore`` stands in for the store as the
coordinator's ``CycleStore``: it keeps each cycle's rows and writes ``size``
of them at once through ``SqliteStore.write_cycles``, all of them or none,
with the same checks as one cycle (each number right after the last stored
one; unique fills, records and equity points).

It writes what it holds when the batch is full, at once after a cycle that
failed (an ``error`` record), before any read of the store, and when told
(``flush``: at the end of a run, before a pause or stop). A batch that cannot
be written raises from the cycle that triggered it (the coordinator then
halts the strategy) and is dropped: the database keeps every cycle before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strategy_agent.models import EquityPoint, Fill, HistoryKind, HistoryRecord, TradeHistoryEntry
from strategy_agent.trading_history.cycle_rows import CycleWrite

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

DEFAULT_BATCH_CYCLES = 500


class BatchedCycleStore:
    """The coordinator's store, writing ``size`` cycles per transaction (see the module doc)."""

    def __init__(self, store: SqliteStore, size: int = DEFAULT_BATCH_CYCLES) -> None:
        if size < 1:
            raise ValueError(f"a batch holds at least one cycle, got {size}")
        self.store = store
        self.size = size
        self._strategy_id: str | None = None
        self._pending: list[CycleWrite] = []

    @property
    def pending(self) -> int:
        """Cycles held, not written yet."""
        return len(self._pending)

    def write_cycle(
        self,
        strategy_id: str,
        records: list[HistoryRecord],
        fills: list[Fill],
        trades: list[TradeHistoryEntry],
        equity: EquityPoint | None,
    ) -> None:
        """Hold one cycle (``SqliteStore.write_cycle``'s arguments); write the batch when it is
        full or when this cycle failed."""
        if self._strategy_id not in (None, strategy_id):
            self.flush()  # one strategy per batch
        self._strategy_id = strategy_id
        self._pending.append(CycleWrite(list(records), list(fills), list(trades), equity))
        if len(self._pending) >= self.size or any(r.kind == "error" for r in records):
            self.flush()

    def flush(self) -> None:
        """Write every held cycle in one transaction (nothing when none is held)."""
        if not self._pending or self._strategy_id is None:
            return
        batch, self._pending = self._pending, []
        self.store.write_cycles(self._strategy_id, batch)

    def records(
        self,
        strategy_id: str,
        kind: HistoryKind | None = None,
        reference_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[HistoryRecord]:
        """``SqliteStore.records``, after writing what is held (reads see every cycle)."""
        self.flush()
        return self.store.records(strategy_id, kind, reference_id, limit, offset)
