"""Backtest runs apart from the trader's strategies: the Strategies page lists them in a
collapsed section without run controls, pickers put them after the trader's strategies
(labelled as runs), the Prompt lab does not offer them, and a batch is deleted whole."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from strategy_agent.trading_history.runs import create_run, finish_run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import strategies as views
from tests.app.helpers import Populated, open_page, request, shown, texts, write_equity

BATCH = "b4tch0000001"
H = 3_600_000


def add_batch(db: Path, batch: str = BATCH, runs: int = 3, status: str = "done") -> list[str]:
    """A batch of ``runs`` finished backtest runs (samples of one config "EMA"), newer than
    any strategy stored before, each with 41 hourly equity points ending at
    10,000 + 40 x 10 x k (k = 1..runs): +4 %, +8 %..."""
    ids = []
    created = _now()
    for k in range(1, runs + 1):
        with SqliteStore(db) as store:
            sid = store.create_strategy(
                request(f"EMA · backtest{sample(k, runs)}", "ema_crossover", ["BTC/USDT"]),
                created + k,
            )
        write_equity(db, sid, [10_000.0 + 10.0 * k * i for i in range(41)])
        with SqliteStore(db) as store:
            run = create_run(
                store, kind="backtest", strategy_id=sid, request=store.get_strategy(sid).request,
                data_source="simulated", window_from_ms=0, window_to_ms=40 * H, batch_id=batch,
                now_ms=created + k, sample_index=k - 1,
            )  # fmt: skip
            if status != "running":
                finish_run(store, run.id, "done", now_ms=created + 10 + k)
            store.set_status(sid, "stopped", "backtest done", 40 + k)
        ids.append(sid)
    return ids


def sample(k: int, runs: int) -> str:
    """The driver's name suffix of sample ``k`` of ``runs`` (none for a single run)."""
    return f" #{k}/{runs}" if runs > 1 else ""


def _now() -> int:
    return int(time.time() * 1000)


def _runs_section(app: AppTest) -> Any:
    return next(e for e in app.expander if e.label.startswith("Backtest runs"))


def test_strategies_page_shows_two_cards_and_a_collapsed_section_of_three_runs(
    populated: Populated,
) -> None:
    runs = add_batch(populated.db)
    app = open_page("strategies")
    card_ids = {
        sid
        for sid in (populated.trend_id, populated.hold_id, *runs)
        if any(b.key == f"dup_{sid}" for b in app.button)
    }
    assert card_ids == {populated.trend_id, populated.hold_id}  # two cards, no run card
    for sid in runs:  # no control of a run: it cannot be started, stepped, paused or stopped
        for control in ("start", "step", "pause", "stop", "dup", "del"):
            assert not [b for b in app.button if b.key == f"{control}_{sid}"], (control, sid)
    section = _runs_section(app)
    assert section.label == "Backtest runs (3 in 1 batch)"
    assert section.proto.expanded is False  # collapsed
    frame = shown(section.dataframe[0])
    assert list(frame.columns) == ["Batch", "Config", "Window", "Status", "Return (%)",
                                   "Trades"]  # fmt: skip
    assert len(frame) == 3
    assert list(frame["Config"]) == ["EMA #1/3", "EMA #2/3", "EMA #3/3"]
    assert list(frame["Return (%)"]) == ["+4.00 %", "+8.00 %", "+12.00 %"]
    assert set(frame["Batch"]) == {BATCH} and set(frame["Status"]) == {"done"}
    assert list(frame["Trades"]) == ["0", "0", "0"]
    assert set(frame["Window"]) == {"1970-01-01 00:00 → 1970-01-02 16:00 UTC"}
    assert "Backtest page" in texts(app)  # where the comparison is


def test_a_batch_is_deleted_whole_after_a_confirmation(populated: Populated) -> None:
    runs = add_batch(populated.db)
    other = add_batch(populated.db, batch="b4tch0000002", runs=1)
    app = open_page("strategies")
    section = _runs_section(app)
    assert section.label == "Backtest runs (4 in 2 batches)"
    order = ["b4tch0000002", BATCH, BATCH, BATCH]  # the newest batch first, runs as stored
    assert list(shown(section.dataframe[0])["Batch"]) == order
    assert list(shown(section.dataframe[0])["Config"]) == [
        "EMA",
        "EMA #1/3",
        "EMA #2/3",
        "EMA #3/3",
    ]
    with SqliteStore(populated.db) as store:
        assert [sid for sid, _ in views.strategy_options(store)][2:] == [*other, *runs]
    app.selectbox(key="runs_delete_batch").set_value(BATCH).run()
    app.button(key="runs_delete").click().run()
    with SqliteStore(populated.db) as store:  # nothing deleted before the confirmation
        assert len(store.list_strategies()) == 6
    assert any("Delete the 3 runs of batch" in w.value for w in app.warning)
    app.button(key="runs_delete_confirm").click().run()
    assert not app.exception
    with SqliteStore(populated.db) as store:
        left = {row.id for row in store.list_strategies()}
    assert left == {populated.trend_id, populated.hold_id, *other}
    assert not set(runs) & left
    assert any(f"Deleted batch {BATCH}" in s.value for s in app.success)
    assert _runs_section(app).label == "Backtest runs (1 in 1 batch)"


def test_a_running_batch_is_not_deleted(populated: Populated) -> None:
    runs = add_batch(populated.db, status="running")
    with SqliteStore(populated.db) as store:
        owner = "cli pid 999999 on elsewhere (backtest #1)"
        from strategy_agent.trading_history.leases import acquire_lease

        acquire_lease(store, runs[0], owner, now_ms=_now(), stale_after_ms=600_000)
    app = open_page("strategies")
    app.button(key="runs_delete").click().run()
    app.button(key="runs_delete_confirm").click().run()
    with SqliteStore(populated.db) as store:
        assert {row.id for row in store.list_strategies()} >= set(runs)
    assert any("still running" in e.value for e in app.error), [e.value for e in app.error]


def test_pickers_list_the_traders_strategies_first_then_runs_labelled(
    populated: Populated,
) -> None:
    runs = add_batch(populated.db)
    with SqliteStore(populated.db) as store:
        options = views.strategy_options(store)
    assert [sid for sid, _ in options] == [populated.hold_id, populated.trend_id, *runs]
    labels = dict(options)
    assert labels[populated.hold_id] == f"Hold · paused · {populated.hold_id}"
    assert labels[runs[0]] == f"backtest · batch {BATCH} · EMA #1/3 · done · {runs[0]}"
    for page in ("portfolio", "decisions", "digest"):
        app = open_page(page)
        picker = app.selectbox(key="_picker_Strategy")
        assert picker.options == [labels[sid] for sid, _ in options], page
        picker.set_value(runs[1]).run()  # a run can still be inspected
        assert not app.exception, (page, [e.message for e in app.exception])


def test_prompt_lab_does_not_offer_backtest_runs(populated: Populated) -> None:
    runs = add_batch(populated.db)
    with SqliteStore(populated.db) as store:
        options = views.strategy_options(store, include_runs=False)
    assert [sid for sid, _ in options] == [populated.hold_id, populated.trend_id]
    app = open_page("prompt_lab", selected_strategy=runs[0])  # chosen on another page
    picker = app.selectbox(key="_picker_Strategy")
    assert not [o for o in picker.options if "backtest" in o]
    assert picker.value == populated.hold_id


def test_prompt_lab_with_only_backtest_runs_says_to_create_a_strategy(app_db: Path) -> None:
    add_batch(app_db, runs=1)
    app = open_page("prompt_lab")
    assert not app.selectbox
    assert "backtest runs are not edited here" in texts(app)


def test_a_batch_this_app_still_runs_is_not_deleted(app_db: Path) -> None:
    from strategy_agent.errors import StrategyAgentError
    from strategy_agent.runner import StrategyRunner
    from strategy_agent.views.backtest_runs import delete_batch

    runs = add_batch(app_db, status="running")
    runner = StrategyRunner(app_db)
    with SqliteStore(app_db) as store:
        try:
            delete_batch(store, runner, BATCH, running_here=True)
            raise AssertionError("a running batch was deleted")
        except StrategyAgentError as refused:
            assert "still running: stop it on the Backtest page first" in str(refused)
        assert {row.id for row in store.list_strategies()} == set(runs)
        assert delete_batch(store, runner, BATCH, running_here=False) == 3
        assert store.list_strategies() == []
