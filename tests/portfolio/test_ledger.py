"""Hand-computed ledger scenarios: opens, adds, closes, flips, checks and views."""

from __future__ import annotations

import dataclasses

import pytest

from strategy_agent.errors import InsufficientFundsError
from strategy_agent.models import Fill
from strategy_agent.portfolio.ledger import Ledger

BTC = "BTC/USDT"
ETH = "ETH/USDT"


def fill(
    side: str,
    quantity: float,
    price: float,
    *,
    symbol: str = BTC,
    fee: float = 0.0,
    ts: int = 1_000,
    compose_id: str = "c1",
) -> Fill:
    return Fill(
        ts=ts,
        strategy_id="s1",
        compose_id=compose_id,
        instruction_id=f"{compose_id}:{symbol}",
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        quantity=quantity,
        price=price,
        fee=fee,
    )


def reconciles(ledger: Ledger) -> bool:
    expected = (
        ledger.initial_capital + ledger.realized_pnl + ledger.unrealized_pnl - ledger.fees_paid
    )
    return ledger.equity == pytest.approx(expected, rel=1e-12, abs=1e-9)


def state(ledger: Ledger) -> tuple[object, ...]:
    return (
        ledger.cash,
        ledger.realized_pnl,
        ledger.fees_paid,
        {s: dataclasses.astuple(p) for s, p in ledger.positions.items()},
    )


# -- long ---------------------------------------------------------------------------------


def test_long_open_add_partial_close_and_full_close() -> None:
    ledger = Ledger(10_000, strategy_id="s1")

    opened = ledger.apply(fill("buy", 1, 100, fee=0.1, ts=1_000))
    assert opened.fill.realized_pnl == 0 and opened.closed_trades == []
    assert ledger.cash == pytest.approx(9_899.9)

    ledger.apply(fill("buy", 1, 110, fee=0.11, ts=2_000))
    position = ledger.positions[BTC]
    assert position.quantity == 2
    assert position.avg_price == pytest.approx(105)
    assert position.entry_ts == 1_000
    assert ledger.cash == pytest.approx(9_789.79)

    partial = ledger.apply(fill("sell", 0.5, 120, fee=0.06, ts=3_000))
    assert partial.fill.realized_pnl == pytest.approx(7.5)
    assert partial.closed_trades == []
    position = ledger.positions[BTC]
    assert position.quantity == pytest.approx(1.5)
    assert position.avg_price == pytest.approx(105)  # a partial close keeps the average
    assert position.mark_price == 120  # every fill marks its position at the fill price
    assert position.realized_pnl == pytest.approx(7.5)
    assert ledger.cash == pytest.approx(9_849.73)

    ledger.mark({BTC: 130}, ts=3_500)
    assert ledger.unrealized_pnl == pytest.approx(37.5)
    assert ledger.equity == pytest.approx(10_044.73)
    assert reconciles(ledger)

    closed = ledger.apply(fill("sell", 1.5, 90, fee=0.15, ts=4_000, compose_id="c9"))
    assert closed.fill.realized_pnl == pytest.approx(-22.5)
    assert BTC not in ledger.positions
    assert ledger.realized_pnl == pytest.approx(-15)
    assert ledger.fees_paid == pytest.approx(0.42)
    assert ledger.cash == pytest.approx(10_000 - 15 - 0.42)
    assert ledger.equity == pytest.approx(ledger.cash)
    assert reconciles(ledger)

    [trade] = closed.closed_trades
    assert trade.trade_id == "s1:BTC/USDT:1000"
    assert (trade.type, trade.side) == ("long", "buy")
    assert trade.quantity == 2  # peak held
    assert trade.entry_price == pytest.approx(105)
    assert trade.exit_price == pytest.approx((0.5 * 120 + 1.5 * 90) / 2)
    assert trade.realized_pnl == pytest.approx(-15)
    assert trade.realized_pnl_pct == pytest.approx((-15 - 0.42) / (105 * 2) * 100)  # net of fees
    assert trade.fees == pytest.approx(0.42)
    assert (trade.entry_ts, trade.exit_ts, trade.holding_ms) == (1_000, 4_000, 3_000)
    assert (trade.compose_id, trade.instruction_id) == ("c9", "c9:BTC/USDT")
    assert trade.strategy_id == "s1"


def test_entry_price_of_a_trade_weights_every_opening_fill() -> None:
    ledger = Ledger(10_000, strategy_id="s1")
    ledger.apply(fill("buy", 2, 100))
    ledger.apply(fill("sell", 1, 110))  # realized +10, avg stays 100
    ledger.apply(fill("buy", 1, 130))  # avg (1*100 + 1*130) / 2 = 115
    assert ledger.positions[BTC].avg_price == pytest.approx(115)
    result = ledger.apply(fill("sell", 2, 120))  # realized (120-115)*2 = 10
    [trade] = result.closed_trades
    assert trade.entry_price == pytest.approx((2 * 100 + 130) / 3)
    assert trade.exit_price == pytest.approx((110 + 2 * 120) / 3)
    assert trade.realized_pnl == pytest.approx(20)
    assert trade.quantity == 2
    assert ledger.realized_pnl == pytest.approx(20)


# -- short ----------------------------------------------------------------------------------


def test_short_open_partial_and_close() -> None:
    ledger = Ledger(10_000, market_type="margin", max_leverage=2, strategy_id="s1")
    ledger.apply(fill("sell", 2, 50, ts=1_000))
    assert ledger.positions[BTC].quantity == -2
    assert ledger.positions[BTC].trade_type == "short"
    assert ledger.cash == pytest.approx(10_100)

    partial = ledger.apply(fill("buy", 0.5, 40, ts=2_000))
    assert partial.fill.realized_pnl == pytest.approx(5)
    assert ledger.positions[BTC].quantity == pytest.approx(-1.5)
    assert ledger.positions[BTC].avg_price == pytest.approx(50)
    assert ledger.cash == pytest.approx(10_080)

    ledger.mark({BTC: 45}, ts=2_500)
    assert ledger.unrealized_pnl == pytest.approx(7.5)
    assert ledger.equity == pytest.approx(10_012.5)
    assert ledger.net_exposure == pytest.approx(-67.5)
    assert ledger.gross_exposure == pytest.approx(67.5)
    assert reconciles(ledger)

    closed = ledger.apply(fill("buy", 1.5, 60, ts=5_000))
    assert closed.fill.realized_pnl == pytest.approx(-15)
    assert ledger.positions == {}
    assert ledger.realized_pnl == pytest.approx(-10)
    assert ledger.cash == pytest.approx(9_990)
    [trade] = closed.closed_trades
    assert (trade.type, trade.side) == ("short", "sell")
    assert trade.quantity == 2
    assert trade.entry_price == pytest.approx(50)
    assert trade.exit_price == pytest.approx(55)
    assert trade.realized_pnl_pct == pytest.approx(-10)
    assert trade.holding_ms == 4_000


# -- flips ------------------------------------------------------------------------------------


def test_flip_long_to_short_closes_then_opens_the_rest() -> None:
    ledger = Ledger(10_000, market_type="margin", max_leverage=3, strategy_id="s1")
    ledger.apply(fill("buy", 2, 100, fee=0.2, ts=1_000))
    flip = ledger.apply(fill("sell", 5, 110, fee=0.55, ts=2_000))

    assert flip.fill.realized_pnl == pytest.approx(20)
    [trade] = flip.closed_trades
    assert trade.type == "long"
    assert trade.quantity == 2
    assert trade.realized_pnl == pytest.approx(20)
    assert trade.fees == pytest.approx(0.2 + 0.55 * 2 / 5)  # pro-rata share of the flip fee
    assert trade.realized_pnl_pct == pytest.approx((20 - 0.42) / 200 * 100)  # net of fees

    position = ledger.positions[BTC]
    assert position.quantity == pytest.approx(-3)
    assert position.avg_price == 110
    assert position.entry_ts == 2_000
    assert position.fees == pytest.approx(0.55 * 3 / 5)
    assert position.realized_pnl == 0
    assert position.peak_quantity == pytest.approx(3)
    assert ledger.cash == pytest.approx(10_349.25)
    assert ledger.equity == pytest.approx(10_019.25)
    assert reconciles(ledger)


def test_flip_short_to_long() -> None:
    ledger = Ledger(10_000, market_type="swap", max_leverage=3, strategy_id="s1")
    ledger.apply(fill("sell", 1, 200, ts=1_000))
    flip = ledger.apply(fill("buy", 3, 180, ts=2_000))
    assert flip.fill.realized_pnl == pytest.approx(20)
    assert flip.closed_trades[0].type == "short"
    position = ledger.positions[BTC]
    assert position.quantity == pytest.approx(2)
    assert position.avg_price == 180
    assert position.trade_type == "long"
    ledger.mark({BTC: 190}, ts=3_000)
    assert ledger.unrealized_pnl == pytest.approx(20)
    assert ledger.equity == pytest.approx(10_040)
    assert reconciles(ledger)


def test_float_dust_after_a_close_removes_the_position() -> None:
    ledger = Ledger(10_000, strategy_id="s1")
    ledger.apply(fill("buy", 0.1, 100))
    ledger.apply(fill("buy", 0.2, 100))  # 0.30000000000000004 held
    result = ledger.apply(fill("sell", 0.3, 100))
    assert ledger.positions == {}
    assert len(result.closed_trades) == 1
    # and the other way: selling a hair more than held on spot is still a close
    ledger.apply(fill("buy", 0.3, 100))
    assert ledger.check(BTC, "sell", 0.1 + 0.2, 100, 0) is None
    ledger.apply(fill("sell", 0.1 + 0.2, 100))
    assert ledger.positions == {}


# -- checks -----------------------------------------------------------------------------------


def test_spot_short_is_rejected_and_nothing_changes() -> None:
    ledger = Ledger(10_000, strategy_id="s1")
    ledger.apply(fill("buy", 0.3, 100))
    before = state(ledger)
    reason = ledger.check(BTC, "sell", 0.5, 100, 0)
    assert reason is not None
    assert reason.startswith("spot is long only: sell 0.5 BTC/USDT but hold 0.3")
    with pytest.raises(InsufficientFundsError, match="spot is long only"):
        ledger.apply(fill("sell", 0.5, 100))
    assert state(ledger) == before
    assert ledger.check(ETH, "sell", 1, 10, 0) is not None  # nothing held at all


def test_spot_unaffordable_buy_is_rejected_and_nothing_changes() -> None:
    ledger = Ledger(1_000, strategy_id="s1")
    before = state(ledger)
    reason = ledger.check(BTC, "buy", 0.5, 2_467, 2.5)
    assert reason is not None and "needs 1,236.00 USDT, cash is 1,000.00" in reason
    with pytest.raises(InsufficientFundsError, match=r"needs 1,236\.00 USDT"):
        ledger.apply(fill("buy", 0.5, 2_467, fee=2.5))
    assert state(ledger) == before
    # exactly all the cash, fee included, is fine
    assert ledger.check(BTC, "buy", 0.5, 1_998, 1) is None


def test_enforce_false_applies_what_check_refuses() -> None:
    ledger = Ledger(1_000, strategy_id="s1")
    ledger.apply(fill("buy", 1, 2_000), enforce=False)
    assert ledger.cash == pytest.approx(-1_000)
    assert reconciles(ledger)


def test_margin_leverage_limit_rejects_but_reducing_is_allowed() -> None:
    ledger = Ledger(1_000, market_type="margin", max_leverage=2, strategy_id="s1")
    reason = ledger.check(BTC, "buy", 25, 100, 0)
    assert reason is not None and "max_leverage 2" in reason
    with pytest.raises(InsufficientFundsError):
        ledger.apply(fill("buy", 25, 100))
    assert ledger.positions == {}

    ledger.apply(fill("buy", 19, 100))  # gross 1,900 <= 2 x 1,000
    assert ledger.cash == pytest.approx(-900)
    ledger.mark({BTC: 50}, ts=2_000)  # equity 50, gross 950: far over the limit
    assert ledger.equity == pytest.approx(50)
    assert ledger.check(BTC, "buy", 1, 50, 0) is not None
    assert ledger.check(BTC, "sell", 40, 50, 0) is not None  # a flip that grows the position
    assert ledger.check(BTC, "sell", 5, 50, 0.1) is None  # reducing risk is always allowed
    ledger.apply(fill("sell", 5, 50, fee=0.1))
    assert ledger.positions[BTC].quantity == pytest.approx(14)
    assert ledger.check(ETH, "sell", 10, 10, 0) is not None  # new exposure elsewhere too


def test_margin_order_that_would_wipe_out_equity_is_rejected() -> None:
    ledger = Ledger(100, market_type="swap", max_leverage=50, strategy_id="s1")
    reason = ledger.check(BTC, "buy", 1, 100, 150)
    assert reason is not None and "equity" in reason and "reduce the quantity" in reason


@pytest.mark.parametrize(
    ("quantity", "price", "fee", "word"),
    [
        (0.0, 100.0, 0.0, "quantity"),
        (float("nan"), 100.0, 0.0, "quantity"),
        (1.0, float("inf"), 0.0, "price"),
        (1.0, -1.0, 0.0, "price"),
        (1.0, 100.0, -0.1, "fee"),
    ],
)
def test_check_refuses_non_finite_or_non_positive_numbers(
    quantity: float, price: float, fee: float, word: str
) -> None:
    ledger = Ledger(1_000, market_type="margin", max_leverage=5)
    reason = ledger.check(BTC, "buy", quantity, price, fee)
    assert reason is not None and reason.startswith(word)


def test_constructor_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="initial_capital"):
        Ledger(0)
    with pytest.raises(ValueError, match="market_type"):
        Ledger(100, market_type="futures")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_leverage"):
        Ledger(100, max_leverage=float("nan"))


# -- marks, views, copies ------------------------------------------------------------------------


def test_mark_updates_held_symbols_only_and_keeps_other_marks() -> None:
    ledger = Ledger(10_000, strategy_id="s1")
    ledger.apply(fill("buy", 1, 100, symbol=BTC))
    ledger.apply(fill("buy", 10, 20, symbol=ETH))
    ledger.mark({BTC: 120, "SOL/USDT": 5}, ts=5_000)
    assert ledger.positions[BTC].mark_price == 120
    assert ledger.positions[ETH].mark_price == 20
    assert "SOL/USDT" not in ledger.positions
    assert ledger.unrealized_pnl == pytest.approx(20)
    with pytest.raises(ValueError, match="finite number > 0"):
        ledger.mark({BTC: float("nan")}, ts=6_000)
    assert ledger.positions[BTC].mark_price == 120


def test_marked_is_replace_of_the_mark_price_and_keeps_every_other_field() -> None:
    from strategy_agent.portfolio.positions import PositionState

    fields = dataclasses.fields(PositionState)
    # a distinct value per field, so a field copied into the wrong place is seen
    values = {f.name: ("BTC/USDT" if f.type == "str" else n + 0.5) for n, f in enumerate(fields)}
    values["entry_ts"] = 1_700_000_000_000
    position = PositionState(**values)  # type: ignore[arg-type]
    assert position.marked(123.25) == dataclasses.replace(position, mark_price=123.25)


def test_marking_at_the_same_price_keeps_the_position_object() -> None:
    ledger = Ledger(10_000)
    ledger.apply(fill("buy", 1, 100, symbol=BTC))
    ledger.mark({BTC: 110}, ts=5_000)
    before = ledger.positions[BTC]
    ledger.mark({BTC: 110.0}, ts=6_000)  # a cycle marks twice at its closes
    assert ledger.positions[BTC] is before
    ledger.mark({BTC: 111}, ts=7_000)
    assert ledger.positions[BTC].mark_price == 111 and ledger.unrealized_pnl == pytest.approx(11)


def test_get_view_and_equity_point() -> None:
    ledger = Ledger(10_000, market_type="margin", max_leverage=2, strategy_id="s1")
    ledger.apply(fill("buy", 10, 100, symbol=BTC, fee=1, ts=1_000))
    ledger.apply(fill("sell", 20, 50, symbol=ETH, fee=1, ts=2_000))
    ledger.mark({BTC: 110, ETH: 40}, ts=3_000)

    view = ledger.get_view()
    assert view.ts == 3_000
    assert view.strategy_id == "s1"
    assert view.cash == pytest.approx(10_000 - 1_000 + 1_000 - 2)
    assert view.total_value == pytest.approx(9_998 + 1_100 - 800)
    assert view.total_unrealized_pnl == pytest.approx(100 + 200)
    assert view.gross_exposure == pytest.approx(1_900)
    assert view.net_exposure == pytest.approx(300)
    assert view.fees_paid == pytest.approx(2)
    assert view.initial_capital == 10_000
    assert view.available_cash == pytest.approx(10_298 - 1_900 / 2)
    btc = view.positions[BTC]
    assert btc.quantity == 10 and btc.avg_price == 100 and btc.mark_price == 110
    assert btc.unrealized_pnl == pytest.approx(100)
    assert btc.notional == pytest.approx(1_100)
    assert btc.leverage == pytest.approx(1_100 / 10_298)
    assert btc.pnl_pct == pytest.approx(10)
    assert btc.trade_type == "long" and btc.entry_ts == 1_000
    eth = view.positions[ETH]
    assert eth.quantity == -20 and eth.notional == pytest.approx(-800)
    assert eth.pnl_pct == pytest.approx(20)
    assert eth.trade_type == "short"
    assert ledger.get_view(ts=9_000).ts == 9_000

    point = ledger.equity_point(4_000)
    assert point.ts == 4_000 and point.strategy_id == "s1"
    assert point.equity == pytest.approx(10_298)
    assert point.unrealized_pnl == pytest.approx(300)
    assert point.gross_exposure == pytest.approx(1_900)


def test_spot_view_available_cash_is_cash() -> None:
    ledger = Ledger(1_000)
    ledger.apply(fill("buy", 1, 400))
    view = ledger.get_view(ts=1)
    assert view.available_cash == pytest.approx(600)
    assert view.strategy_id is None


def test_copy_is_independent() -> None:
    ledger = Ledger(10_000, strategy_id="s1")
    ledger.apply(fill("buy", 1, 100))
    clone = ledger.copy()
    assert state(clone) == state(ledger)
    clone.apply(fill("buy", 1, 200))
    clone.mark({BTC: 300}, ts=5)
    assert ledger.positions[BTC].quantity == 1
    assert ledger.positions[BTC].mark_price == 100
    assert ledger.cash == pytest.approx(9_900)
    assert (clone.market_type, clone.strategy_id) == ("spot", "s1")


def test_replay_rebuilds_the_live_state_and_realized_pnl() -> None:
    live = Ledger(10_000, market_type="margin", max_leverage=3, strategy_id="s1")
    applied = [
        live.apply(f).fill
        for f in [
            fill("buy", 2, 100, fee=0.2, ts=1),
            fill("sell", 5, 110, fee=0.55, ts=2),
            fill("buy", 1, 105, fee=0.1, ts=3, symbol=ETH),
            fill("buy", 3, 90, fee=0.27, ts=4),
        ]
    ]
    replayed = Ledger.replay(
        applied, initial_capital=10_000, market_type="margin", max_leverage=3, strategy_id="s1"
    )
    assert state(replayed) == state(live)
    again = Ledger(10_000, market_type="margin", max_leverage=3, strategy_id="s1")
    assert [again.apply(f, enforce=False).fill.realized_pnl for f in applied] == [
        f.realized_pnl for f in applied
    ]
