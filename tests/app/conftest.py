"""AppTest fixtures: a temp database per test, a fresh runner, and a database with history.

``populated_template`` runs the real engine once per test session (built-in
rules on the simulated market) and each test gets its own copy of the file.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from tests.app.helpers import HOLD_CYCLES, TREND_CYCLES, Populated, request, run_cycles


@pytest.fixture(scope="session")
def populated_template(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    from strategy_agent.trading_history.store import SqliteStore

    db = tmp_path_factory.mktemp("populated") / "template.db"
    with SqliteStore(db) as store:
        now = int(time.time() * 1000)
        trend_id = store.create_strategy(request("Trend", "ema_crossover"), now)
        hold_id = store.create_strategy(
            request("Hold", "buy_and_hold", ["BTC/USDT", "ETH/USDT"]), now + 1
        )
    run_cycles(db, trend_id, TREND_CYCLES)
    run_cycles(db, hold_id, HOLD_CYCLES)
    return Populated(db, trend_id, hold_id)


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty database for the app, and a runner created fresh for this test."""
    db = tmp_path / "app.db"
    monkeypatch.setenv("STRATEGY_AGENT_DB", str(db))
    monkeypatch.setenv("STRATEGY_AGENT_STEP_DELAY_S", "0.05")
    st.cache_resource.clear()
    yield db
    st.cache_resource.clear()  # on_release stops every runner thread


@pytest.fixture
def populated(app_db: Path, populated_template: Populated) -> Populated:
    """A copy of the populated database, at the path the app reads."""
    shutil.copy(populated_template.db, app_db)
    return Populated(app_db, populated_template.trend_id, populated_template.hold_id)
