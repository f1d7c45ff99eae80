"""A strategy trading real money is marked LIVE on every page: a red badge on its card, in the
Portfolio and Decisions headers, and on its Leaderboard row; paper strategies are not."""

from __future__ import annotations

import time
from typing import Any

from streamlit.testing.v1 import AppTest

from strategy_agent.models import ExchangeConfig
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import Populated, open_page, texts

BADGE = ":red-badge[:material/warning: LIVE · real money]"


def make_live(populated: Populated) -> None:
    """The holding strategy's stored request now says trading_mode live (the pages only read)."""
    with SqliteStore(populated.db) as store:
        request = store.get_strategy(populated.hold_id).request
        live = ExchangeConfig(exchange_id="binance", trading_mode="live")
        store.update_request(
            populated.hold_id,
            request.model_copy(update={"exchange": live}),
            int(time.time() * 1000),
        )


def test_the_card_of_a_live_strategy_has_a_red_live_badge(populated: Populated) -> None:
    make_live(populated)
    app = open_page("strategies")
    cards = {
        key: texts_of(app, key)
        for key in (f"card_{populated.hold_id}", f"card_{populated.trend_id}")
    }
    assert BADGE in cards[f"card_{populated.hold_id}"]
    assert "LIVE" not in cards[f"card_{populated.trend_id}"]


def texts_of(app: AppTest, key: str) -> str:
    """The markdown inside the container whose key is ``key`` (a strategy card)."""
    found: list[str] = []

    def walk(node: Any, inside: bool) -> None:
        block_id = str(getattr(getattr(node, "proto", None), "id", "") or "")
        inside = inside or block_id.endswith(f"-{key}")
        if inside and type(node).__name__ == "Markdown":
            found.append(str(node.value))
        for child in getattr(node, "children", {}).values():
            walk(child, inside)

    walk(app._tree, False)
    assert found, f"no container {key}"
    return "\n".join(found)


def test_portfolio_and_decisions_headers_mark_a_live_strategy(populated: Populated) -> None:
    make_live(populated)
    for page in ("portfolio", "decisions"):
        live = open_page(page, selected_strategy=populated.hold_id)
        assert BADGE in texts(live), page
        paper = open_page(page, selected_strategy=populated.trend_id)
        assert "LIVE" not in texts(paper), page


def test_the_leaderboard_row_of_a_live_strategy_says_live(populated: Populated) -> None:
    make_live(populated)
    app = open_page("leaderboard")
    names = {str(name) for df in app.dataframe for name in df.value.get("Strategy", [])}
    assert "🔴 LIVE · Hold" in names
    assert "Trend" in names
