"""Paper gateway: fill prices, fees, slippage, rejections, batch order, and the real ledger untouched."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy_agent.clock import ManualClock
from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.execution.fills import fill_from_result
from strategy_agent.execution.paper_trading import PaperExecutionGateway
from strategy_agent.models import (
    ExecutionResult,
    Fill,
    InstrumentRef,
    MarketRules,
    TradeInstruction,
)
from strategy_agent.portfolio.ledger import Ledger

BTC = "BTC/USDT"
ETH = "ETH/USDT"
NOW = 1_700_000_000_000


def order(
    side: str,
    quantity: float,
    symbol: str = BTC,
    *,
    ordinal: int = 0,
    price_mode: str = "market",
    limit_price: float | None = None,
    max_slippage_bps: float | None = None,
) -> TradeInstruction:
    return TradeInstruction(
        instruction_id=f"c1:{symbol}:{ordinal}",
        compose_id="c1",
        instrument=InstrumentRef(symbol=symbol),
        side=side,  # type: ignore[arg-type]
        quantity=quantity,
        price_mode=price_mode,  # type: ignore[arg-type]
        limit_price=limit_price,
        max_slippage_bps=max_slippage_bps,
    )


def gateway(
    ledger: Ledger, prices: dict[str, float], fee_bps: float = 10.0, slippage_bps: float = 5.0
) -> PaperExecutionGateway:
    return PaperExecutionGateway(
        ledger, prices.get, ManualClock(NOW), fee_bps=fee_bps, slippage_bps=slippage_bps
    )


class ContractSizes(MarketRulesProvider):
    """Market rules that differ only in contract size."""

    def __init__(self, sizes: dict[str, float]) -> None:
        self.sizes = sizes

    def rules_for(self, symbol: str) -> MarketRules:
        return MarketRules(symbol=symbol, qty_step=1e-8, contract_size=self.sizes[symbol])


def test_the_fee_is_charged_on_the_notional_of_contracts() -> None:
    ledger = Ledger(10_000, market_type="swap", max_leverage=3, rules=ContractSizes({BTC: 0.01}))
    [buy] = gateway(ledger, {BTC: 48_000.0}, slippage_bps=0).execute([order("buy", 10)])
    assert buy.status == "filled"
    assert buy.fee == pytest.approx(0.001 * 10 * 0.01 * 48_000)  # 4.80 on 4,800 USDT


def state(ledger: Ledger) -> tuple[Any, ...]:
    return (
        ledger.cash,
        ledger.realized_pnl,
        ledger.fees_paid,
        {s: dataclasses.astuple(p) for s, p in ledger.positions.items()},
    )


def test_market_buy_and_sell_pay_slippage_and_fees() -> None:
    ledger = Ledger(10_000, strategy_id="s1")
    paper = gateway(ledger, {BTC: 100.0})
    [buy] = paper.execute([order("buy", 2)])
    assert buy.status == "filled"
    assert buy.filled_qty == 2 and buy.requested_qty == 2
    assert buy.avg_price == pytest.approx(100.05)
    assert buy.fee == pytest.approx(0.001 * 2 * 100.05)
    assert buy.realized_pnl == 0
    assert buy.ts == NOW
    assert (buy.instruction_id, buy.compose_id, buy.symbol, buy.side) == (
        "c1:BTC/USDT:0",
        "c1",
        BTC,
        "buy",
    )

    ledger.apply(fill_from_result(buy, "s1"))
    [sell] = paper.execute([order("sell", 2)])
    assert sell.avg_price == pytest.approx(99.95)
    assert sell.fee == pytest.approx(0.001 * 2 * 99.95)
    assert sell.realized_pnl == pytest.approx((99.95 - 100.05) * 2)


def test_the_real_ledger_is_not_modified() -> None:
    ledger = Ledger(10_000, strategy_id="s1")
    before = state(ledger)
    results = gateway(ledger, {BTC: 100.0}).execute([order("buy", 1), order("buy", 1, ordinal=1)])
    assert [r.status for r in results] == ["filled", "filled"]
    assert state(ledger) == before


def test_spot_short_is_rejected_with_the_ledger_reason() -> None:
    ledger = Ledger(10_000)
    [result] = gateway(ledger, {BTC: 100.0}).execute([order("sell", 0.5)])
    assert result.status == "rejected"
    assert result.filled_qty == 0 and result.avg_price is None
    assert result.reason is not None and result.reason.startswith(
        "spot is long only: sell 0.5 BTC/USDT but hold 0"
    )


def test_unaffordable_buy_is_rejected() -> None:
    ledger = Ledger(1_000)
    [result] = gateway(ledger, {BTC: 100.0}, fee_bps=0, slippage_bps=0).execute(
        [order("buy", 10.01)]
    )
    assert result.status == "rejected"
    assert result.reason is not None and "needs 1,001.00 USDT, cash is 1,000.00" in result.reason


def test_second_instruction_sees_the_first() -> None:
    ledger = Ledger(1_000, strategy_id="s1")
    ledger.apply(Fill(ts=1, symbol=BTC, side="buy", quantity=10, price=100, fee=0))
    assert ledger.cash == 0
    paper = gateway(ledger, {BTC: 100.0, ETH: 50.0}, fee_bps=0, slippage_bps=0)

    sell_then_buy = paper.execute([order("sell", 5), order("buy", 10, ETH)])
    assert [r.status for r in sell_then_buy] == ["filled", "filled"]

    buy_then_sell = paper.execute([order("buy", 10, ETH), order("sell", 5)])
    assert [r.status for r in buy_then_sell] == ["rejected", "filled"]

    # two sells of the same holding: the second sees the first one's sale
    twice = paper.execute([order("sell", 6), order("sell", 6, ordinal=1)])
    assert [r.status for r in twice] == ["filled", "rejected"]
    assert twice[1].reason is not None and "hold 4" in twice[1].reason
    assert ledger.quantity(BTC) == 10  # still untouched


def test_margin_over_leverage_rejected_but_reducing_allowed() -> None:
    ledger = Ledger(1_000, market_type="margin", max_leverage=2, strategy_id="s1")
    ledger.apply(Fill(ts=1, symbol=BTC, side="buy", quantity=19, price=100, fee=0))
    ledger.mark({BTC: 50}, ts=2)
    paper = gateway(ledger, {BTC: 50.0})
    results = paper.execute([order("buy", 1), order("sell", 5, ordinal=1)])
    assert [r.status for r in results] == ["rejected", "filled"]
    assert results[0].reason is not None and "max_leverage" in results[0].reason


def test_no_price_rejected_and_one_result_per_instruction_in_order() -> None:
    ledger = Ledger(10_000)
    instructions = [
        order("buy", 1, "XYZ/USDT"),
        order("buy", 1, BTC),
        order("sell", 1, ETH),
        order("buy", 1, ETH, ordinal=1),
    ]
    results = gateway(ledger, {BTC: 100.0, ETH: 10.0}).execute(instructions)
    assert [r.instruction_id for r in results] == [i.instruction_id for i in instructions]
    assert [r.status for r in results] == ["rejected", "filled", "rejected", "filled"]
    assert results[0].reason is not None and results[0].reason.startswith("no price for XYZ/USDT")
    assert gateway(ledger, {}).execute([]) == []


def test_non_finite_price_counts_as_no_price() -> None:
    [result] = gateway(Ledger(1_000), {BTC: float("nan")}).execute([order("buy", 1)])
    assert result.status == "rejected" and result.reason is not None
    assert "no price for BTC/USDT" in result.reason


def test_unexpected_failure_is_an_error_result_and_the_batch_goes_on() -> None:
    def price_of(symbol: str) -> float | None:
        if symbol == ETH:
            raise RuntimeError("feed exploded")
        return 100.0

    paper = PaperExecutionGateway(Ledger(10_000), price_of, ManualClock(NOW))
    results = paper.execute([order("buy", 1, ETH), order("buy", 1, BTC)])
    assert [r.status for r in results] == ["error", "filled"]
    assert results[0].reason == "RuntimeError: feed exploded"


def test_limit_orders_fill_only_when_marketable_and_never_worse_than_the_limit() -> None:
    ledger = Ledger(10_000, market_type="margin", max_leverage=2)
    paper = gateway(ledger, {BTC: 100.0}, fee_bps=0, slippage_bps=50)
    results = paper.execute(
        [
            order("buy", 1, price_mode="limit", limit_price=99.0),
            order("buy", 1, price_mode="limit", limit_price=100.2, ordinal=1),
            order("buy", 1, price_mode="limit", limit_price=105.0, ordinal=2),
            order("sell", 1, price_mode="limit", limit_price=101.0, ordinal=3),
            order("sell", 1, price_mode="limit", limit_price=99.8, ordinal=4),
            order("buy", 1, price_mode="limit", ordinal=5),
        ]
    )
    assert [r.status for r in results] == [
        "rejected",
        "filled",
        "filled",
        "rejected",
        "filled",
        "rejected",
    ]
    assert results[0].reason is not None and results[0].reason.startswith("limit not marketable")
    assert results[1].avg_price == pytest.approx(100.2)  # capped at the limit
    assert results[2].avg_price == pytest.approx(100.5)  # slipped price, inside the limit
    assert results[3].reason is not None and results[3].reason.startswith("limit not marketable")
    assert results[4].avg_price == pytest.approx(99.8)
    assert results[5].reason is not None and "limit_price" in results[5].reason


def test_max_slippage_below_the_model_is_rejected() -> None:
    paper = gateway(Ledger(10_000), {BTC: 100.0}, slippage_bps=5)
    results = paper.execute(
        [order("buy", 1, max_slippage_bps=2), order("buy", 1, max_slippage_bps=5, ordinal=1)]
    )
    assert [r.status for r in results] == ["rejected", "filled"]
    assert results[0].reason is not None and "max_slippage_bps 2" in results[0].reason


def test_gateway_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="fee_bps"):
        gateway(Ledger(100), {}, fee_bps=-1)
    with pytest.raises(ValueError, match="slippage_bps"):
        gateway(Ledger(100), {}, slippage_bps=float("inf"))


def test_fill_from_result() -> None:
    ledger = Ledger(10_000, strategy_id="s1")
    [filled, rejected] = gateway(ledger, {BTC: 100.0}).execute(
        [order("buy", 2), order("sell", 5, ETH)]
    )
    fill = fill_from_result(filled, "s1")
    assert fill == Fill(
        ts=NOW,
        strategy_id="s1",
        compose_id="c1",
        instruction_id="c1:BTC/USDT:0",
        symbol=BTC,
        side="buy",
        quantity=2,
        price=filled.avg_price or 0.0,
        fee=filled.fee,
    )
    with pytest.raises(ValueError, match="apply only filled results"):
        fill_from_result(rejected, "s1")


# -- property: the scratch copy and the real ledger agree --------------------------------------

instructions = st.lists(
    st.tuples(st.sampled_from([BTC, ETH]), st.sampled_from(["buy", "sell"]), st.floats(0.01, 30)),
    min_size=1,
    max_size=12,
)


contract_sizes = st.one_of(
    st.just(1.0),
    st.sampled_from([1e-4, 0.01, 100.0]),
    st.floats(1e-4, 100, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=150, deadline=None)
@given(
    market=st.sampled_from(["spot", "margin"]),
    sizes=st.fixed_dictionaries({BTC: contract_sizes, ETH: contract_sizes}),
    batches=st.lists(
        st.tuples(instructions, st.floats(50, 150), st.floats(5, 15)), min_size=1, max_size=5
    ),
)
def test_filled_results_apply_cleanly_to_the_real_ledger(
    market: str,
    sizes: dict[str, float],
    batches: list[tuple[list[tuple[str, str, float]], float, float]],
) -> None:
    """Order sizes are drawn in base units and sent in contracts of each symbol's size."""
    ledger = Ledger(
        1_000,
        market_type=market,  # type: ignore[arg-type]
        max_leverage=3,
        strategy_id="s1",
        rules=ContractSizes(sizes),
    )
    prices: dict[str, float] = {}
    paper = PaperExecutionGateway(ledger, prices.get, ManualClock(NOW))
    for batch, btc_price, eth_price in batches:
        prices.update({BTC: btc_price, ETH: eth_price})
        ledger.mark(prices, ts=NOW)
        batch_orders = [
            order(side, base_units / sizes[symbol], symbol, ordinal=i)
            for i, (symbol, side, base_units) in enumerate(batch)
        ]
        before = state(ledger)
        results: list[ExecutionResult] = paper.execute(batch_orders)
        assert state(ledger) == before
        assert [r.instruction_id for r in results] == [o.instruction_id for o in batch_orders]
        for result in results:
            assert result.status in ("filled", "rejected")
            if result.status == "filled":
                assert result.avg_price is not None
                fill_notional = result.filled_qty * sizes[result.symbol] * result.avg_price
                assert result.fee == pytest.approx(0.001 * fill_notional, rel=1e-12)
                applied = ledger.apply(fill_from_result(result, "s1"))  # enforce: must pass again
                assert applied.fill.realized_pnl == result.realized_pnl
                # valued at the close again, as the coordinator does after the fills
                ledger.mark({result.symbol: prices[result.symbol]}, ts=NOW)
            else:
                assert result.reason
        if market == "spot":
            assert ledger.cash >= -1e-6
            assert all(p.quantity > 0 for p in ledger.positions.values())
