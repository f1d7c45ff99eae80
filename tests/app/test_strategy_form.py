"""New strategy form: what is saved is what was typed, or nothing, with the reason by the field."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.helpers import open_form, stored_strategies, submit_form


def _errors(app: AppTest) -> list[str]:
    return [str(e.value) for e in app.error]


def test_negative_capital_blocks_create_then_the_fixed_value_is_saved(app_db: Path) -> None:
    app = open_form()
    app.number_input(key="form.trading.initial_capital").set_value(-5_000.0)
    submit_form(app)
    assert "Initial capital must be more than 0 USDT (you typed -5,000 USDT)." in _errors(app)
    assert stored_strategies(app_db) == []
    app.number_input(key="form.trading.initial_capital").set_value(5_000.0).run()
    assert not any("Initial capital" in e for e in _errors(app))  # gone once fixed
    submit_form(app)
    [row] = stored_strategies(app_db)
    assert row.request.trading.initial_capital == 5_000.0


def test_a_large_capital_is_stored_as_typed(app_db: Path) -> None:
    app = open_form()
    app.number_input(key="form.trading.initial_capital").set_value(5_000_000_000.0)
    submit_form(app)
    [row] = stored_strategies(app_db)
    assert row.request.trading.initial_capital == 5_000_000_000.0


def test_leverage_over_the_limit_blocks_create_with_the_reason(app_db: Path) -> None:
    app = open_form()
    app.selectbox(key="form.exchange.market_type").set_value("swap").run()
    app.number_input(key="form.trading.max_leverage").set_value(1_000.0)
    submit_form(app)
    assert "Max leverage can be at most 125x (you typed 1,000x)." in _errors(app)
    assert stored_strategies(app_db) == []


def test_a_changed_field_is_checked_before_create(app_db: Path) -> None:
    app = open_form()
    app.number_input(key="form.trading.max_positions").set_value(0).run()
    assert any("Max open positions must be at least 1" in e for e in _errors(app))
    assert not any("need attention" in e for e in _errors(app))  # the summary waits for Create
    assert stored_strategies(app_db) == []
