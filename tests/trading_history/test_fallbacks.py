"""Fallback reads of the pages: counts over the last composed cycles, the run, the alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strategy_agent.models import HistoryRecord, UserRequest
from strategy_agent.trading_history.fallbacks import fallback_stats, recent_alerts
from strategy_agent.trading_history.store import SqliteStore

UNREACHABLE = "openai/gpt could not be reached (Connection refused)"


@pytest.fixture
def store(db_path: Path) -> SqliteStore:
    return SqliteStore(db_path)


def compose(cycle: int, fallback: bool = False, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"cycle": cycle, "fallback_used": fallback, "outcomes": []}
    if fallback:
        payload.update(fallback_reason=UNREACHABLE, fallback_policy="noop", raw_reply=None)
    payload.update(extra)
    return payload


def write(store: SqliteStore, sid: str, cycle: int, *kinds: tuple[str, dict[str, Any]]) -> None:
    records = [
        HistoryRecord(ts=cycle * 1000, kind=kind, reference_id=f"{sid}-{cycle:06d}", payload=p)
        for kind, p in kinds
    ]
    store.write_cycle(sid, records, [], [], None)


def test_counts_the_window_the_run_and_the_latest_reason(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), 0)
    pattern = [False, True, False, True, True]  # cycles 1..5
    for cycle, fell_back in enumerate(pattern, start=1):
        write(store, sid, cycle, ("compose", compose(cycle, fell_back)))
    # a failed cycle has no compose record: neither a fallback nor an answer
    write(store, sid, 6, ("error", {"cycle": 6, "stage": "data", "error": "no candles"}))
    stats = fallback_stats(store, sid, window=4)
    assert (stats.window, stats.fallbacks, stats.streak, stats.oldest_cycle) == (4, 3, 2, 2)
    assert stats.ongoing and stats.no_reply and stats.last_cycle == 5 and stats.last_ts == 5000
    assert stats.last_reason == UNREACHABLE and stats.fallback_policy == "noop"
    assert stats.recovered_cycle is None

    write(store, sid, 7, ("compose", compose(7)))
    stats = fallback_stats(store, sid, window=4)
    assert (stats.fallbacks, stats.streak, stats.recovered_cycle) == (2, 0, 7)
    assert not stats.ongoing and stats.last_cycle == 5


def test_a_reply_that_could_not_be_used_is_not_unreachable(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), 0)
    write(store, sid, 1, ("compose", compose(1, True, raw_reply="Sure! Buy.")))
    stats = fallback_stats(store, sid)
    assert stats.fallbacks == 1 and not stats.no_reply


def test_no_cycle_no_fallback_and_a_window_of_zero_is_refused(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), 0)
    stats = fallback_stats(store, sid)
    assert (stats.window, stats.fallbacks, stats.streak, stats.last_reason) == (0, 0, 0, None)
    with pytest.raises(ValueError, match="at least 1"):
        fallback_stats(store, sid, window=0)


def test_alerts_newest_first(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), 0)
    for cycle in (1, 2):
        alert = {
            "cycle": cycle,
            "since_cycle": 1,
            "consecutive_fallbacks": cycle,
            "reason": UNREACHABLE,
            "message": f"LLM unreachable: {cycle}",
            "no_reply": True,
        }
        write(store, sid, cycle, ("compose", compose(cycle, True)), ("alert", alert))
    alerts = recent_alerts(store, sid)
    assert [(a.cycle, a.consecutive_fallbacks) for a in alerts] == [(2, 2), (1, 1)]
    assert alerts[0].compose_id == f"{sid}-000002" and alerts[0].reason == UNREACHABLE
    assert (
        store.cycle_count(sid) == 2 and store.failed_cycle_count(sid) == 0
    )  # an alert is no failure


def test_the_run_is_counted_beyond_the_window_when_asked(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), 0)
    write(store, sid, 1, ("compose", compose(1)))
    for cycle in range(2, 9):  # 7 fallbacks in a row
        write(store, sid, cycle, ("compose", compose(cycle, True)))
    assert fallback_stats(store, sid, window=4).streak == 4
    wide = fallback_stats(store, sid, window=4, streak_window=20)
    assert (wide.window, wide.fallbacks, wide.streak, wide.oldest_cycle) == (4, 4, 7, 5)
