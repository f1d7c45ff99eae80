"""A small real-engine history shared by the view tests (each test gets a copy)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import Populated, request, run_cycles


@pytest.fixture(scope="session")
def history_template(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    db = tmp_path_factory.mktemp("views") / "template.db"
    with SqliteStore(db) as store:
        now = int(time.time() * 1000)
        trend_id = store.create_strategy(request("Trend", "ema_crossover"), now)
        hold_id = store.create_strategy(
            request("Hold", "buy_and_hold", ["BTC/USDT", "ETH/USDT"]), now + 1
        )
    run_cycles(db, trend_id, 150)
    run_cycles(db, hold_id, 40)
    return Populated(db, trend_id, hold_id)


@pytest.fixture
def history(tmp_path: Path, history_template: Populated) -> Populated:
    db = tmp_path / "history.db"
    shutil.copy(history_template.db, db)
    return Populated(db, history_template.trend_id, history_template.hold_id)


@pytest.fixture
def store(history: Populated) -> Iterator[SqliteStore]:
    with SqliteStore(history.db) as opened:
        yield opened
