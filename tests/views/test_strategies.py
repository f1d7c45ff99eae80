"""Strategies queries and actions: cards, options, duplicate, delete, choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.runner import StrategyRunner
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import strategies as views
from tests.app.helpers import Populated, request


def test_cards_newest_first_with_sparklines(store: SqliteStore, history: Populated) -> None:
    cards = views.strategy_cards(store, running={history.trend_id})
    assert [c.strategy_id for c in cards] == [history.hold_id, history.trend_id]
    hold, trend = cards
    assert hold.model == "builtin/buy_and_hold" and hold.mode == "paper"
    assert hold.symbols == ["BTC/USDT", "ETH/USDT"] and hold.cycles == 40
    assert 2 <= len(trend.sparkline) <= views.SPARKLINE_POINTS
    latest = store.latest_equity(history.trend_id)
    assert latest is not None and trend.sparkline[-1] == latest.equity
    assert trend.running and not hold.running
    assert trend.pnl_pct == pytest.approx((latest.equity / 10_000 - 1) * 100)


def test_options_are_newest_first(store: SqliteStore, history: Populated) -> None:
    options = views.strategy_options(store)
    assert [sid for sid, _ in options] == [history.hold_id, history.trend_id]
    assert options[0][1] == f"Hold · paused · {history.hold_id}"


def test_duplicate_copies_the_config_not_the_history(
    store: SqliteStore, history: Populated
) -> None:
    copy_id = views.duplicate_strategy(store, history.trend_id)
    original = store.get_strategy(history.trend_id)
    copy = store.get_strategy(copy_id)
    assert copy.name == "Trend (copy)" and copy.status == "created"
    assert copy.request.llm == original.request.llm
    assert copy.request.trading.symbols == original.request.trading.symbols
    assert store.cycle_count(copy_id) == 0


def test_create_keeps_a_typed_key_in_the_runner_only(tmp_path: Path) -> None:
    from pydantic import SecretStr

    db = tmp_path / "k.db"
    runner = StrategyRunner(db)
    with SqliteStore(db) as store:
        sid = views.create_strategy(store, runner, request("Keyed", "noop"), SecretStr("sk-x1"))
    assert runner._key(sid) == SecretStr("sk-x1")
    assert b"sk-x1" not in db.read_bytes()


def test_symbol_choices_and_builtin_models() -> None:
    assert views.symbol_choices("simulated")[:3] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert views.symbol_choices("binance") == []
    assert views.symbol_choices("binance", ["ETH/USDT", "BTC/USDT"]) == ["BTC/USDT", "ETH/USDT"]
    assert {"buy_and_hold", "ema_crossover", "rsi_reversion", "noop"} <= set(views.builtin_models())


def test_failed_cycles_are_counted_apart(store: SqliteStore, history: Populated) -> None:
    from strategy_agent.models import HistoryRecord

    last_ts = store.last_cycle_ts(history.hold_id)
    assert last_ts is not None
    failure = HistoryRecord(
        ts=last_ts + 3_600_000,
        kind="error",
        reference_id=f"{history.hold_id}-000041",
        payload={"cycle": 41, "stage": "compose", "error": "model unreachable"},
    )
    store.write_cycle(history.hold_id, [failure], [], [], None)
    hold = next(c for c in views.strategy_cards(store) if c.strategy_id == history.hold_id)
    assert (hold.cycles, hold.failed_cycles) == (41, 1)
    assert views.cycles_text(hold) == "41 cycles, 1 failed"
    trend = next(c for c in views.strategy_cards(store) if c.strategy_id == history.trend_id)
    assert views.cycles_text(trend) == "150 cycles"


def test_view_modules_read_through_the_history_package_only() -> None:
    """No SQL and no market or runtime built in ``strategy_agent/views`` (the pages' queries)."""
    import strategy_agent.views as package

    folder = Path(package.__file__).parent
    offenders = {
        f"{path.name}: {needle}"
        for path in sorted(folder.glob("*.py"))
        for needle in ("store.db", ".execute(", "build_market", "open_runtime", "SELECT ")
        if needle in path.read_text()
    }
    assert offenders == set()
