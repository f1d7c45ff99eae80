"""Backtest page: pick configs, see the estimate, run in the background, land on the comparison."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from strategy_agent.models import UserRequest
from strategy_agent.trading_history.runs import list_runs
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.backtest_compare import COMPARISON_COLUMNS
from tests.app.helpers import APP, request, shown, texts
from tests.fakes.fake_llm_server import FakeLlmServer, varied_replies

PAGE = "app_pages/backtest.py"
KEY_ENV = "FAKE_LLM_KEY"


def _open() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=90)
    app.switch_page(PAGE)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def _metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def _window(app: AppTest, first: date, last: date) -> None:
    app.date_input(key="bt_from").set_value(first)
    app.date_input(key="bt_to").set_value(last)
    app.run()


def _wait_done(app: AppTest, timeout_s: float = 120.0) -> None:
    """Rerun (what the page's 1-s poll does in a browser) until the batch has ended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(s.value.startswith("Backtest done") for s in app.success):
            return
        assert not app.error, [e.value for e in app.error]
        time.sleep(0.3)
        app.run()
    raise AssertionError(f"the backtest did not end in {timeout_s} s: {texts(app)}")


def _comparison(app: AppTest) -> Any:
    return next(e for e in app.dataframe if "Return 95 % interval" in e.value.columns)


def test_estimate_run_with_progress_and_land_on_the_comparison(app_db: Path) -> None:
    with SqliteStore(app_db) as store:
        store.create_strategy(request("EMA", "ema_crossover", ["BTC/USDT", "ETH/USDT"]), 1)
        store.create_strategy(request("RSI", "rsi_reversion", ["BTC/USDT", "ETH/USDT"]), 2)
    app = _open()
    assert len(app.multiselect[0].value) == 2  # the two newest strategies, picked
    _window(app, date(2025, 1, 3), date(2025, 2, 10))
    assert not [b for b in app.button if b.label == "Run backtest"]  # not before an estimate
    app.button(key="bt_estimate").click()
    app.run()
    estimate = _metrics(app)
    # lookback 120 h: decisions from 2025-01-06 00:00 to 2025-02-10 23:00, 864 candles each
    assert estimate["Runs"] == "2" and estimate["Cycles"] == "1,728"
    assert estimate["LLM calls"] == "0" and estimate["Dollars (estimate)"] == "$0.0000"
    assert "2025-01-06 00:00 to 2025-02-10 23:00 UTC (864 candles of 1h)" in texts(app)
    assert "Built-in rules call no LLM: this backtest costs nothing." in texts(app)
    assert "the window starts at 2025-01-06 00:00 UTC" in texts(app)

    app.button(key="bt_run").click()
    app.run()
    progress = app.get("progress")
    assert progress, "a running batch shows its progress bar"
    shown_now = _metrics(app)
    assert shown_now["Cycles done"].endswith("/ 1,728")
    assert {"Elapsed", "ETA", "Tokens", "Dollars"} <= set(shown_now)
    assert [b for b in app.button if b.label == "Stop"]

    _wait_done(app)
    table = _comparison(app)
    assert list(table.value.columns) == ["#", *COMPARISON_COLUMNS]
    cells = shown(table).set_index("Config")
    assert set(cells.index) == {"EMA", "RSI"}
    for config, row in table.value.set_index("Config").iterrows():
        notes = cells.loc[config, "Notes"]
        assert notes.startswith("one sample") and cells.loc[config, "Samples"] == "1"
        assert cells.loc[config, "Return 95 % interval"] == "one sample"
        assert ("too few trades to judge" in notes) == (row["Trades"] < 10)
        assert "in-sample" not in notes
    with SqliteStore(app_db) as store:
        runs = list_runs(store, kind="backtest")
        assert {r.status for r in runs} == {"done"} and len({r.batch_id for r in runs}) == 1
        assert all(store.cycle_count(r.strategy_id) == 864 for r in runs)
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    names = [trace["name"] for trace in figure["data"]]
    assert {names[0], names[2]} == {"EMA", "RSI"}  # each run, then its own buy-and-hold
    assert names[1].startswith("Buy & hold BTC, ETH") and names[3].startswith("Buy & hold")
    assert figure["data"][1]["line"]["dash"] == "dash"


def test_a_window_without_candles_is_refused_with_the_reason(app_db: Path) -> None:
    with SqliteStore(app_db) as store:
        store.create_strategy(request("EMA", "ema_crossover", ["BTC/USDT"]), 1)
    app = _open()
    _window(app, date(2025, 1, 2), date(2025, 1, 3))  # before a full lookback of 120 h
    app.button(key="bt_estimate").click()
    app.run()
    assert any("no 1h candle to decide on" in e.value for e in app.error)
    assert not [b for b in app.button if b.label == "Run backtest"]


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlmServer]:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    server = FakeLlmServer(auto_reply=varied_replies(), count_usage=True).start()
    try:
        yield server
    finally:
        server.stop()


def test_three_samples_of_an_in_sample_llm_config_show_intervals_and_marks(
    app_db: Path, fake_llm: FakeLlmServer
) -> None:
    llm = UserRequest.model_validate(
        {
            "llm": {
                "provider": "openai", "model_id": "fake-gpt", "api_base": fake_llm.api_base,
                "api_key_env": KEY_ENV, "temperature": 0.7, "timeout_s": 10,
                "input_cost_per_mtok": 100.0, "output_cost_per_mtok": 400.0,
                "training_cutoff": "2025-06",  # after the window: in-sample
            },
            "trading": {"strategy_name": "LLM", "symbols": ["BTC/USDT"], "lookback": 48},
        }
    )  # fmt: skip
    with SqliteStore(app_db) as store:
        rule = request("Rule", "ema_crossover", ["BTC/USDT"])
        trading = rule.trading.model_copy(update={"lookback": 48})
        store.create_strategy(rule.model_copy(update={"trading": trading}), 1)
        store.create_strategy(llm, 2)
    app = _open()
    _window(app, date(2025, 1, 3), date(2025, 1, 4))
    app.number_input(key="bt_samples").set_value(3)
    app.run()
    app.button(key="bt_estimate").click()
    app.run()
    estimate = _metrics(app)
    assert not app.error, [e.value for e in app.error]
    assert estimate["Runs"] == "4"  # 3 samples of the LLM, the rule once
    assert estimate["LLM calls"] == "144"  # 48 candles x 3 samples
    assert estimate["Dollars (estimate)"].startswith("$") and estimate["Tokens (estimate)"] != "~0"
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 1 and warnings[0].startswith("LLM: in-sample for this model")
    app.button(key="bt_run").click()
    app.run()
    _wait_done(app)
    cells = shown(_comparison(app)).set_index("Config")
    assert cells.loc["LLM", "Samples"] == "3"
    assert cells.loc["LLM", "Return 95 % interval"].startswith("[")
    assert cells.loc["LLM", "Sharpe 95 % interval"].startswith("[")  # 48 bars: annualised
    assert cells.loc["LLM", "Notes"].startswith("3 samples")  # the rule has no interval
    assert "in-sample for this model" in cells.loc["LLM", "Notes"]
    assert cells.loc["Rule", "Notes"].startswith("one sample")
    assert "in-sample" not in cells.loc["Rule", "Notes"]
    assert cells.loc["Rule", "LLM tokens"] == "—" and cells.loc["LLM", "LLM tokens"] != "—"
    runs = shown(next(e for e in app.dataframe if "Sample" in e.value.columns))
    assert sorted(runs["Sample"]) == ["1 of 3", "2 of 3", "3 of 3", "one sample"]


def test_a_key_typed_for_a_strategy_this_session_runs_its_backtest(
    app_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import SecretStr

    from strategy_agent.ui_runtime import get_runner

    monkeypatch.delenv(KEY_ENV, raising=False)  # no key but the one typed in the app
    server = FakeLlmServer(auto_reply=varied_replies()).start()
    try:
        llm = UserRequest.model_validate(
            {
                "llm": {
                    "provider": "openai", "model_id": "fake-gpt", "api_base": server.api_base,
                    "api_key_env": KEY_ENV, "timeout_s": 10,
                },
                "trading": {"strategy_name": "Keyed", "symbols": ["BTC/USDT"], "lookback": 48},
            }
        )  # fmt: skip
        with SqliteStore(app_db) as store:
            sid = store.create_strategy(llm, 1)
        app = _open()
        get_runner().set_session_key(sid, SecretStr("sk-typed-in-app"))
        _window(app, date(2025, 1, 3), date(2025, 1, 3))
        app.button(key="bt_estimate").click()
        app.run()
        assert not app.error, [e.value for e in app.error]
        app.button(key="bt_run").click()
        app.run()
        _wait_done(app)
        assert server.requests  # the runs asked the model with the typed key (before: "no-key")
        assert {r.headers.get("authorization") for r in server.requests} == {
            "Bearer sk-typed-in-app"
        }
        with SqliteStore(app_db) as store:  # and the key was stored nowhere
            dumped = "\n".join(
                json.dumps(r.payload) for s in store.list_strategies() for r in
                store.records(s.id, limit=10_000)
            )  # fmt: skip
            configs = "\n".join(str(s.request.model_dump()) for s in store.list_strategies())
        assert "sk-typed-in-app" not in dumped + configs
    finally:
        server.stop()
