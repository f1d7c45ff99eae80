"""Property tests: the ledger reconciles after every step, and replay rebuilds it exactly.

Every symbol has a contract size drawn from 0.0001 to 100 (1 often): quantities
are in contracts, money is contracts x contract size x price. Funding payments
of swaps (paid and earned, any sign of rate and position) are drawn among the
steps: ``equity = capital + realized + unrealized - fees - funding``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.errors import InsufficientFundsError
from strategy_agent.models import Fill, MarketRules, TradeHistoryEntry
from strategy_agent.portfolio.funding import FundingPayment, funding_amount
from strategy_agent.portfolio.ledger import Ledger
from strategy_agent.trading_history.metrics import trade_net_pnl

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
REL = 1e-9

quantities = st.floats(min_value=1e-4, max_value=20, allow_nan=False, allow_infinity=False)
prices = st.floats(min_value=0.5, max_value=1_000, allow_nan=False, allow_infinity=False)
fee_rates = st.sampled_from([0.0, 1e-4, 1e-3, 5e-3])
funding_rates = st.one_of(
    st.sampled_from([0.0, 1e-4, -1e-4, 0.00375, -0.00375]),
    st.floats(min_value=-0.01, max_value=0.01, allow_nan=False, allow_infinity=False),
)
symbols = st.sampled_from(SYMBOLS)
contract_sizes = st.one_of(
    st.just(1.0),
    st.sampled_from([1e-4, 0.001, 0.01, 0.1, 10.0, 100.0]),
    st.floats(min_value=1e-4, max_value=100, allow_nan=False, allow_infinity=False),
)
contract_tables = st.fixed_dictionaries({symbol: contract_sizes for symbol in SYMBOLS})


class ContractSizes(MarketRulesProvider):
    """Market rules that differ only in contract size."""

    def __init__(self, sizes: dict[str, float]) -> None:
        self.sizes = sizes

    def rules_for(self, symbol: str) -> MarketRules:
        return MarketRules(symbol=symbol, qty_step=1e-8, contract_size=self.sizes[symbol])


# A step is a fill of a random size, a close of exactly the held quantity, a flip
# past it, a mark-to-market move, or a funding payment on the held position.
plain_fills = st.tuples(
    st.just("fill"), symbols, st.sampled_from(["buy", "sell"]), quantities, prices, fee_rates
)
steps = st.one_of(
    plain_fills,
    plain_fills,  # twice: plain fills are half of all steps
    st.tuples(st.just("close"), symbols, prices, fee_rates),
    st.tuples(st.just("flip"), symbols, quantities, prices, fee_rates),
    st.tuples(st.just("mark"), symbols, prices),
    st.tuples(st.just("funding"), symbols, funding_rates),
)

books = st.builds(
    lambda book, sizes: {**book, "rules": ContractSizes(sizes)},
    st.one_of(
        st.just({"market_type": "spot", "max_leverage": 1.0, "enforce": True}),
        st.builds(
            lambda market, leverage: {
                "market_type": market,
                "max_leverage": leverage,
                "enforce": True,
            },
            st.sampled_from(["margin", "swap"]),
            st.sampled_from([1.0, 2.0, 5.0, 20.0]),
        ),
        # unchecked: any sequence at all (shorts, negative cash, negative equity)
        st.just({"market_type": "margin", "max_leverage": 1.0, "enforce": False}),
    ),
    contract_tables,
)


def _fill_for(ledger: Ledger, step: tuple[Any, ...], ts: int) -> Fill | None:
    """The fill a step stands for, or None for a mark or a close of nothing.

    Drawn quantities are in base units, so books of every contract size trade
    alike; the fill is in contracts.
    """
    kind, symbol = step[0], step[1]
    held = ledger.quantity(symbol)
    size = ledger.contract_size(symbol)
    if kind == "fill":
        _, _, side, base_units, price, rate = step
        quantity = base_units / size
    elif kind in ("close", "flip"):
        if held == 0:
            return None
        extra = step[2] / size if kind == "flip" else 0.0
        price, rate = step[-2], step[-1]
        side = "sell" if held > 0 else "buy"
        quantity = abs(held) + extra
    else:
        return None
    return Fill(
        ts=ts,
        strategy_id="prop",
        compose_id=f"c{ts}",
        instruction_id=f"c{ts}:{symbol}",
        symbol=symbol,
        side=side,
        quantity=quantity,
        price=price,
        fee=ledger.notional(symbol, quantity, price) * rate,
    )


def _scale(ledger: Ledger, traded: float) -> float:
    """Size of the numbers involved, for a relative tolerance on sums of them."""
    held = sum(
        abs(p.quantity) * p.contract_size * (p.mark_price + p.avg_price)
        for p in ledger.positions.values()
    )
    return ledger.initial_capital + traded + held + abs(ledger.cash)


def _assert_reconciles(ledger: Ledger, traded: float) -> None:
    tolerance = REL * _scale(ledger, traded)
    expected = (
        ledger.initial_capital
        + ledger.realized_pnl
        + ledger.unrealized_pnl
        - ledger.fees_paid
        - ledger.funding_paid
    )
    assert math.isclose(ledger.equity, expected, rel_tol=REL, abs_tol=tolerance)
    by_hand = ledger.cash + sum(
        p.quantity * p.contract_size * p.mark_price for p in ledger.positions.values()
    )
    assert math.isclose(ledger.equity, by_hand, rel_tol=REL, abs_tol=tolerance)
    assert ledger.gross_exposure >= abs(ledger.net_exposure) - tolerance
    for position in ledger.positions.values():
        assert position.quantity != 0
        assert position.peak_quantity >= abs(position.quantity) * (1 - REL)


def _book_state(ledger: Ledger) -> tuple[Any, ...]:
    """Everything replay must rebuild; marks are excluded (replay marks at fill prices)."""
    positions = {s: dataclasses.replace(p, mark_price=0.0) for s, p in ledger.positions.items()}
    return ledger.cash, ledger.realized_pnl, ledger.fees_paid, ledger.funding_paid, positions


def _funding_for(ledger: Ledger, step: tuple[Any, ...], ts: int) -> FundingPayment | None:
    """The payment a funding step stands for on the held position (None when flat)."""
    _, symbol, rate = step
    position = ledger.positions.get(symbol)
    if position is None or ledger.market_type != "swap":  # only swaps pay funding
        return None
    size, mark = position.contract_size, position.mark_price
    amount = funding_amount(position.quantity, size, mark, rate)
    return FundingPayment(ts, symbol, ts, position.quantity, size, mark, rate, amount)


def test_only_a_swap_book_pays_funding() -> None:
    spot = Ledger(initial_capital=1_000.0, market_type="spot")
    spot.apply(Fill(ts=1, symbol="BTC/USDT", side="buy", quantity=1.0, price=100.0, fee=0.0))
    payment = FundingPayment(2, "BTC/USDT", 2, 1.0, 1.0, 100.0, 0.01, 1.0)
    with pytest.raises(ValueError, match="only perpetual swaps pay funding"):
        spot.apply_funding(payment)
    assert spot.cash == 900.0 and spot.funding_paid == 0.0


def _run(
    book: dict[str, Any],
    script: list[tuple[Any, ...]],
    payments: list[FundingPayment] | None = None,
) -> tuple[Ledger, list[Fill], list[TradeHistoryEntry], float]:
    ledger = Ledger(
        10_000,
        market_type=book["market_type"],
        max_leverage=book["max_leverage"],
        strategy_id="prop",
        rules=book["rules"],
    )
    fills: list[Fill] = []
    trades: list[TradeHistoryEntry] = []
    traded = 0.0
    for ts, step in enumerate(script, start=1):
        if step[0] == "mark":
            ledger.mark({step[1]: step[2]}, ts=ts)
        elif step[0] == "funding":
            if (payment := _funding_for(ledger, step, ts)) is not None:
                cash, paid = ledger.cash, ledger.funding_paid
                ledger.apply_funding(payment)
                assert ledger.cash == cash - payment.amount
                assert ledger.funding_paid == paid + payment.amount
                # a long pays a positive rate, a short earns it
                held = ledger.quantity(payment.symbol)
                # (signs compared, not their product, which underflows for tiny rates)
                if payment.amount != 0:
                    assert (payment.amount > 0) == ((held > 0) == (payment.rate > 0))
                if payments is not None:
                    payments.append(payment)
                traded += abs(payment.amount)
        elif (fill := _fill_for(ledger, step, ts)) is not None:
            if book["enforce"] and ledger.check(
                fill.symbol, fill.side, fill.quantity, fill.price, fill.fee
            ):
                before = _book_state(ledger), ledger.equity
                with pytest.raises(InsufficientFundsError):
                    ledger.apply(fill)
                assert (_book_state(ledger), ledger.equity) == before  # never half-applied
            else:
                applied = ledger.apply(fill, enforce=book["enforce"])
                fills.append(applied.fill)
                trades.extend(applied.closed_trades)
                traded += ledger.notional(fill.symbol, fill.quantity, fill.price)
        _assert_reconciles(ledger, traded)
        for symbol, position in ledger.positions.items():
            assert position.contract_size == book["rules"].sizes[symbol]
    return ledger, fills, trades, traded


@settings(max_examples=300, deadline=None)
@given(book=books, script=st.lists(steps, min_size=8, max_size=60))
def test_ledger_reconciles_after_every_step(
    book: dict[str, Any], script: list[tuple[Any, ...]]
) -> None:
    ledger, _, _, _ = _run(book, script)
    if book["enforce"] and book["market_type"] == "spot":
        assert ledger.cash >= -REL * _scale(ledger, 0.0)
        assert all(p.quantity > 0 for p in ledger.positions.values())


@settings(max_examples=300, deadline=None)
@given(book=books, script=st.lists(steps, min_size=8, max_size=60))
def test_replay_equals_the_live_ledger(book: dict[str, Any], script: list[tuple[Any, ...]]) -> None:
    payments: list[FundingPayment] = []
    live, fills, trades, _ = _run(book, script, payments)
    replayed = Ledger.replay(
        fills,
        initial_capital=10_000,
        market_type=book["market_type"],
        max_leverage=book["max_leverage"],
        strategy_id="prop",
        rules=book["rules"],
        funding=payments,
    )
    assert _book_state(replayed) == _book_state(live)
    assert replayed.funding_paid == sum(p.amount for p in payments) or math.isclose(
        replayed.funding_paid, sum(p.amount for p in payments), rel_tol=REL, abs_tol=REL * 1e4
    )

    again = Ledger(
        10_000,
        market_type=book["market_type"],
        max_leverage=book["max_leverage"],
        strategy_id="prop",
        rules=book["rules"],
    )
    replayed_trades: list[TradeHistoryEntry] = []
    for stored in fills:
        applied = again.apply(stored, enforce=False)
        assert applied.fill.realized_pnl == stored.realized_pnl
        replayed_trades.extend(applied.closed_trades)
    assert replayed_trades == trades


@settings(max_examples=300, deadline=None)
@given(book=books, script=st.lists(steps, min_size=8, max_size=60))
def test_trades_account_for_all_realized_pnl_and_fees(
    book: dict[str, Any], script: list[tuple[Any, ...]]
) -> None:
    ledger, fills, trades, traded = _run(book, script)
    tolerance = REL * _scale(ledger, traded)
    open_positions = ledger.positions.values()
    realized = sum(t.realized_pnl or 0.0 for t in trades) + sum(
        p.realized_pnl for p in open_positions
    )
    assert math.isclose(realized, ledger.realized_pnl, rel_tol=REL, abs_tol=tolerance)
    assert math.isclose(
        sum(f.realized_pnl for f in fills), ledger.realized_pnl, rel_tol=REL, abs_tol=tolerance
    )
    fees = sum(t.fees for t in trades) + sum(p.fees for p in open_positions)
    assert math.isclose(fees, ledger.fees_paid, rel_tol=REL, abs_tol=tolerance)
    assert math.isclose(sum(f.fee for f in fills), ledger.fees_paid, rel_tol=REL, abs_tol=tolerance)
    for trade in trades:
        assert trade.entry_ts is not None and trade.exit_ts is not None
        assert trade.entry_ts <= trade.exit_ts
        assert trade.holding_ms == trade.exit_ts - trade.entry_ts
        assert trade.quantity > 0
        assert trade.side == ("buy" if trade.type == "long" else "sell")
        assert trade.trade_id == f"prop:{trade.instrument.symbol}:{trade.entry_ts}"
        # the percent is net of fees: a trade wins or loses the same way in both
        net, pct = trade_net_pnl(trade), trade.realized_pnl_pct
        assert pct is not None and (pct > 0, pct < 0) == (net > 0, net < 0)


@settings(max_examples=200, deadline=None)
@given(
    opens=st.lists(st.tuples(quantities, prices), min_size=1, max_size=8),
    exit_price=prices,
    contract_size=contract_sizes,
)
def test_a_round_trip_realizes_exit_minus_average_entry(
    opens: list[tuple[float, float]], exit_price: float, contract_size: float
) -> None:
    rules = ContractSizes({"BTC/USDT": contract_size})
    ledger = Ledger(10_000, market_type="margin", max_leverage=1.0, rules=rules)
    for ts, (quantity, price) in enumerate(opens, start=1):
        ledger.apply(
            Fill(ts=ts, symbol="BTC/USDT", side="sell", quantity=quantity, price=price, fee=0),
            enforce=False,
        )
    total = sum(q for q, _ in opens)
    average = sum(q * p for q, p in opens) / total
    result = ledger.apply(
        Fill(
            ts=99,
            symbol="BTC/USDT",
            side="buy",
            quantity=abs(ledger.quantity("BTC/USDT")),
            price=exit_price,
            fee=0,
        ),
        enforce=False,
    )
    assert ledger.positions == {}
    [trade] = result.closed_trades
    expected = (average - exit_price) * total * contract_size
    scale = (average + exit_price) * total * contract_size
    assert math.isclose(trade.realized_pnl or 0.0, expected, rel_tol=1e-9, abs_tol=1e-9 * scale)
    assert trade.entry_price is not None and math.isclose(trade.entry_price, average, rel_tol=1e-12)
    assert math.isclose(ledger.cash, 10_000 + expected, rel_tol=1e-9, abs_tol=1e-9 * scale)
