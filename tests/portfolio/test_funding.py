"""Funding of paper swaps: which payments fall due between two cycles, and the ledger's entry."""

from __future__ import annotations

import pytest

from strategy_agent.models import Fill
from strategy_agent.portfolio.funding import FundingAccrual, FundingPayment, funding_amount
from strategy_agent.portfolio.ledger import Ledger
from tests.portfolio.test_ledger_properties import ContractSizes

H = 3_600_000
F0 = 1_735_718_400_000  # a funding time (08:00 UTC)
PERP = "BTC/USDT:USDT"


def quote(next_ts: int, rate: float, mark: float = 100.0) -> dict[str, float]:
    return {"mark_price": mark, "funding_rate": rate, "next_funding_ts": next_ts}


def test_the_amount_is_notional_at_the_mark_times_the_rate_paid_by_longs() -> None:
    assert funding_amount(2.0, 0.01, 50_000.0, 0.0001) == pytest.approx(0.1)  # a long pays
    assert funding_amount(-2.0, 0.01, 50_000.0, 0.0001) == pytest.approx(-0.1)  # a short earns
    assert funding_amount(2.0, 0.01, 50_000.0, -0.0001) == pytest.approx(-0.1)  # negative rate


def test_nothing_is_due_before_the_funding_time_then_it_is_due_once() -> None:
    accrual = FundingAccrual({PERP: quote(F0, 0.0003)})
    held = {PERP: (3.0, 1.0)}
    assert accrual.due(F0 - 1, {PERP: quote(F0, 0.0003)}, held, {}) == []
    [payment] = accrual.due(F0 + 5_000, {PERP: quote(F0 + 8 * H, 0.0001, mark=110.0)}, held, {})
    assert payment == FundingPayment(
        ts=F0 + 5_000,
        symbol=PERP,
        funding_ts=F0,
        quantity=3.0,
        contract_size=1.0,
        mark_price=110.0,
        rate=0.0003,  # the rate announced for that funding, not the next one
        amount=pytest.approx(3.0 * 110.0 * 0.0003),  # type: ignore[arg-type]
    )
    # not committed (the cycle failed): still due next time
    assert len(accrual.due(F0 + H, {PERP: quote(F0 + 8 * H, 0.0001)}, held, {})) == 1
    accrual.commit({PERP: quote(F0 + 8 * H, 0.0001)}, F0 + H)
    assert accrual.due(F0 + 2 * H, {PERP: quote(F0 + 8 * H, 0.0001)}, held, {}) == []


def test_every_funding_time_of_a_long_gap_is_due_and_a_flat_book_pays_nothing() -> None:
    accrual = FundingAccrual({PERP: quote(F0, 0.0002)})
    later = {PERP: quote(F0 + 24 * H, -0.0001)}  # a day later (paused, or a 1d interval)
    payments = accrual.due(F0 + 16 * H + 60_000, later, {PERP: (-1.0, 1.0)}, {PERP: 90.0})
    assert [p.funding_ts for p in payments] == [F0, F0 + 8 * H, F0 + 16 * H]
    assert [p.rate for p in payments] == [0.0002, -0.0001, -0.0001]
    assert [p.mark_price for p in payments] == [100.0] * 3  # the snapshot's mark
    assert accrual.due(F0 + 16 * H, later, {PERP: (0.0, 1.0)}, {}) == []
    # no mark in the snapshot: the latest close
    [payment] = FundingAccrual({PERP: quote(F0, 0.0002)}).due(
        F0 + 1, {PERP: {"next_funding_ts": F0 + 8 * H}}, {PERP: (1.0, 1.0)}, {PERP: 95.0}
    )
    assert payment.mark_price == 95.0


def test_a_snapshot_without_funding_moves_the_settled_time_on() -> None:
    accrual = FundingAccrual({PERP: quote(F0, 0.0002)})
    held = {PERP: (1.0, 1.0)}
    assert len(accrual.due(F0 + 1, {}, held, {PERP: 100.0})) == 1
    accrual.commit({}, F0 + 1)  # the exchange gave no funding this time
    assert accrual.due(F0 + 2, {}, held, {PERP: 100.0}) == []  # never charged twice
    assert len(accrual.due(F0 + 8 * H, {}, held, {PERP: 100.0})) == 1  # the next one, 8 h on


def test_the_ledger_books_funding_as_cash_and_keeps_the_identity() -> None:
    ledger = Ledger(10_000, market_type="swap", max_leverage=5, rules=ContractSizes({PERP: 0.01}))
    ledger.apply(Fill(ts=1, symbol=PERP, side="buy", quantity=10, price=50_000, fee=5.0))
    ledger.mark({PERP: 51_000}, ts=2)
    amount = funding_amount(10, 0.01, 51_000, 0.0001)
    ledger.apply_funding(FundingPayment(3, PERP, 3, 10, 0.01, 51_000, 0.0001, amount))
    assert ledger.funding_paid == pytest.approx(0.51)
    assert ledger.cash == pytest.approx(10_000 - 5_000 - 5.0 - 0.51)
    assert ledger.equity == pytest.approx(
        ledger.initial_capital
        + ledger.realized_pnl
        + ledger.unrealized_pnl
        - ledger.fees_paid
        - ledger.funding_paid
    )
    view = ledger.get_view()
    assert view.funding_paid == pytest.approx(0.51) and view.ts == 3
    assert ledger.copy().funding_paid == ledger.funding_paid
    assert ledger.positions[PERP].quantity == 10  # the position itself does not move
    with pytest.raises(ValueError, match="finite"):
        ledger.apply_funding(FundingPayment(4, PERP, 4, 1, 1, 1, 0, float("nan")))
