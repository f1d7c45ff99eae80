"""Holding a strategy's lease while running its cycles: owner names, heartbeat, release.

The lease itself lives in the database (``trading_history.leases``); this
module is how a runner or the CLI holds one, and how an owner's name reads back
in a trader's words (``parse_owner``, ``refusal_text``). ``LeaseKeeper`` takes the lease,
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
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strategy_agent.trading_history.leases import Lease

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


_OWNER = re.compile(
    r"(?P<role>\S+) pid (?P<pid>\d+) on (?P<host>\S+)(?: \((?P<activity>.+) #\d+\))?"
)
# Activities that hold a lease for a moment (one cycle at most): "try again", not "stop it".
_SHORT: dict[str, str] = {
    "Step": "a cycle of this strategy is running right now",
    "Run one cycle": "a cycle of this strategy is running right now",
    "Dry run": "a dry run of this strategy is running right now",
    "Stop and close positions": "a last cycle is closing this strategy's positions right now",
    "Delete": "this strategy is being deleted right now",
    "Pause": "this strategy is being paused right now",
    "Stop": "this strategy is being stopped right now",
    "resume": "the app is settling this strategy after a restart right now",
}
_ROLES = {"app": "the app", "cli": "the command line"}


@dataclass(frozen=True)
class LeaseOwner:
    """A lease owner's name read back: ``cli pid 1234 on vm (run #1)``.

    ``role`` (``app``, ``cli``), ``pid``, ``host`` and ``activity`` (``auto-run``,
    ``Step``, ``run``...) are None when the name has another form (then ``name``
    is all there is to show).
    """

    name: str
    role: str | None = None
    pid: int | None = None
    host: str | None = None
    activity: str | None = None

    @property
    def process(self) -> str:
        """``cli pid 1234 on vm``: which process, without the activity."""
        if self.role is None:
            return self.name
        return f"{self.role} pid {self.pid} on {self.host}"

    @property
    def short(self) -> bool:
        """True for an activity that holds the lease for one cycle at most (a Step...)."""
        return self.activity in _SHORT

    @property
    def is_this_process(self) -> bool:
        return self.pid == os.getpid() and self.host in {None, socket.gethostname()}

    def same_process(self, other: LeaseOwner) -> bool:
        return self.role is not None and (self.role, self.pid, self.host) == (
            other.role,
            other.pid,
            other.host,
        )

    def who(self, this_app: bool = False) -> str:
        """Who runs it, for people: ``the command line``, ``another app process``..."""
        if self.role == "app":
            return "this app" if this_app else "another app process"
        if self.role == "cli" and self.activity == "backtest":
            return "a backtest on the command line"
        return _ROLES.get(self.role or "", self.name)

    @property
    def doing(self) -> str:
        """What it is doing right now (short activities): ``a cycle of this strategy is
        running right now``."""
        return _SHORT.get(self.activity or "", "this strategy is busy right now")


def parse_owner(name: str, pid: int | None = None, host: str | None = None) -> LeaseOwner:
    """``name`` as made by ``owner_name``; ``pid``/``host`` as recorded on the lease win."""
    match = _OWNER.fullmatch(name)
    if match is None:
        return LeaseOwner(name, pid=pid, host=host)
    return LeaseOwner(
        name,
        role=match["role"],
        pid=pid if pid is not None else int(match["pid"]),
        host=host or match["host"],
        activity=match["activity"],
    )


def since_text(ts_ms: int, now_ms: int) -> str:
    """``14:03 UTC`` (with the date when it is not within the last day)."""
    when = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    same_day = 0 <= now_ms - ts_ms < 86_400_000
    return when.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC")


def refusal_text(lease: Lease, taker: str | None, now_ms: int) -> str:
    """Why ``taker`` (an owner name) cannot take ``lease`` now, in a trader's words.

    A short activity (Step, Run one cycle, Dry run, Delete, Pause, Stop): what is
    going on right now and to try again in a few seconds (``in another tab or
    window`` when it is this very app process). An auto-run or the command line:
    who runs it, since when, and to pause or stop it there.
    """
    holder = parse_owner(lease.owner, lease.pid, lease.host)
    mine = taker is not None and holder.same_process(parse_owner(taker))
    if holder.short:
        if mine:
            where = "in another tab or window"
        elif holder.role is None:
            where = f"by {holder.name}"
        else:
            where = f"in {_ROLES.get(holder.role, holder.role)}, {holder.process}"
        doing = holder.doing
        return (
            f"{doing[:1].upper()}{doing[1:]} ({holder.activity} {where}): "
            "try again in a few seconds."
        )
    since = since_text(lease.acquired_ts, now_ms)
    details = [holder.process] if holder.role is not None else []
    if holder.role == "app" and holder.activity:
        details.insert(0, holder.activity)
    details.append(f"since {since}")
    hint = " (Ctrl+C in its terminal stops the command)" if holder.role == "cli" else ""
    return (
        f"Strategy {lease.strategy_id} is being run by {holder.who(this_app=mine)} "
        f"({', '.join(details)}): pause or stop it there first{hint}."
    )


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
