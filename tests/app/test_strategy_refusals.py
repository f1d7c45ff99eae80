"""A refused control says so on its strategy's card and stays until dismissed; a strategy run
elsewhere (the command line, another app process) says who runs it and disables what would
be refused; a name of spaces is no name."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from strategy_agent.leasing import owner_name
from strategy_agent.trading_history.leases import acquire_lease, release_lease
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import Populated, open_page, texts

HOST = socket.gethostname()
STALE_MS = 30_000
STEP_ELSEWHERE = "A cycle of this strategy is running right now (Step in another tab or window)"


def now_ms() -> int:
    return int(time.time() * 1000)


def texts_in(app: AppTest, key: str) -> str:
    """Every text inside the container keyed ``key`` (markdown, captions, alerts)."""
    found: list[str] = []

    def walk(node: Any, inside: bool) -> None:
        block_id = str(getattr(getattr(node, "proto", None), "id", "") or "")
        inside = inside or block_id.endswith(f"-{key}")
        value = getattr(node, "value", None)
        if inside and isinstance(value, str) and type(node).__name__ != "Button":
            found.append(value)
        for child in getattr(node, "children", {}).values():
            walk(child, inside)

    def has(node: Any) -> bool:
        block_id = str(getattr(getattr(node, "proto", None), "id", "") or "")
        return block_id.endswith(f"-{key}") or any(
            has(child) for child in getattr(node, "children", {}).values()
        )

    assert has(app._tree), f"no container {key} on the page"
    walk(app._tree, False)
    return "\n".join(found)


def card(app: AppTest, strategy_id: str) -> str:
    return texts_in(app, f"card_{strategy_id}")


def take_lease(db: Path, strategy_id: str, owner: str, pid: int | None, at_ms: int) -> None:
    with SqliteStore(db) as store:
        acquire_lease(store, strategy_id, owner, at_ms, STALE_MS, pid=pid)


def drop_lease(db: Path, strategy_id: str, owner: str) -> None:
    with SqliteStore(db) as store:
        release_lease(store, strategy_id, owner)


# -- 1. a refused control's message stays on its card ---------------------------------------


def test_a_refused_start_stays_on_its_card_across_refreshes_until_dismissed(
    populated: Populated,
) -> None:
    sid, other = populated.hold_id, populated.trend_id
    step = owner_name("app", "Step")  # another tab of this app is stepping it
    take_lease(populated.db, sid, step, os.getpid(), now_ms())
    app = open_page("strategies")
    assert not app.button(key=f"start_{sid}").disabled  # this app's own lease: as before
    app.button(key=f"start_{sid}").click().run()
    for _ in range(3):  # the 2-second refresh reruns the list
        assert STEP_ELSEWHERE in card(app, sid)
        app.run()
    assert STEP_ELSEWHERE in card(app, sid)
    assert STEP_ELSEWHERE not in card(app, other)  # on the card it belongs to, not the top
    app.button(key=f"dismiss_{sid}").click().run()
    assert STEP_ELSEWHERE not in card(app, sid)
    app.run()
    assert STEP_ELSEWHERE not in texts(app)


def test_the_next_control_on_the_card_replaces_its_message(populated: Populated) -> None:
    sid = populated.hold_id
    step = owner_name("app", "Step")
    take_lease(populated.db, sid, step, os.getpid(), now_ms())
    app = open_page("strategies")
    app.button(key=f"step_{sid}").click().run()
    assert STEP_ELSEWHERE in card(app, sid)
    drop_lease(populated.db, sid, step)  # that step has ended
    app.button(key=f"step_{sid}").click().run()
    assert STEP_ELSEWHERE not in card(app, sid)
    assert f"of {sid}:" in card(app, sid) and "It is paused" in card(app, sid)


def test_a_refused_stop_is_said_in_its_confirmation(populated: Populated) -> None:
    sid = populated.hold_id
    app = open_page("strategies")
    app.button(key=f"stop_{sid}").click().run()  # tab B asks to stop...
    step = owner_name("app", "Step")  # ...while tab A steps it
    take_lease(populated.db, sid, step, os.getpid(), now_ms())
    app.button(key=f"confirm_stop_{sid}").click().run()
    with SqliteStore(populated.db) as store:
        assert store.get_strategy(sid).status == "paused"  # refused: nothing changed
    for _ in range(2):
        confirmation = texts_in(app, f"confirm_stop_box_{sid}")
        assert "cannot be started again" in confirmation  # still open...
        assert STEP_ELSEWHERE in confirmation  # ...and says why the stop did not happen
        app.run()
    assert card(app, sid).count(STEP_ELSEWHERE) == 1  # once, in the confirmation


# -- 2. a strategy run elsewhere says who runs it ---------------------------------------------


def run_by_the_cli(populated: Populated, heartbeat_ms: int) -> tuple[str, int]:
    """The hold strategy, as `run --resume` leaves it while it runs: status running, its lease
    held by a live command-line process (the test runner's parent stands in for it)."""
    sid, pid = populated.hold_id, os.getppid()
    with SqliteStore(populated.db) as store:
        store.set_status(sid, "running", None, now_ms())
    take_lease(populated.db, sid, f"cli pid {pid} on {HOST} (run #1)", pid, heartbeat_ms)
    return sid, pid


def test_a_strategy_the_cli_runs_says_so_and_disables_what_would_be_refused(
    populated: Populated,
) -> None:
    acquired = now_ms() - 1_000
    sid, pid = run_by_the_cli(populated, acquired)
    app = open_page("strategies")
    since = time.strftime("%H:%M", time.gmtime(acquired / 1000))
    text = card(app, sid)
    assert f"Run by the command line (pid {pid} on {HOST}) · since {since} UTC" in text
    assert "Pause or stop it where it runs" in text
    for control in ("start", "step", "del"):
        button = app.button(key=f"{control}_{sid}")
        assert button.disabled, control
        assert "pause or stop it where it runs" in (button.help or ""), control
    live = [b.key for b in app.button if b.key in {f"pause_{sid}", f"stop_{sid}"}]
    assert not [k for k in live if not app.button(key=k).disabled]  # nothing here to refuse
    assert not app.button(key=f"dup_{sid}").disabled  # copying needs no lease
    other = populated.trend_id
    assert not app.button(key=f"start_{other}").disabled
    assert "Run by" not in card(app, other)


def test_a_dead_command_lines_lease_leaves_the_card_as_it_was(populated: Populated) -> None:
    sid, _ = run_by_the_cli(populated, now_ms() - 2 * STALE_MS)  # no heartbeat for a minute
    app = open_page("strategies")
    assert "Run by" not in card(app, sid)
    assert not app.button(key=f"start_{sid}").disabled  # Start takes the dead owner's lease over


# -- 3. a name of spaces is no name -----------------------------------------------------------


def test_a_name_of_spaces_is_refused_and_nothing_is_stored(app_db: Path) -> None:
    app = open_page("strategies")
    app.button(key="open_form").click().run()
    app.text_input(key="form.trading.strategy_name").set_value("   ")
    app.button(key="form_submit").click().run()
    assert not app.exception
    assert "Give the strategy a name." in [e.value for e in app.error]
    assert "Created" not in texts(app)
    with SqliteStore(app_db) as store:
        assert store.list_strategies() == []
