"""One definition of a closed trade's P&L: net of its fees, in the ledger, digest, score and cool-down."""

from __future__ import annotations

import pytest

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.decision.guardrail_checks import check_cooldown
from strategy_agent.models import Fill, MarketRules, TradeHistoryEntry
from strategy_agent.portfolio.ledger import Ledger
from strategy_agent.trading_history.digest import IncrementalDigest, rebuild_digest
from strategy_agent.trading_history.metrics import trade_net_pnl, trade_net_pnl_pct, win_rate

BTC = "BTC/USDT"
HOUR = 3_600_000


class OneContractSize(MarketRulesProvider):
    """Market rules of every symbol with one contract size."""

    def __init__(self, contract_size: float) -> None:
        self.contract_size = contract_size

    def rules_for(self, symbol: str) -> MarketRules:
        return MarketRules(symbol=symbol, qty_step=0.01, contract_size=self.contract_size)


def round_trip(contract_size: float) -> tuple[list[Fill], TradeHistoryEntry]:
    """Buy 2 at 100, sell 2 at 100.15: gross +0.30 x cs, fees 0.40 x cs, net -0.10 x cs."""
    ledger = Ledger(1e6, strategy_id="s1", rules=OneContractSize(contract_size))
    fills = []
    for ts, side, price in ((1_000, "buy", 100.0), (2_000, "sell", 100.15)):
        fill = Fill(
            ts=ts, symbol=BTC, side=side, quantity=2.0, price=price, fee=0.2 * contract_size
        )
        applied = ledger.apply(fill)
        fills.append(applied.fill)
    [trade] = applied.closed_trades
    return fills, trade


@pytest.mark.parametrize("contract_size", [1.0, 0.01, 100.0])
def test_a_trade_that_earns_less_than_its_fees_is_a_loss_in_percent_too(
    contract_size: float,
) -> None:
    _, trade = round_trip(contract_size)
    assert trade.realized_pnl == pytest.approx(0.30 * contract_size)  # gross, before fees
    assert trade.fees == pytest.approx(0.40 * contract_size)
    assert trade_net_pnl(trade) == pytest.approx(-0.10 * contract_size)
    # percent of the entry notional 2 x cs x 100, net of fees: same sign as the net P&L
    assert trade.realized_pnl_pct == pytest.approx(-0.10 / 200 * 100)
    assert trade.realized_pnl_pct == pytest.approx(
        trade_net_pnl_pct(trade_net_pnl(trade), 2 * contract_size * 100.0)
    )


def test_a_trade_that_earns_less_than_its_fees_counts_as_a_loss_everywhere() -> None:
    fills, trade = round_trip(1.0)
    assert win_rate([trade_net_pnl(trade)]) == 0.0
    for digest in (
        IncrementalDigest.from_history(fills, [trade]).digest(3_000),
        rebuild_digest(fills, [trade], 3_000),
    ):
        entry = digest.by_instrument[BTC]
        assert entry.win_rate == 0.0
        assert entry.recent_performance_score is not None
        assert entry.recent_performance_score < 0
        assert entry.last_loss_ts == 2_000
        veto = check_cooldown(BTC, digest, 2_000 + HOUR // 2, HOUR, increasing=True)
        assert veto is not None and "cooling down" in veto


def test_trade_net_pnl_pct_is_none_without_an_entry_notional() -> None:
    assert trade_net_pnl_pct(-1.0, 0.0) is None
    assert trade_net_pnl_pct(5.0, 200.0) == pytest.approx(2.5)
