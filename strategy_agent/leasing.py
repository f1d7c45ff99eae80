"""Holding a strategy's lease while running its cycles: owner names, heartbeat, release.

The lease itself lives in the database (``trading_history.leases``); this
module is how a runner or the CLI holds one. ``LeaseKeeper`` takes the lease,
renews its heartbeat from a small thread every ``heartbeat_s`` seconds (so a
slow LLM call never makes a live owner look dead), and gives it back. When a
renewal finds the lease gone (another owner took it over because our heartbeat
looked stale), ``lost`` is set and the holder must stop before its next cycle.

Settings come from the environment: ``STRATEGY_AGENT_LEASE_STALE_S`` (default
30) is how old a heartbeat must be before its owner counts as dead.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

STALE_ENV = "STRATEGY_AGENT_LEASE_STALE_S"
DEFAULT_STALE_S = 30.0
HEARTBEATS_PER_STALE = 6  # renew six times within the stale window

_serial = itertools.count(1)


def now_ms() -> int:
    """Wall-clock epoch ms UTC (leases are about real time, not the market clock)."""
    return int(time.time() * 1000)


def lease_stale_s() -> float:
    """Seconds without a heartbeat after which a lease's owner counts as dead."""
    raw = os.environ.get(STALE_ENV, str(DEFAULT_STALE_S))
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{STALE_ENV} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{STALE_ENV} must be more than 0 seconds, got {raw!r}")
    return value


def owner_name(role: str, activity: str) -> str:
    """Who holds a lease, for people: ``app pid 1234 on host (auto-run #3)``.

    Each call gives a new name (the serial), so two holders in one process never
    share a lease by accident.
    """
    return f"{role} pid {os.getpid()} on {socket.gethostname()} ({activity} #{next(_serial)})"


class LeaseKeeper:
    """Holds one strategy's lease from ``acquire()`` to ``release()``, heartbeat included.

    ``acquire`` raises ``LeaseHeld`` (a ``StrategyAgentError`` naming the holder)
    when another live owner has it. Usable as a context manager.
    """

    def __init__(
        self,
        db_path: str | Path,
        strategy_id: str,
        owner: str,
        *,
        stale_after_s: float,
        heartbeat_s: float | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.strategy_id = strategy_id
        self.owner = owner
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s or stale_after_s / HEARTBEATS_PER_STALE
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> LeaseKeeper:
        """Take the lease now and start the heartbeat."""
        from strategy_agent.trading_history.leases import acquire_lease
        from strategy_agent.trading_history.store import SqliteStore

        with SqliteStore(self.db_path) as store:
            acquire_lease(
                store,
                self.strategy_id,
                self.owner,
                now_ms(),
                int(self.stale_after_s * 1000),
                pid=os.getpid(),
            )
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{self.strategy_id}", daemon=True
        )
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and give the lease back (nothing happens if it was lost)."""
        from strategy_agent.trading_history.leases import release_lease
        from strategy_agent.trading_history.store import SqliteStore

        if self._thread is None:
            return
        self._done.set()
        self._thread.join()
        self._thread = None
        try:
            with SqliteStore(self.db_path) as store:
                release_lease(store, self.strategy_id, self.owner)
        except Exception:  # it goes stale on its own; never hide the caller's outcome
            log.exception("could not release the lease of %s", self.strategy_id)

    def __enter__(self) -> LeaseKeeper:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()

    def _beat(self) -> None:
        from strategy_agent.trading_history.leases import renew_lease
        from strategy_agent.trading_history.store import SqliteStore

        store = SqliteStore(self.db_path)
        try:
            while not self._done.wait(self.heartbeat_s):
                try:
                    still_ours = renew_lease(store, self.strategy_id, self.owner, now_ms())
                except Exception:  # a busy database: try again on the next beat
                    log.warning("heartbeat of %s failed", self.strategy_id, exc_info=True)
                    continue
                if not still_ours:
                    log.warning("%s lost the lease of %s", self.owner, self.strategy_id)
                    self.lost.set()
                    return
        finally:
            store.close()
