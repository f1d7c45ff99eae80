"""Prompt lab: run one cycle (or a dry run) and see the plan and its guardrail outcomes."""

from __future__ import annotations

from strategy_agent.decision.prompt_library import load_template
from strategy_agent.trading_history.prompt_versions import list_prompt_versions
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import Populated, open_page, texts


def _cycles(populated: Populated, sid: str) -> int:
    with SqliteStore(populated.db) as store:
        return store.cycle_count(sid)


def _lab(populated: Populated, sid: str):
    return open_page("prompt_lab", selected_strategy=sid)


def test_run_one_cycle_shows_plan_and_guardrail_outcomes(populated: Populated) -> None:
    sid = populated.hold_id
    before = _cycles(populated, sid)
    app = _lab(populated, sid)
    assert "No cycle yet" in texts(app)
    app.button(key="lab_run").click().run()
    assert not app.exception
    assert _cycles(populated, sid) == before + 1
    page = texts(app)
    assert "Plan" in page and "Guardrails" in page
    frames = [df.value for df in app.dataframe]
    plan = next(f for f in frames if "Target qty" in f.columns)
    outcomes = next(f for f in frames if "Outcome" in f.columns)
    assert set(plan["Symbol"]) == {"BTC/USDT", "ETH/USDT"}
    assert set(outcomes["Outcome"]) <= {"accepted", "clamped", "rejected"}
    assert len(outcomes) == len(plan)
    assert any(m.label == "Cycle" and m.value == str(before + 1) for m in app.metric)


def test_dry_run_composes_without_trading_or_recording(populated: Populated) -> None:
    sid = populated.trend_id
    before = _cycles(populated, sid)
    app = _lab(populated, sid)
    app.toggle(key="lab_dry_run").set_value(True).run()
    app.button(key="lab_run").click().run()
    assert not app.exception
    assert _cycles(populated, sid) == before
    assert "Dry run: nothing was executed." in texts(app)
    assert any(m.label == "Cycle" and m.value == "dry run" for m in app.metric)


def test_save_prompt_makes_versions_with_a_diff(populated: Populated) -> None:
    sid = populated.trend_id
    app = _lab(populated, sid)
    editor = f"lab_prompt_{sid}"
    app.text_area(key=editor).set_value("Buy BTC when RSI < 30.")
    app.button(key="lab_save").click().run()
    app.text_area(key=editor).set_value("Buy BTC when RSI < 25.\nSell above 70.")
    app.button(key="lab_save").click().run()
    assert not app.exception
    with SqliteStore(populated.db) as store:
        versions = list_prompt_versions(store, sid)
        trading = store.get_strategy(sid).request.trading
    assert [v.version for v in versions] == [2, 1]
    assert trading.custom_prompt == "Buy BTC when RSI < 25.\nSell above 70."
    assert "version 2" in texts(app)
    diff = next(c.value for c in app.code if c.language == "diff")
    assert "-Buy BTC when RSI < 30." in diff and "+Sell above 70." in diff


def test_saved_versions_are_the_strategys_own_not_its_names(populated: Populated) -> None:
    with SqliteStore(populated.db) as store:
        twin = store.create_strategy(store.get_strategy(populated.trend_id).request, 5)
        assert store.get_strategy(twin).name == "Trend"
    app = _lab(populated, populated.trend_id)
    app.text_area(key=f"lab_prompt_{populated.trend_id}").set_value("Only the trend's prompt.")
    app.button(key="lab_save").click().run()
    twin_page = _lab(populated, twin)
    assert "No saved version" in texts(twin_page)
    assert not [c for c in twin_page.code if c.language == "diff"]
    with SqliteStore(populated.db) as store:
        assert list_prompt_versions(store, twin) == []


def test_a_cycle_after_saving_names_the_prompt_version_it_used(populated: Populated) -> None:
    sid = populated.hold_id
    app = _lab(populated, sid)
    app.text_area(key=f"lab_prompt_{sid}").set_value("Hold BTC and ETH.")
    app.button(key="lab_save").click().run()
    app.button(key="lab_run").click().run()
    assert not app.exception
    assert "prompt **v1** `" in texts(app)
    with SqliteStore(populated.db) as store:
        (record,) = store.records(sid, kind="compose", limit=1)
    assert record.payload["prompt_version"] == 1


def test_use_template_fills_the_editor(populated: Populated) -> None:
    sid = populated.trend_id
    app = _lab(populated, sid)
    app.selectbox(key="lab_template").set_value("balanced_trend")
    app.button(key="lab_use_template").click().run()
    assert app.text_area(key=f"lab_prompt_{sid}").value == load_template("balanced_trend")
    assert "Unsaved changes" in texts(app)


def test_run_is_disabled_while_the_strategy_auto_runs(populated: Populated) -> None:
    from strategy_agent.ui_runtime import get_runner

    sid = populated.hold_id
    app = _lab(populated, sid)
    get_runner().start(sid)
    try:
        app.run()
        assert app.button(key="lab_run").disabled
        assert "auto-running" in texts(app)
    finally:
        get_runner().pause(sid)
