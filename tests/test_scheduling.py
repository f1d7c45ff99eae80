"""The live cadence: once per closed candle, shortly after its close; the stepped pace; Pause at once."""

from __future__ import annotations

import threading
import time

import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.scheduling import (
    CandleCloseScheduler,
    FixedPaceScheduler,
    Scheduler,
    next_decision_ms,
)
from strategy_agent.views.strategies import next_decision_text

HOUR = 3_600_000
MINUTE = 60_000
DAY0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
GRACE = 5_000


def at(hours: int, minutes: int = 0, seconds: int = 0) -> int:
    return DAY0 + hours * HOUR + minutes * MINUTE + seconds * 1000


def test_next_decision_is_the_close_of_the_candle_forming_at_the_last_one_plus_grace() -> None:
    assert next_decision_ms(HOUR, at(10, 0, 5)) == at(11, 0, 5)
    assert next_decision_ms(HOUR, at(9, 59, 58)) == at(10, 0, 5)
    assert next_decision_ms(HOUR, at(10, 30)) == at(11, 0, 5)
    assert next_decision_ms(4 * HOUR, at(1, 2)) == at(4, 0, 5)  # 4h candles close at 04:00
    assert next_decision_ms(15 * MINUTE, at(10, 14, 59), grace_ms=0) == at(10, 15)


def test_a_strategy_that_never_decided_decides_at_once_on_the_latest_closed_candle() -> None:
    clock = ManualClock(at(10, 17))
    scheduler = CandleCloseScheduler(clock, HOUR)
    assert scheduler.next_due_ms() == at(10, 0, 5) and scheduler.seconds_until_due() < 0
    clock.set(at(10, 0, 2))  # the candle closed 2 s ago: wait for the grace
    assert scheduler.next_due_ms() == at(10, 0, 5)
    assert scheduler.seconds_until_due() == pytest.approx(3.0)


def test_after_a_decision_the_next_is_due_after_the_next_close_not_every_second() -> None:
    clock = ManualClock(at(10, 0, 5))
    scheduler = CandleCloseScheduler(clock, HOUR)
    scheduler.ran(clock.now_ms(), ok=True)
    for minute in (0, 1, 30, 59):
        clock.set(at(10, minute, 6))
        assert scheduler.next_due_ms() == at(11, 0, 5)
        assert scheduler.seconds_until_due() > 0
    clock.set(at(11, 0, 5))
    assert scheduler.seconds_until_due() == 0


def test_a_restarted_strategy_does_not_decide_twice_on_one_candle() -> None:
    clock = ManualClock(at(10, 40))
    resumed = CandleCloseScheduler(clock, HOUR, last_cycle_ts=at(10, 0, 5))
    assert resumed.next_due_ms() == at(11, 0, 5)
    stale = CandleCloseScheduler(clock, HOUR, last_cycle_ts=at(8, 0, 5))  # missed 09:00 and 10:00
    assert stale.seconds_until_due() <= 0


def test_a_failed_cycle_is_retried_soon_while_its_candle_is_the_latest() -> None:
    clock = ManualClock(at(10, 0, 5))
    scheduler = CandleCloseScheduler(clock, HOUR, retry_ms=30_000)
    scheduler.ran(clock.now_ms(), ok=False)
    assert scheduler.next_due_ms() == at(10, 0, 35)
    clock.set(at(10, 59, 50))
    scheduler.ran(clock.now_ms(), ok=False)  # retry at 11:00:20, the next candle at 11:00:05
    assert scheduler.next_due_ms() == at(11, 0, 5)
    clock.set(at(11, 0, 6))
    scheduler.ran(clock.now_ms(), ok=True)
    assert scheduler.next_due_ms() == at(12, 0, 5)


def test_the_stepped_pace_runs_the_first_cycle_at_once_then_one_per_delay() -> None:
    scheduler = FixedPaceScheduler(30.0)
    assert scheduler.seconds_until_due() == 0 and scheduler.next_due_ms() is None
    scheduler.ran(0, ok=True)
    assert 29.0 < scheduler.seconds_until_due() <= 30.0


@pytest.mark.parametrize(
    "scheduler",
    [
        FixedPaceScheduler(60.0),
        CandleCloseScheduler(ManualClock(at(10, 0, 6)), HOUR, last_cycle_ts=at(10, 0, 5)),
    ],
)
def test_pause_or_stop_ends_the_wait_at_once(scheduler: Scheduler) -> None:
    scheduler.ran(at(10, 0, 5), ok=True)
    stop = threading.Event()
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(scheduler.wait_until_due(stop)))
    waiter.start()
    time.sleep(0.1)
    assert waiter.is_alive()  # still waiting for the next candle (or the delay)
    started = time.monotonic()
    stop.set()
    waiter.join(2.0)
    assert not waiter.is_alive() and time.monotonic() - started < 1.0
    assert outcome == [False]


def test_the_card_says_when_the_next_decision_is_due() -> None:
    text = next_decision_text(at(11, 0, 5), at(10, 18, 5), "1h")
    assert text == "next decision 11:00:05 UTC (in 42 min), after the 1h candle closes"
    assert "due now" in next_decision_text(at(11, 0, 5), at(11, 0, 6), "1h")
