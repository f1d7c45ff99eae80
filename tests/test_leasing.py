"""Who holds a lease, in a trader's words: the refusal a control shows, and the owner read back.

A short activity (a Step, a Delete...) says a cycle is running right now and to try again in
a few seconds; an auto-run or the command line is named, with where to pause or stop it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.leasing import owner_name, parse_owner
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.leases import LeaseHeld, acquire_lease
from strategy_agent.trading_history.store import SqliteStore

HOST = socket.gethostname()
ME = os.getpid()
OTHER = os.getppid()  # a live process that is not this one
T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
STALE_MS = 30_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "leasing.db") as opened:
        yield opened


def refusal(store: SqliteStore, holder: str, taker: str, *, pid: int | None = None) -> str:
    """The message ``taker`` gets while ``holder`` holds the lease (acquired at T0)."""
    sid = store.create_strategy(UserRequest(), now_ms=1)
    acquire_lease(store, sid, holder, T0, STALE_MS, pid=pid)
    with pytest.raises(LeaseHeld) as held:
        acquire_lease(store, sid, taker, T0 + 5_000, STALE_MS, pid=ME)
    return str(held.value)


def test_a_step_in_another_tab_is_said_in_a_traders_words(store: SqliteStore) -> None:
    message = refusal(store, owner_name("app", "Step"), owner_name("app", "auto-run"), pid=ME)
    assert message == (
        "A cycle of this strategy is running right now (Step in another tab or window): "
        "try again in a few seconds."
    )


@pytest.mark.parametrize(
    ("activity", "opening"),
    [
        ("Run one cycle", "A cycle of this strategy is running right now"),
        ("Dry run", "A dry run of this strategy is running right now"),
        ("Delete", "This strategy is being deleted right now"),
        ("Pause", "This strategy is being paused right now"),
        ("Stop", "This strategy is being stopped right now"),
        ("Stop and close positions", "A last cycle is closing this strategy's positions"),
    ],
)
def test_every_short_activity_says_try_again_not_pause_it_there(
    store: SqliteStore, activity: str, opening: str
) -> None:
    message = refusal(store, owner_name("app", activity), owner_name("app", "Step"), pid=ME)
    assert message.startswith(opening)
    assert f"({activity} in another tab or window)" in message
    assert message.endswith("try again in a few seconds.")
    assert "pause or stop it there" not in message and " pid " not in message and "#" not in message


def test_a_step_of_another_process_names_that_process(store: SqliteStore) -> None:
    holder = f"app pid {OTHER} on {HOST} (Step #16)"
    message = refusal(store, holder, owner_name("cli", "run"), pid=OTHER)
    assert message == (
        f"A cycle of this strategy is running right now (Step in the app, app pid {OTHER} on "
        f"{HOST}): try again in a few seconds."
    )


def test_the_command_line_is_named_with_where_to_pause_it(store: SqliteStore) -> None:
    holder = f"cli pid {OTHER} on {HOST} (run #1)"
    message = refusal(store, holder, owner_name("app", "Step"), pid=OTHER)
    assert "is being run by the command line (cli pid" in message
    assert f"pid {OTHER} on {HOST}, since 22:13 UTC)" in message
    assert "pause or stop it there first" in message and "Ctrl+C" in message
    assert "a cycle of this strategy is running right now" not in message.lower()


def test_an_auto_run_of_another_app_process_is_named(store: SqliteStore) -> None:
    holder = f"app pid {OTHER} on {HOST} (auto-run #3)"
    message = refusal(store, holder, owner_name("app", "Step"), pid=OTHER)
    assert f"is being run by another app process (auto-run, app pid {OTHER} on {HOST}" in message
    assert message.endswith("pause or stop it there first.")


def test_an_owner_name_of_another_form_is_shown_as_stored(store: SqliteStore) -> None:
    message = refusal(store, "nightly job", owner_name("app", "Step"))
    assert "is being run by nightly job (since 22:13 UTC): pause or stop it there first." in message


def test_owner_names_read_back() -> None:
    owner = parse_owner(owner_name("cli", "backtest"))
    assert (owner.role, owner.pid, owner.host, owner.activity) == ("cli", ME, HOST, "backtest")
    assert owner.process == f"cli pid {ME} on {HOST}" and not owner.short
    assert parse_owner(owner_name("app", "Step")).short
    odd = parse_owner("app pid 1 on a-dead-host")
    assert (odd.role, odd.pid, odd.host, odd.activity) == ("app", 1, "a-dead-host", None)
    assert parse_owner("nightly job").process == "nightly job"
