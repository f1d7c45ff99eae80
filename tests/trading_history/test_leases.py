"""One lease per strategy, in the database: refused while live, taken over once stale."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from strategy_agent.models import UserRequest
from strategy_agent.trading_history.leases import (
    LeaseHeld,
    acquire_lease,
    lease_holder,
    release_lease,
    renew_lease,
)
from strategy_agent.trading_history.prompt_versions import (
    latest_prompt_version,
    list_prompt_versions,
    save_prompt_version,
)
from strategy_agent.trading_history.store import SqliteStore

STALE_MS = 30_000


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "l.db"
    with SqliteStore(path) as store:
        sid = store.create_strategy(UserRequest(), now_ms=1)
    return path, sid


def test_a_live_lease_is_refused_with_who_holds_it(db: tuple[Path, str]) -> None:
    path, sid = db
    with SqliteStore(path) as store:
        acquire_lease(store, sid, "app pid 1 on host", now_ms=1_000, stale_after_ms=STALE_MS)
        with pytest.raises(LeaseHeld, match="app pid 1 on host") as held:
            acquire_lease(store, sid, "cli pid 2", now_ms=20_000, stale_after_ms=STALE_MS)
        assert held.value.owner == "app pid 1 on host"
        assert lease_holder(store, sid).owner == "app pid 1 on host"  # type: ignore[union-attr]


def test_the_same_owner_re_enters_and_renews(db: tuple[Path, str]) -> None:
    path, sid = db
    with SqliteStore(path) as store:
        first = acquire_lease(store, sid, "me", now_ms=1_000, stale_after_ms=STALE_MS)
        again = acquire_lease(store, sid, "me", now_ms=5_000, stale_after_ms=STALE_MS)
        assert (again.acquired_ts, again.heartbeat_ts) == (first.acquired_ts, 5_000)
        assert renew_lease(store, sid, "me", now_ms=9_000)
        assert lease_holder(store, sid).heartbeat_ts == 9_000  # type: ignore[union-attr]


def test_a_dead_owners_lease_is_taken_over_and_the_old_owner_learns_it(
    db: tuple[Path, str],
) -> None:
    path, sid = db
    with SqliteStore(path) as store:
        acquire_lease(store, sid, "crashed", now_ms=1_000, stale_after_ms=STALE_MS)
        taken = acquire_lease(store, sid, "new", now_ms=1_000 + STALE_MS, stale_after_ms=STALE_MS)
        assert taken.owner == "new"
        assert not renew_lease(store, sid, "crashed", now_ms=40_000)
        release_lease(store, sid, "crashed")  # not the holder: nothing happens
        assert lease_holder(store, sid).owner == "new"  # type: ignore[union-attr]
        release_lease(store, sid, "new")
        assert lease_holder(store, sid) is None


def test_two_threads_racing_for_a_lease_one_wins(db: tuple[Path, str]) -> None:
    path, sid = db
    winners: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(8)

    def take(owner: str) -> None:
        with SqliteStore(path) as own:
            start.wait()
            try:
                acquire_lease(own, sid, owner, now_ms=1_000, stale_after_ms=STALE_MS)
                winners.append(owner)
            except LeaseHeld:
                refused.append(owner)

    threads = [threading.Thread(target=take, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(refused) == 7
    with SqliteStore(path) as store:
        assert lease_holder(store, sid).owner == winners[0]  # type: ignore[union-attr]


def test_prompt_versions_belong_to_their_strategy(db: tuple[Path, str]) -> None:
    path, sid = db
    with SqliteStore(path) as store:
        other = store.create_strategy(UserRequest(), now_ms=2)  # same default name
        save_prompt_version(store, sid, "buy dips", now_ms=10)
        again = save_prompt_version(store, sid, "  buy dips ", now_ms=11)  # unchanged
        assert again.version == 1
        save_prompt_version(store, sid, "sell rips", now_ms=12)
        save_prompt_version(store, other, "hold", now_ms=13)
        assert [v.text for v in list_prompt_versions(store, sid)] == ["sell rips", "buy dips"]
        assert latest_prompt_version(store, other).version == 1  # type: ignore[union-attr]
        assert latest_prompt_version(store, store.create_strategy(UserRequest(), 3)) is None


def test_a_lease_of_a_process_that_is_gone_is_taken_over_at_once(db: tuple[Path, str]) -> None:
    import subprocess
    import sys

    path, sid = db
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    with SqliteStore(path) as store:
        acquire_lease(store, sid, "killed app", now_ms=1_000, stale_after_ms=STALE_MS, pid=dead_pid)
        # its heartbeat is fresh, but its process is gone (kill -9): no need to wait
        taken = acquire_lease(store, sid, "restarted app", 2_000, STALE_MS, pid=os.getpid())
        assert (taken.owner, taken.pid) == ("restarted app", os.getpid())
        # a live process on this host keeps its lease
        with pytest.raises(LeaseHeld):
            acquire_lease(store, sid, "another", 3_000, STALE_MS, pid=os.getppid())
