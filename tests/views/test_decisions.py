"""Decisions queries: the filtered, paged timeline and one cycle rebuilt from its records."""

from __future__ import annotations

from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.decisions import DecisionFilters, cycle_detail, rationale, timeline
from tests.app.helpers import Populated


def test_pages_cover_every_cycle_once_newest_first(store: SqliteStore, history: Populated) -> None:
    seen: list[int] = []
    first = timeline(store, history.trend_id, DecisionFilters(), page=1, page_size=40)
    assert first.total == 150 and first.pages == 4
    for page in range(1, first.pages + 1):
        seen += list(timeline(store, history.trend_id, DecisionFilters(), page, 40).rows["Cycle"])
    assert seen == list(range(150, 0, -1))


def test_page_number_is_clamped(store: SqliteStore, history: Populated) -> None:
    assert timeline(store, history.trend_id, DecisionFilters(), page=99).page == 6
    assert timeline(store, history.trend_id, DecisionFilters(), page=-3).page == 1


def test_filters_by_symbol_and_action(store: SqliteStore, history: Populated) -> None:
    buys = timeline(store, history.trend_id, DecisionFilters(symbol="BTC/USDT", action="buy"))
    assert 0 < buys.total < 150
    assert all("buy BTC/USDT" in actions for actions in buys.rows["Actions"])
    none = timeline(store, history.hold_id, DecisionFilters(action="sell"))
    assert none.total == 0 and none.rows.empty


def test_rows_carry_the_plan_rationale(store: SqliteStore, history: Populated) -> None:
    rows = timeline(store, history.trend_id, DecisionFilters(), page_size=5).rows
    assert all(text.startswith(("BTC: ", "ETH: ", "SOL: ")) for text in rows["Rationale"])
    assert "built-in rule" not in " ".join(rows["Rationale"])


def test_rationale_prefers_notes_and_acted_items() -> None:
    items = [
        {"instrument": {"symbol": "BTC/USDT"}, "action": "noop", "rationale": "hold"},
        {"instrument": "ETH/USDT", "action": "buy", "rationale": "breakout"},
    ]
    assert rationale("Risk on.", items) == "Risk on. · ETH: breakout"
    assert rationale("built-in rule x", items[:1]) == "BTC: hold"
    assert rationale(None, [], limit=10) == ""
    assert len(rationale("n" * 500, items, limit=50)) == 50


def test_cycle_detail_rebuilds_every_checkpoint(store: SqliteStore, history: Populated) -> None:
    compose_id = f"{history.hold_id}-000001"
    detail = cycle_detail(store, history.hold_id, compose_id)
    assert detail is not None
    assert detail.cycle == 1 and detail.ok
    assert set(detail.features) == {"BTC/USDT", "ETH/USDT"}
    assert [i["instrument"]["symbol"] for i in detail.instructions] == ["BTC/USDT", "ETH/USDT"]
    assert {e["status"] for e in detail.fills} == {"filled"}
    assert len(detail.outcomes) == len(detail.plan_items) == 2
    assert cycle_detail(store, history.hold_id, "nope") is None
