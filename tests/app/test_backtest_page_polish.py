"""Backtest page polish: a token tile that fits, the last batch's banner gone under a new
estimate, the comparison's first columns."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from streamlit.testing.v1 import AppTest

from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import request
from tests.app.test_backtest_page import _comparison, _metrics, _open, _wait_done, _window


def _panel() -> None:
    from strategy_agent.ui.backtest_panels import estimate_panel
    from strategy_agent.views.backtest import PlanSummary

    summary = PlanSummary(
        window="w", data="d", runs=2, cycles=1_728, calls=1_728, tokens=1_032_457,
        cost_usd=0.5, estimate_rows=[],
    )  # fmt: skip
    estimate_panel(summary, None)


def test_the_token_estimate_is_a_compact_number() -> None:
    app = AppTest.from_function(_panel, default_timeout=30).run()
    assert not app.exception, [e.message for e in app.exception]
    tile = next(m for m in app.metric if m.label == "Tokens (estimate)")
    assert tile.value == "~1.03M"
    assert "1,032,457" in tile.proto.help


def test_a_new_estimate_clears_the_last_batchs_banner(app_db: Path) -> None:
    with SqliteStore(app_db) as store:
        store.create_strategy(request("EMA", "ema_crossover", ["BTC/USDT"]), 1)
        store.create_strategy(request("RSI", "rsi_reversion", ["BTC/USDT"]), 2)
    app = _open()
    _window(app, date(2025, 1, 3), date(2025, 1, 6))
    app.button(key="bt_estimate").click()
    app.run()
    app.button(key="bt_run").click()
    app.run()
    _wait_done(app)
    order = list(_comparison(app).proto.column_order)
    assert order[:4] == ["#", "Config", "Return (%)", "Buy & hold (%)"]  # one sample each
    assert order.index("Notes") < min(order.index("Max drawdown (%)"), order.index("CAGR (%)"))
    assert "Return 95 % interval" not in order and "LLM tokens" not in order  # rules only
    caption = " ".join(c.value for c in app.caption)
    assert "UTC UTC" not in caption

    app.button(key="bt_estimate").click()
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    assert "Runs" in _metrics(app)  # the new estimate
    assert not [s for s in app.success if s.value.startswith("Backtest done")]
    assert _comparison(app) is not None  # the last comparison stays below
