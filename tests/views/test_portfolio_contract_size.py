"""The Portfolio values positions with the contract sizes the cycles recorded, as the ledger did."""

from __future__ import annotations

import pytest

from strategy_agent.cycle_records import compose_payload
from strategy_agent.models import (
    ComposeContext,
    ComposeResult,
    Fill,
    HistoryRecord,
    PortfolioView,
    TradeDigest,
    UserRequest,
)
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.portfolio import positions_table

SYMBOL = "BTC/USDT:USDT"


def test_a_cycle_records_its_contract_sizes_other_than_1() -> None:
    context = ComposeContext(
        ts=1, compose_id="c1", strategy_id="s", features=[],
        portfolio=PortfolioView(ts=1, cash=10_000.0, total_value=10_000.0), digest=TradeDigest(ts=1),
        prompt_text="", market_snapshot={SYMBOL: 50_000.0},
        constraints={"contract_sizes": {SYMBOL: 0.01}},
    )  # fmt: skip
    result = ComposeResult(instructions=[], proposal=None)
    payload = compose_payload(1, context, result, prompt_version=None)
    assert payload["contract_sizes"] == {SYMBOL: 0.01}


def test_positions_are_valued_with_the_recorded_contract_size(store: SqliteStore) -> None:
    request = UserRequest.model_validate(
        {"exchange": {"market_type": "swap"}, "trading": {"symbols": [SYMBOL], "max_leverage": 5}}
    )
    sid = store.create_strategy(request, 1)
    compose = HistoryRecord(
        ts=10, kind="compose", reference_id=f"{sid}-000001",
        payload={"cycle": 1, "prices": {SYMBOL: 50_000.0}, "contract_sizes": {SYMBOL: 0.01}},
    )  # fmt: skip
    fill = Fill(ts=10, instruction_id="i1", symbol=SYMBOL, side="buy", quantity=10.0,
                price=50_000.0, fee=2.5)  # fmt: skip
    store.write_cycle(sid, [compose], [fill], [], None)
    row = positions_table(store, sid, request, now_ts=10).set_index("Symbol").loc[SYMBOL]
    assert row["Notional (USDT)"] == pytest.approx(10 * 0.01 * 50_000.0)  # 5,000, not 500,000
