"""The app runtime: database path from the environment, one runner, resume on start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st

from strategy_agent import ui_runtime
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import request


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_db_path_default_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ui_runtime.DB_ENV, raising=False)
    assert ui_runtime.db_path() == Path("data/strategy_agent.db")
    monkeypatch.setenv(ui_runtime.DB_ENV, str(tmp_path / "x.db"))
    assert ui_runtime.db_path() == tmp_path / "x.db"


def test_step_delay_must_be_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ui_runtime.DELAY_ENV, "0.25")
    assert ui_runtime.step_delay_s() == 0.25
    monkeypatch.setenv(ui_runtime.DELAY_ENV, "fast")
    with pytest.raises(ValueError, match="number of seconds"):
        ui_runtime.step_delay_s()


def test_one_runner_that_resumes_running_strategies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = tmp_path / "resume.db"
    with SqliteStore(db) as store:
        running = store.create_strategy(request("Was running", "noop"), 1)
        paused = store.create_strategy(request("Was paused", "noop"), 2)
        store.set_status(running, "running", None, 3)
        store.set_status(paused, "paused", None, 3)
    monkeypatch.setenv(ui_runtime.DB_ENV, str(db))
    monkeypatch.setenv(ui_runtime.DELAY_ENV, "0.01")
    runtime = ui_runtime.get_runtime()
    assert ui_runtime.get_runtime() is runtime  # cached: one per process
    assert runtime.resumed == [running]
    assert runtime.runner.is_running(running) and not runtime.runner.is_running(paused)
    deadline = time.time() + 10
    with SqliteStore(db) as store:
        while store.cycle_count(running) < 2 and time.time() < deadline:
            time.sleep(0.02)
        assert store.cycle_count(running) >= 2
    st.cache_resource.clear()  # releasing the resource stops the threads...
    assert not runtime.runner.is_running(running)
    with SqliteStore(db) as store:
        assert store.get_strategy(running).status == "running"  # ...and keeps them resumable


def test_open_store_closes_after_use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ui_runtime.DB_ENV, str(tmp_path / "s.db"))
    with ui_runtime.open_store() as store:
        assert store.list_strategies() == []
    with pytest.raises(Exception, match="closed"):
        store.list_strategies()


def test_pages_use_the_runtime_the_process_started_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = tmp_path / "process.db"
    with SqliteStore(db) as store:
        running = store.create_strategy(request("Was running", "noop"), 1)
        store.set_status(running, "running", None, 2)
    monkeypatch.setenv(ui_runtime.DB_ENV, str(db))
    monkeypatch.setenv(ui_runtime.DELAY_ENV, "0.01")
    runtime = ui_runtime.start_process_runtime()
    try:
        assert runtime.resumed == [running]  # before any page ran
        assert ui_runtime.get_runtime() is runtime
        assert ui_runtime.get_runner() is runtime.runner
    finally:
        ui_runtime.stop_process_runtime()
    assert not runtime.runner.is_running(running)
    assert ui_runtime.get_runtime() is not runtime  # back to the per-server cache
