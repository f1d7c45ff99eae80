"""Cycles written in batches keep the exactly-once guarantees: in order, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.models import UserRequest
from strategy_agent.trading_history.cycle_batch import BatchedCycleStore
from strategy_agent.trading_history.store import CycleWrite, DuplicateCycle, SqliteStore
from tests.trading_history.test_exactly_once_store import compose, counts, fill, point


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "h.db")
    yield opened
    opened.close()


def rows(sid: str, number: int, *fills: str) -> CycleWrite:
    """Cycle ``number``: its compose record, a fill per instruction id, its equity point."""
    ts = number * 10
    return CycleWrite([compose(sid, number, ts)], [fill(ts, i) for i in fills], [], point(sid, ts))


def write(to: SqliteStore | BatchedCycleStore, sid: str, number: int, *fills: str) -> None:
    to.write_cycle(sid, *rows(sid, number, *fills))


def test_a_batch_is_written_when_full_and_what_is_held_on_flush(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    batch = BatchedCycleStore(store, size=3)
    write(batch, sid, 1, "i1")
    write(batch, sid, 2)
    assert counts(store) == {"cycles": 0, "history_records": 0, "fills": 0, "equity": 0}
    assert batch.pending == 2
    write(batch, sid, 3, "i3")
    assert counts(store) == {"cycles": 3, "history_records": 3, "fills": 2, "equity": 3}
    write(batch, sid, 4)
    assert store.cycle_count(sid) == 3 and batch.pending == 1
    batch.flush()
    assert store.cycle_count(sid) == 4 and batch.pending == 0
    assert [f.instruction_id for f in store.load_fills(sid)] == ["i1", "i3"]
    batch.flush()  # nothing held: nothing written
    assert store.cycle_count(sid) == 4


def test_a_failed_cycle_and_a_read_write_what_is_held_at_once(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    batch = BatchedCycleStore(store, size=100)
    write(batch, sid, 1)
    batch.write_cycle(sid, [compose(sid, 2, 20, kind="error")], [], [], None)
    assert store.cycle_count(sid) == 2 and store.failed_cycle_count(sid) == 1
    write(batch, sid, 3)
    assert [r.reference_id for r in batch.records(sid)] == [f"{sid}-{n:06d}" for n in (3, 2, 1)]
    assert batch.pending == 0


def test_a_batch_out_of_order_is_refused_whole(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    write(store, sid, 1)
    other = BatchedCycleStore(store, size=3)  # a second writer that missed cycle 1
    write(other, sid, 1)
    write(other, sid, 2)
    with pytest.raises(DuplicateCycle, match="last stored cycle is 1"):
        write(other, sid, 3)
    assert counts(store) == {"cycles": 1, "history_records": 1, "fills": 0, "equity": 1}
    assert other.pending == 0  # the refused batch is dropped, not retried
    with pytest.raises(DuplicateCycle, match="cycle 4"):
        store.write_cycles(sid, [rows(sid, 2), rows(sid, 4)])
    assert store.cycle_count(sid) == 1


def test_a_fill_already_stored_refuses_the_whole_batch(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    write(store, sid, 1, "i1")
    writes = [rows(sid, 2, "i2"), rows(sid, 3, "i1")]
    with pytest.raises(DuplicateCycle, match=r"2 cycles .* already holds it"):
        store.write_cycles(sid, writes)
    assert counts(store) == {"cycles": 1, "history_records": 1, "fills": 1, "equity": 1}
    store.write_cycles(sid, writes[:1])
    assert [f.instruction_id for f in store.load_fills(sid)] == ["i1", "i2"]
