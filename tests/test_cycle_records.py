"""What a compose record tells the next prompt: ``feedback_from_compose`` and ``read_feedback``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strategy_agent.cycle_records import (
    fallback_alert,
    feedback_from_compose,
    read_fallback_streak,
    read_feedback,
)
from strategy_agent.models import HistoryRecord, UserRequest
from strategy_agent.trading_history.store import SqliteStore


def outcome(symbol: str, status: str, *reasons: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "action": "buy", "status": status, "reasons": list(reasons), **extra}


PLAN_OUTCOMES = [
    outcome("BTC/USDT", "accepted"),
    outcome("ETH/USDT", "clamped", "max_position_pct 30%", requested_qty=5, final_target_qty=1),
    outcome("SOL/USDT", "rejected", "confidence 0.40 is below min_confidence 0.55"),
]


def test_only_rejected_and_clamped_items_are_told() -> None:
    feedback = feedback_from_compose({"fallback_used": False, "outcomes": PLAN_OUTCOMES})
    assert feedback is not None and feedback.reply_problem is None
    assert [(o.symbol, o.status) for o in feedback.outcomes] == [
        ("ETH/USDT", "clamped"),
        ("SOL/USDT", "rejected"),
    ]
    assert feedback.outcomes[0].reasons == ["max_position_pct 30%"]


def test_nothing_to_tell_gives_none() -> None:
    assert feedback_from_compose({"fallback_used": False, "outcomes": PLAN_OUTCOMES[:1]}) is None
    assert feedback_from_compose({}) is None


def test_a_repaired_reply_tells_why_it_was_repaired() -> None:
    payload = {
        "fallback_used": False,
        "repair_attempted": True,
        "repair_reason": "no JSON object in the reply",
        "outcomes": [],
    }
    feedback = feedback_from_compose(payload)
    assert feedback is not None and feedback.reply_problem == "no JSON object in the reply"


def test_after_a_fallback_the_reply_problem_is_told_not_the_fallback_rules_items() -> None:
    payload = {
        "fallback_used": True,
        "fallback_reason": "m gave no usable plan, even after one repair round",
        "raw_reply": "Still no JSON, sorry.",
        "repair_attempted": True,
        "repair_reason": "no JSON object in the reply",
        "outcomes": PLAN_OUTCOMES,  # the fallback rule's, not the model's
    }
    feedback = feedback_from_compose(payload)
    assert feedback is not None and feedback.outcomes == []
    assert feedback.reply_problem == "m gave no usable plan, even after one repair round"


def test_a_fallback_without_any_reply_is_not_the_models_fault() -> None:
    payload = {
        "fallback_used": True,
        "fallback_reason": "the LLM server could not be reached",
        "raw_reply": None,
        "outcomes": [],
    }
    assert feedback_from_compose(payload) is None


def test_malformed_outcomes_of_an_older_record_are_skipped() -> None:
    payload = {
        "outcomes": ["not an outcome", {"status": "rejected"}, PLAN_OUTCOMES[2], None],
    }
    feedback = feedback_from_compose(payload)
    assert feedback is not None and [o.symbol for o in feedback.outcomes] == ["SOL/USDT"]


def _record(sid: str, cycle: int, payload: dict[str, Any]) -> HistoryRecord:
    return HistoryRecord(
        ts=cycle * 3_600_000,
        kind="compose",
        reference_id=f"s-{cycle:06d}",
        payload={"cycle": cycle, **payload},
        strategy_id=sid,
    )


def test_read_feedback_uses_the_last_compose_record(db_path: Path) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(UserRequest(), now_ms=0)
    assert read_feedback(store, sid) is None
    store.write_cycle(sid, [_record(sid, 1, {"outcomes": PLAN_OUTCOMES})], [], [], None)
    first = read_feedback(store, sid)
    assert first is not None and len(first.outcomes) == 2
    store.write_cycle(sid, [_record(sid, 2, {"outcomes": PLAN_OUTCOMES[:1]})], [], [], None)
    assert read_feedback(store, sid) is None  # cycle 2 went as asked


def test_a_store_that_cannot_be_read_gives_no_feedback(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def records(self, *args: Any, **kwargs: Any) -> list[HistoryRecord]:
            raise OSError("disk gone")

    assert read_feedback(Broken(), "s") is None
    assert "disk gone" in caplog.text


# --- consecutive fallbacks and their alert ---------------------------------------------------


def compose_record(cycle: int, fallback: bool, raw_reply: str | None = None) -> HistoryRecord:
    payload: dict[str, Any] = {"cycle": cycle, "fallback_used": fallback, "raw_reply": raw_reply}
    if fallback:
        payload.update(fallback_reason="model could not be reached", fallback_policy="noop")
    return HistoryRecord(
        ts=cycle * 1000, kind="compose", reference_id=f"s-{cycle:06d}", payload=payload
    )


def test_alert_on_the_kth_fallback_in_a_row_only() -> None:
    streak, alerts = 0, []
    for cycle, fell_back in enumerate([True, False, True, True, True, True], start=1):
        streak, alert = fallback_alert(compose_record(cycle, fell_back), streak, 3)
        alerts.append(alert)
    assert streak == 4
    assert [a is not None for a in alerts] == [False, False, False, False, True, False]
    alert = alerts[4]
    assert alert is not None and alert.kind == "alert" and alert.reference_id == "s-000005"
    assert alert.payload["since_cycle"] == 3 and alert.payload["consecutive_fallbacks"] == 3
    assert alert.payload["message"] == (
        "LLM unreachable: 3 cycles in a row (#3 to #5) fell back to noop. "
        "Last reason: model could not be reached"
    )


def test_alert_after_one_and_a_reply_that_could_not_be_used() -> None:
    streak, alert = fallback_alert(compose_record(7, True, raw_reply="no JSON here"), 0, 1)
    assert streak == 1 and alert is not None
    assert alert.payload["no_reply"] is False
    assert alert.payload["message"].startswith("LLM replies unusable: 1 cycle in a row fell back")


def test_streak_is_read_back_up_to_the_cap(db_path: Path) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(UserRequest(), 0)
    for cycle, fell_back in enumerate([True, False, True, True, True], start=1):
        record = compose_record(cycle, fell_back).model_copy(
            update={"reference_id": f"{sid}-{cycle:06d}"}
        )
        store.write_cycle(sid, [record], [], [], None)
    assert read_fallback_streak(store, sid, cap=10) == 3
    assert read_fallback_streak(store, sid, cap=2) == 2
    store.close()
    assert read_fallback_streak(_Broken(), sid, cap=3) == 0  # advisory: an unreadable store


class _Broken:
    def records(self, *args: Any, **kwargs: Any) -> list[HistoryRecord]:
        raise OSError("disk gone")
