"""Injectable clocks (epoch ms UTC). Engine code asks a ``Clock``, never ``time.time()``."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod


class Clock(ABC):
    """Source of the current time in epoch milliseconds UTC."""

    @abstractmethod
    def now_ms(self) -> int: ...


class SystemClock(Clock):
    """Wall-clock time, optionally sped up from ``origin_ms`` by ``speed``.

    With ``speed=60`` one real second is one simulated minute; the simulated
    time starts at ``origin_ms`` when the clock is created.
    """

    def __init__(self, speed: float = 1.0, origin_ms: int | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self._speed = speed
        self._start_real = time.time()
        self._origin_ms = origin_ms if origin_ms is not None else int(self._start_real * 1000)

    def now_ms(self) -> int:
        elapsed_ms = (time.time() - self._start_real) * 1000.0
        return self._origin_ms + int(elapsed_ms * self._speed)


class ManualClock(Clock):
    """A clock that moves only when told to: for tests, stepped runs and replays."""

    def __init__(self, now_ms: int) -> None:
        self._now_ms = int(now_ms)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now_ms

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._now_ms = int(now_ms)

    def advance(self, delta_ms: int) -> int:
        with self._lock:
            self._now_ms += int(delta_ms)
            return self._now_ms
