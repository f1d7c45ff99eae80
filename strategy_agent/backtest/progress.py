"""Progress of a backtest: cycles done of total, elapsed, ETA, tokens and dollars spent.

``Progress`` is shared by the workers (thread-safe): each finished cycle calls
``advance``. The Backtest page polls ``snapshot()``; the CLI passes a
``LineReporter`` as listener, which redraws one line in place (``\\r``) on a
terminal and, when the output is a file or a pipe, prints one line at the
first cycle, at each 10 % step and at the end, so logs stay short.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

ProgressState = str  # "running", "done", "stopped", "failed"


@dataclass(frozen=True)
class ProgressSnapshot:
    """A moment of a run: times in seconds, ``cost_usd`` in US dollars (``None``: unknown).

    ``eta_s`` is ``None`` before the first cycle and once the run has ended.
    """

    cycles_done: int
    cycles_total: int
    elapsed_s: float
    eta_s: float | None
    tokens: int
    cost_usd: float | None
    state: ProgressState = "running"
    reason: str | None = None

    @property
    def fraction(self) -> float:
        """Cycles done over total, 0..1 (1 for an empty run)."""
        if self.cycles_total <= 0:
            return 1.0
        return min(1.0, self.cycles_done / self.cycles_total)


Listener = Callable[[ProgressSnapshot], None]


class Progress:
    """Thread-safe progress of one backtest (all its configs and samples together).

    ``clock`` returns seconds (monotonic; injectable for tests). ``listeners``
    are called with each new snapshot, outside the lock.
    """

    def __init__(
        self,
        cycles_total: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        listeners: list[Listener] | None = None,
    ) -> None:
        if cycles_total < 0:
            raise ValueError(f"cycles_total must be >= 0, got {cycles_total}")
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._listeners = list(listeners or [])
        self._total = cycles_total
        self._done = 0
        self._tokens = 0
        self._cost: float | None = 0.0
        self._state: ProgressState = "running"
        self._reason: str | None = None
        self._ended_at: float | None = None

    def advance(self, cycles: int = 1, tokens: int = 0, cost_usd: float | None = 0.0) -> None:
        """Count finished cycles and what they spent (``cost_usd`` ``None``: price unknown)."""
        with self._lock:
            self._done += cycles
            self._tokens += tokens
            self._cost = None if self._cost is None or cost_usd is None else self._cost + cost_usd
        self._notify()

    def finish(self, state: ProgressState = "done", reason: str | None = None) -> None:
        """End the run as ``done``, ``stopped`` or ``failed`` (the clock stops)."""
        with self._lock:
            self._state, self._reason = state, reason
            self._ended_at = self._clock()
        self._notify()

    def snapshot(self) -> ProgressSnapshot:
        """The progress now (what the page polls)."""
        with self._lock:
            now = self._ended_at if self._ended_at is not None else self._clock()
            elapsed = max(0.0, now - self._started)
            eta = None
            if self._state == "running" and self._done > 0:
                eta = elapsed / self._done * max(0, self._total - self._done)
            return ProgressSnapshot(
                cycles_done=self._done,
                cycles_total=self._total,
                elapsed_s=elapsed,
                eta_s=eta,
                tokens=self._tokens,
                cost_usd=self._cost,
                state=self._state,
                reason=self._reason,
            )

    def _notify(self) -> None:
        if not self._listeners:
            return
        snapshot = self.snapshot()
        for listener in self._listeners:
            listener(snapshot)


def render_line(snapshot: ProgressSnapshot) -> str:
    """One plain-text line: ``37/120 cycles  31%  elapsed 0:12  ETA 0:26  14,201 tokens  $0.0123``."""
    parts = [
        f"{snapshot.cycles_done:,}/{snapshot.cycles_total:,} cycles",
        f"{snapshot.fraction * 100:3.0f}%",
        f"elapsed {format_duration(snapshot.elapsed_s)}",
    ]
    if snapshot.state == "running":
        parts.append(
            f"ETA {format_duration(snapshot.eta_s)}" if snapshot.eta_s is not None else "ETA -"
        )
    parts.append(f"{snapshot.tokens:,} tokens")
    parts.append("$?" if snapshot.cost_usd is None else f"${snapshot.cost_usd:,.4f}")
    if snapshot.state != "running":
        parts.append(snapshot.state + (f": {snapshot.reason}" if snapshot.reason else ""))
    return "  ".join(parts)


def format_duration(seconds: float | None) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on; ``-`` for ``None``."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LineReporter:
    """Writes progress lines to ``stream`` (a ``Progress`` listener); thread-safe.

    On a terminal (``is_tty``; by default ``stream.isatty()``) the line is
    redrawn in place with ``\\r``; otherwise one line is printed at the first
    cycle, each time another 10 % is done, and at the end.
    """

    def __init__(self, stream: TextIO | None = None, is_tty: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty() if is_tty is None else is_tty
        self._lock = threading.Lock()
        self._last_decile = -1
        self._width = 0
        self._ended = False

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        self.update(snapshot)

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Show ``snapshot`` (see the class doc for when a line is written)."""
        with self._lock:
            if self._ended:
                return
            ended = snapshot.state != "running"
            line = render_line(snapshot)
            if self._tty:
                padding = " " * max(0, self._width - len(line))
                self._stream.write("\r" + line + padding + ("\n" if ended else ""))
                self._width = len(line)
            else:
                decile = int(snapshot.fraction * 10 + 1e-9)
                if decile > self._last_decile or ended:
                    self._stream.write(line + "\n")
                    self._last_decile = decile
            self._ended = ended
            self._stream.flush()
