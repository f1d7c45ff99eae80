"""Strategies page cards: cycles counted with the failed ones apart."""

from __future__ import annotations

from strategy_agent.models import HistoryRecord
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import Populated, open_page, texts


def test_card_shows_failed_cycles_apart(populated: Populated) -> None:
    sid = populated.hold_id
    with SqliteStore(populated.db) as store:
        last_ts = store.last_cycle_ts(sid)
        assert last_ts is not None
        failure = HistoryRecord(
            ts=last_ts + 3_600_000,
            kind="error",
            reference_id=f"{sid}-000041",
            payload={"cycle": 41, "stage": "compose", "error": "model unreachable"},
        )
        store.write_cycle(sid, [failure], [], [], None)
    page = texts(open_page("strategies"))
    assert "41 cycles, 1 failed" in page
    assert "150 cycles ·" in page  # no failure, no "0 failed"
