"""New strategy form on markets: symbols checked at creation, a real exchange's markets in the
list, a working strategy created on a real exchange id, typed symbols kept without network."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from strategy_agent import wiring
from strategy_agent.factory import open_runtime
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import open_form, stored_strategies, submit_form
from tests.fakes.fake_exchange import FakeExchange


def _symbol_error(app: AppTest) -> str:
    return " ".join(str(e.value) for e in app.error)


def _symbols(app: AppTest, symbols: list[str]) -> None:
    app.session_state["form.trading.symbols"] = symbols
    app.run()


def test_the_simulated_market_refuses_foo_and_a_lower_case_pair_with_a_suggestion(
    app_db: Path,
) -> None:
    app = open_form()
    _symbols(app, ["FOO/USDT", "btcusdt"])
    submit_form(app)
    errors = _symbol_error(app)
    assert "'FOO/USDT' is not a market on the simulated market" in errors
    assert "'btcusdt' is not a symbol in ccxt's notation" in errors
    assert "did you mean 'BTC/USDT'" in errors
    assert stored_strategies(app_db) == []


def test_a_real_exchange_lists_its_markets_checks_symbols_and_creates_a_working_strategy(
    app_db: Path, fake_exchange: FakeExchange
) -> None:
    wiring._markets_cache.clear()
    app = open_form()
    app.selectbox(key="form.exchange.exchange_id").set_value("binance").run()
    app.session_state["form.exchange.api_url"] = fake_exchange.base_url  # the fake's address
    app.button(key="test_exch").click().run()
    assert not app.exception
    options = app.multiselect(key="form.trading.symbols").options
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT"} <= set(options)
    assert "BTC/USD:BTC" not in options  # inverse: not tradable

    _symbols(app, ["BTC/USDX"])
    submit_form(app)
    assert "'BTC/USDX' is not a market on binance; did you mean 'BTC/USDT'" in _symbol_error(app)
    assert stored_strategies(app_db) == []

    _symbols(app, ["BTC/USDT", "ETH/USDT"])
    submit_form(app)
    [row] = stored_strategies(app_db)
    assert row.request.exchange.exchange_id == "binance"
    assert row.request.trading.symbols == ["BTC/USDT", "ETH/USDT"]
    with SqliteStore(app_db) as store:  # and it runs on the exchange's live data
        report = open_runtime(store, row.id, clock=fake_exchange.clock).step()
    assert report.ok, report.error
    assert {r.price_source for r in report.executions if r.status == "filled"} <= {"ask", "bid"}


def test_without_network_the_typed_symbols_are_kept_and_the_form_says_they_are_unchecked(
    app_db: Path,
) -> None:
    wiring._markets_cache.clear()
    app = open_form()
    app.selectbox(key="form.exchange.exchange_id").set_value("okx").run()
    _symbols(app, ["BTC/USDT"])
    submit_form(app)
    [row] = stored_strategies(app_db)
    assert row.request.exchange.exchange_id == "okx"
    notes = " ".join(str(s.value) for s in app.success) + " ".join(str(i.value) for i in app.info)
    notes += " ".join(str(m.value) for m in app.markdown)
    assert "okx's markets could not be loaded" in notes
    assert "checked" in notes
