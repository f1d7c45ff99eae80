"""An LLM outage on the pages: the Strategies card and the Decisions page say it, then clear.

The strategy runs through the fake OpenAI-compatible server, which is stopped
after 2 cycles (every cycle then falls back to noop) and brought back later.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.factory import StrategyRuntime
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import open_page, texts
from tests.test_llm_outage import Outage, llm_request, runtime_of


@pytest.fixture
def outage() -> Iterator[Outage]:
    llm = Outage()
    try:
        yield llm
    finally:
        llm.server.stop()


def _steps(store: SqliteStore, rt: StrategyRuntime, cycles: int) -> None:
    for _ in range(cycles):
        assert rt.step().ok
    store.set_status(rt.strategy_id, "paused", None, int(time.time() * 1000))


def test_card_shows_fallbacks_and_alert_then_clears_when_the_llm_is_back(
    app_db: Path, outage: Outage
) -> None:
    with SqliteStore(app_db) as store:
        sid = store.create_strategy(llm_request(outage.api_base), int(time.time() * 1000))
        rt = runtime_of(store, sid)
        _steps(store, rt, 2)
        outage.stop()
        _steps(store, rt, 4)  # cycles 3..6 fall back; the 3rd in a row (cycle 5) alerts

        page = texts(open_page("strategies"))
        assert "**LLM unreachable**: 4 of the last 6 cycles fell back to noop, all in a row" in page
        assert "could not be reached" in page  # the reason
        assert f"API base `{outage.api_base}`" in page  # where it tried
        assert "Alert at cycle #5: 3 cycles in a row fell back (#3 to #5)" in page
        assert "1 strategy is trading on the fallback rule" in page
        app = open_page("strategies")
        assert any("LLM unreachable" in w.value for w in app.warning)

        outage.restart()
        _steps(store, rt, 1)  # cycle 7 answers
        app = open_page("strategies")
        page = texts(app)
        assert "**LLM answering again since cycle #7**: 4 of the last 7 cycles fell back" in page
        assert not any("fell back" in w.value for w in app.warning)  # no longer amber
        assert "trading on the fallback rule" not in page

        _steps(store, rt, 9)  # cycles 7..16: the last 10 hold no fallback
        page = texts(open_page("strategies"))
        assert "fell back" not in page and "LLM unreachable" not in page
        assert "Alert at cycle" not in page


def test_decisions_page_shows_the_ongoing_outage_and_its_alert(
    app_db: Path, outage: Outage
) -> None:
    with SqliteStore(app_db) as store:
        sid = store.create_strategy(llm_request(outage.api_base), int(time.time() * 1000))
        rt = runtime_of(store, sid)
        _steps(store, rt, 1)
        outage.stop()
        _steps(store, rt, 3)
    app = open_page("decisions", selected_strategy=sid)
    warnings = [w.value for w in app.warning]
    assert any(
        "LLM unreachable" in w and "the last 3 cycles fell back to noop" in w for w in warnings
    )
    assert any("could not be reached" in w for w in warnings)
    alerts = [e for e in app.expander if e.label.startswith("Alerts")]
    assert len(alerts) == 1 and alerts[0].label == "Alerts (1)"
    assert "Alert at cycle #4: 3 cycles in a row fell back (#2 to #4)" in texts(app)
