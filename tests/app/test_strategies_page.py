"""Strategies page: the create form validates everything, controls change stored status."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import Populated, open_page, texts
from tests.fakes.gated_policy import wait_for


def _stored(db: Path) -> list:
    with SqliteStore(db) as store:
        return store.list_strategies()


def _open_form(app: AppTest) -> AppTest:
    app.button(key="open_form").click().run()
    assert not app.exception
    return app


def test_form_rejects_bad_input_next_to_fields_and_saves_nothing(app_db: Path) -> None:
    app = _open_form(open_page("strategies"))
    app.text_input(key="form.trading.strategy_name").set_value("")
    app.multiselect(key="form.trading.symbols").set_value([])
    app.toggle(key="form.trading.allow_short").set_value(True)
    app.button(key="form_submit").click().run()
    errors = [e.value for e in app.error]
    assert any("at least one" in e for e in errors)  # symbols
    assert any("margin or swap" in e for e in errors)  # shorting on spot
    assert any("field(s) need attention" in e for e in errors)
    assert _stored(app_db) == []


def test_form_saves_good_input(app_db: Path) -> None:
    app = _open_form(open_page("strategies"))
    app.text_input(key="form.trading.strategy_name").set_value("My BTC trend")
    app.multiselect(key="form.trading.symbols").set_value(["BTC/USDT", "SOL/USDT"])
    app.number_input(key="form.trading.max_position_pct").set_value(25.0)
    app.button(key="form_submit").click().run()
    assert not app.exception
    [row] = _stored(app_db)
    assert row.name == "My BTC trend"
    assert row.status == "created"
    assert row.request.trading.symbols == ["BTC/USDT", "SOL/USDT"]
    assert row.request.trading.max_position_pct == 0.25
    assert "Created **My BTC trend**" in texts(app)
    assert "My BTC trend" in texts(app)  # its card


def test_live_mode_needs_typed_confirmation(app_db: Path) -> None:
    app = _open_form(open_page("strategies"))
    app.radio(key="form.exchange.trading_mode").set_value("live").run()
    app.button(key="form_submit").click().run()
    assert any("type LIVE" in e.value for e in app.error)
    assert _stored(app_db) == []


def test_llm_provider_shows_key_fields_and_requires_a_prompt(app_db: Path) -> None:
    app = _open_form(open_page("strategies"))
    app.selectbox(key="form.llm.provider").set_value("openai").run()
    app.text_input(key="form.llm.model_id").set_value("gpt-4o-mini")
    app.text_input(key="form.llm.session_key").set_value("sk-test-session-key")
    app.button(key="form_submit").click().run()
    assert any("needs a strategy prompt" in e.value for e in app.error)
    app.text_area(key="form.trading.custom_prompt").set_value("Buy BTC dips under RSI 30.")
    app.button(key="form_submit").click().run()
    [row] = _stored(app_db)
    assert row.request.llm.model_id == "gpt-4o-mini"
    assert "sk-test-session-key" not in app_db.read_bytes().decode("latin-1")


def _status(db: Path, sid: str) -> str:
    with SqliteStore(db) as store:
        return store.get_strategy(sid).status


def test_start_pause_stop_change_the_stored_status(populated: Populated) -> None:
    sid = populated.trend_id
    app = open_page("strategies")
    assert "Pause** keeps its positions" in texts(app)  # Pause and Stop, in a trader's words
    app.button(key=f"start_{sid}").click().run()
    assert _status(populated.db, sid) == "running"
    assert app.button(key=f"del_{sid}").disabled  # never delete under a running worker
    app.button(key=f"pause_{sid}").click().run()
    wait_for(lambda: _status(populated.db, sid) == "paused")
    app.button(key=f"start_{sid}").click().run()
    app.button(key=f"stop_{sid}").click().run()
    assert _status(populated.db, sid) == "running"  # Stop asks first
    assert "cannot be started again" in texts(app)
    app.button(key=f"confirm_stop_{sid}").click().run()
    wait_for(lambda: _status(populated.db, sid) == "stopped")
    app.run()
    assert "Duplicate it to reuse its settings" in texts(app)
    assert not [b for b in app.button if b.key in {f"start_{sid}", f"step_{sid}"}]


def test_stop_and_close_positions_flattens_the_book(populated: Populated) -> None:
    from strategy_agent.factory import open_runtime

    sid = populated.hold_id  # holds BTC and ETH
    with SqliteStore(populated.db) as store:
        before = store.cycle_count(sid)
    app = open_page("strategies")
    app.button(key=f"stop_{sid}").click().run()
    app.button(key=f"confirm_stop_close_{sid}").click().run()
    assert not app.exception
    wait_for(lambda: _status(populated.db, sid) == "stopped")
    with SqliteStore(populated.db) as store:
        assert store.cycle_count(sid) == before + 1
        positions = open_runtime(store, sid).ledger.positions.values()
        assert not [p for p in positions if p.quantity]


def test_auto_run_adds_cycles_in_the_background(populated: Populated) -> None:
    sid = populated.hold_id
    with SqliteStore(populated.db) as store:
        before = store.cycle_count(sid)
    app = open_page("strategies")
    app.button(key=f"start_{sid}").click().run()
    deadline = time.time() + 20
    while time.time() < deadline:
        with SqliteStore(populated.db) as store:
            if store.cycle_count(sid) >= before + 2:
                break
        time.sleep(0.05)
    app.button(key=f"pause_{sid}").click().run()
    with SqliteStore(populated.db) as store:
        assert store.cycle_count(sid) >= before + 2


def test_step_runs_one_cycle_and_says_what_it_did(populated: Populated) -> None:
    sid = populated.hold_id
    with SqliteStore(populated.db) as store:
        before = store.cycle_count(sid)
    app = open_page("strategies")
    app.button(key=f"step_{sid}").click().run()
    with SqliteStore(populated.db) as store:
        assert store.cycle_count(sid) == before + 1
    assert f"Cycle {before + 1} of {sid}" in texts(app) and "It is paused" in texts(app)


def test_duplicate_and_delete_with_confirmation(populated: Populated) -> None:
    sid = populated.hold_id
    app = open_page("strategies")
    app.button(key=f"dup_{sid}").click().run()
    names = sorted(row.name for row in _stored(populated.db))
    assert names == ["Hold", "Hold (copy)", "Trend"]
    copy_id = next(r.id for r in _stored(populated.db) if r.name == "Hold (copy)")
    app.button(key=f"del_{copy_id}").click().run()
    assert len(_stored(populated.db)) == 3  # asked, not deleted yet
    assert "cannot be undone" in texts(app)
    app.button(key=f"confirm_del_{copy_id}").click().run()
    assert sorted(row.name for row in _stored(populated.db)) == ["Hold", "Trend"]


def test_cards_show_status_mode_model_and_equity(populated: Populated) -> None:
    app = open_page("strategies")
    page = texts(app)
    assert "builtin/ema_crossover" in page and "builtin/buy_and_hold" in page
    assert "paper" in page
    equity = [m for m in app.metric if m.label == "Equity (USDT)"]
    assert len(equity) == 2
    assert all(m.value not in {"", "—"} for m in equity)
