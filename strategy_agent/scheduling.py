"""When a running strategy decides next: the ``Scheduler`` port of the background loop.

- ``FixedPaceScheduler`` (the simulated market and replays, whose clock is
  stepped): the first cycle at once, then one every ``delay_s`` seconds.
- ``CandleCloseScheduler`` (a real market): once per closed candle of the
  strategy's interval, ``grace_ms`` after the close (``5 s`` after each hour
  for ``1h``), because a decision before the close would see the forming
  candle's neighbour again. A strategy that has not yet decided on the
  latest closed candle decides at once; a failed cycle is tried again after
  ``retry_ms`` while its candle is still the latest.

``wait_until_due`` blocks on an ``Event`` so Pause and Stop end the wait at
once. Times are epoch ms from the scheduler's ``Clock``.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod

from strategy_agent.clock import Clock

DEFAULT_GRACE_MS = 5_000  # after a candle closes, before deciding on it
DEFAULT_RETRY_MS = 30_000  # after a failed cycle, while its candle is the latest
MAX_NAP_S = 60.0  # the longest single wait: a wall clock that jumps is noticed within it


class Scheduler(ABC):
    """Decides when the background loop runs the next cycle."""

    @abstractmethod
    def seconds_until_due(self) -> float:
        """Seconds until the next cycle is due (<= 0: due now)."""

    @abstractmethod
    def ran(self, cycle_ts: int, ok: bool) -> None:
        """A cycle ran at ``cycle_ts`` (epoch ms of the strategy's clock); ``ok`` False if it failed."""

    def next_due_ms(self) -> int | None:
        """Epoch ms when the next decision is due, for people (``None``: a fast stepped pace)."""
        return None

    def wait_until_due(self, stop: threading.Event) -> bool:
        """Block until the next cycle is due; False when ``stop`` was set first (at once)."""
        while not stop.is_set():
            delay = self.seconds_until_due()
            if delay <= 0:
                return True
            if stop.wait(min(delay, MAX_NAP_S)):
                return False
        return False


class FixedPaceScheduler(Scheduler):
    """The first cycle at once, then one every ``delay_s`` seconds of real time."""

    def __init__(self, delay_s: float) -> None:
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        self.delay_s = delay_s
        self._last: float | None = None

    def seconds_until_due(self) -> float:
        if self._last is None:
            return 0.0
        return self.delay_s - (time.monotonic() - self._last)

    def ran(self, cycle_ts: int, ok: bool) -> None:
        self._last = time.monotonic()


class CandleCloseScheduler(Scheduler):
    """One decision per closed candle, ``grace_ms`` after its close (see the module doc).

    ``last_cycle_ts``: when the strategy last decided successfully (``None``:
    never), so a restarted strategy does not decide twice on one candle.
    """

    def __init__(
        self,
        clock: Clock,
        interval_ms: int,
        *,
        last_cycle_ts: int | None = None,
        grace_ms: int = DEFAULT_GRACE_MS,
        retry_ms: int = DEFAULT_RETRY_MS,
    ) -> None:
        if interval_ms <= 0 or grace_ms < 0 or retry_ms <= 0:
            raise ValueError("interval_ms and retry_ms must be > 0, grace_ms >= 0")
        self._clock = clock
        self._step = interval_ms
        self._grace = grace_ms
        self._retry = retry_ms
        self._last_ok = last_cycle_ts
        self._retry_at: int | None = None

    def next_due_ms(self) -> int:
        """Epoch ms of the next decision (now or in the past when one is due already)."""
        now = self._clock.now_ms()
        latest_close = now // self._step * self._step
        if self._last_ok is not None and self._last_ok >= latest_close:
            return next_decision_ms(self._step, self._last_ok, self._grace)
        due = latest_close + self._grace  # a closed candle nobody decided on yet
        if self._retry_at is not None and self._retry_at > due:
            # a failed try: again later, or on the next candle if that closes first
            due = min(self._retry_at, latest_close + self._step + self._grace)
        return due

    def seconds_until_due(self) -> float:
        return (self.next_due_ms() - self._clock.now_ms()) / 1000.0

    def ran(self, cycle_ts: int, ok: bool) -> None:
        if ok:
            self._last_ok = max(cycle_ts, self._last_ok or cycle_ts)
            self._retry_at = None
        else:
            self._retry_at = self._clock.now_ms() + self._retry


def next_decision_ms(interval_ms: int, last_cycle_ts: int, grace_ms: int = DEFAULT_GRACE_MS) -> int:
    """When a strategy that last decided at ``last_cycle_ts`` decides next on a real market.

    The close of the candle forming at ``last_cycle_ts``, plus ``grace_ms``
    (a cycle at 10:00:05 for ``1h`` -> 11:00:05; one at 09:59:58 -> 10:00:05).
    """
    return (last_cycle_ts // interval_ms + 1) * interval_ms + grace_ms
