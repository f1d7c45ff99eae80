"""One lease per strategy: who may run its cycles now, held in the database.

Every path that runs a cycle (the app's runner, Step, the prompt lab's
"Run one cycle", the CLI) takes the strategy's lease first, across threads and
processes, and keeps it alive with a heartbeat. A lease whose heartbeat is
older than ``stale_after_ms`` belongs to an owner that died (a crashed process)
and is taken over; so is one whose owner process, on this same host, no longer
exists (no need to wait for its heartbeat to age after a ``kill -9``). A live
one is refused with who holds it.

Each function runs in one ``BEGIN IMMEDIATE`` transaction, so two takers
cannot both win.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from strategy_agent.errors import StrategyAgentError
from strategy_agent.trading_history.store import SqliteStore


@dataclass(frozen=True)
class Lease:
    """The lease of one strategy; times in epoch ms UTC."""

    strategy_id: str
    owner: str
    acquired_ts: int
    heartbeat_ts: int
    host: str | None = None
    pid: int | None = None


def this_host() -> str:
    """The host name leases record for their owner process."""
    return socket.gethostname()


def _owner_process_gone(lease: Lease) -> bool:
    """True when the lease's owner process ran on this host and no longer exists."""
    if lease.host != this_host() or lease.pid is None or lease.pid == os.getpid():
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def lease_is_live(lease: Lease, now_ms: int, stale_after_ms: int) -> bool:
    """True while the lease's owner counts as alive (fresh heartbeat, process not gone)."""
    return now_ms - lease.heartbeat_ts < stale_after_ms and not _owner_process_gone(lease)


class LeaseHeld(StrategyAgentError):
    """Another live owner runs this strategy; the message says so in a trader's words.

    A short activity (a Step in another tab...) says to try again in a few
    seconds; an auto-run or the command line is named, with where to pause or
    stop it (``strategy_agent.leasing.refusal_text``). ``taker``: the owner name
    that was refused.
    """

    def __init__(self, lease: Lease, now_ms: int, taker: str | None = None) -> None:
        from strategy_agent.leasing import refusal_text

        super().__init__(refusal_text(lease, taker, now_ms))
        self.owner = lease.owner
        self.heartbeat_ts = lease.heartbeat_ts


def lease_holder(store: SqliteStore, strategy_id: str) -> Lease | None:
    """The current lease of ``strategy_id``, live or stale, or ``None``."""
    rows = store.rows(
        "SELECT strategy_id, owner, acquired_ts, heartbeat_ts, host, pid FROM leases "
        "WHERE strategy_id = ?",
        [strategy_id],
    )
    return Lease(**rows[0]) if rows else None


def acquire_lease(
    store: SqliteStore,
    strategy_id: str,
    owner: str,
    now_ms: int,
    stale_after_ms: int,
    pid: int | None = None,
) -> Lease:
    """Take the lease for ``owner``; raises ``LeaseHeld`` when another live owner has it.

    Re-entrant for the same owner (its heartbeat is renewed). A lease whose
    heartbeat is at least ``stale_after_ms`` old is taken over, and so is one
    whose owner process (``pid`` on this host, recorded when given) is gone.
    """
    with store.write():
        current = lease_holder(store, strategy_id)
        if (
            current is not None
            and current.owner != owner
            and lease_is_live(current, now_ms, stale_after_ms)
        ):
            raise LeaseHeld(current, now_ms, owner)
        acquired = current.acquired_ts if current is not None and current.owner == owner else now_ms
        host = this_host() if pid is not None else None
        store.db.execute(
            "INSERT OR REPLACE INTO leases (strategy_id, owner, acquired_ts, heartbeat_ts, "
            "host, pid) VALUES (?, ?, ?, ?, ?, ?)",
            [strategy_id, owner, acquired, now_ms, host, pid],
        )
    return Lease(strategy_id, owner, acquired, now_ms, host, pid)


def renew_lease(store: SqliteStore, strategy_id: str, owner: str, now_ms: int) -> bool:
    """Move the heartbeat to ``now_ms``; ``False`` when the lease is no longer ``owner``'s."""
    with store.write():
        cursor = store.db.execute(
            "UPDATE leases SET heartbeat_ts = ? WHERE strategy_id = ? AND owner = ?",
            [now_ms, strategy_id, owner],
        )
    return cursor.rowcount == 1


def release_lease(store: SqliteStore, strategy_id: str, owner: str) -> None:
    """Give the lease up; does nothing when ``owner`` does not hold it."""
    with store.write():
        store.db.execute(
            "DELETE FROM leases WHERE strategy_id = ? AND owner = ?", [strategy_id, owner]
        )
