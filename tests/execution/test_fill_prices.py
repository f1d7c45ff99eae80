"""Where paper fills start from: the ticker on live data (ask/bid/last), the close otherwise."""

from __future__ import annotations

import pandas as pd
import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.data.replay_market import ReplayMarketDataSource
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.execution.fill_prices import (
    CallablePrices,
    ClosePrices,
    FillQuote,
    NextOpenPrices,
    TickerPrices,
    ticker_quote,
)
from strategy_agent.execution.paper_trading import PaperExecutionGateway
from strategy_agent.models import InstrumentRef, TradeInstruction
from strategy_agent.portfolio.ledger import Ledger

H = 3_600_000
BTC = "BTC/USDT"


class Snapshots:
    def __init__(self, tickers: dict[str, dict[str, float]]) -> None:
        self.tickers = tickers
        self.calls = 0

    def snapshot(self, symbols: list[str]) -> dict[str, dict[str, float]]:
        self.calls += 1
        return {s: self.tickers[s] for s in symbols}


def order(side: str, quantity: float = 0.1, **extra: object) -> TradeInstruction:
    return TradeInstruction(
        instruction_id=f"c1:{BTC}:{side}",
        compose_id="c1",
        instrument=InstrumentRef(symbol=BTC),
        side=side,  # type: ignore[arg-type]
        quantity=quantity,
        **extra,  # type: ignore[arg-type]
    )


def test_a_buy_starts_from_the_ask_a_sell_from_the_bid_else_the_last() -> None:
    ticker = {"last": 100.0, "bid": 99.9, "ask": 100.1}
    assert ticker_quote(ticker, "buy") == FillQuote(100.1, "ask")
    assert ticker_quote(ticker, "sell") == FillQuote(99.9, "bid")
    assert ticker_quote({"last": 100.0}, "buy") == FillQuote(100.0, "last")
    assert ticker_quote({"bid": 0.0, "last": 100.0}, "sell") == FillQuote(100.0, "last")
    assert ticker_quote({}, "sell") is None


def test_paper_fills_on_the_ticker_at_execution_time_plus_slippage_and_record_it() -> None:
    source = Snapshots({BTC: {"last": 100.0, "bid": 99.0, "ask": 101.0}})
    ledger = Ledger(10_000, market_type="margin", max_leverage=2)
    paper = PaperExecutionGateway(
        ledger, TickerPrices(source), ManualClock(5), fee_bps=10, slippage_bps=20
    )
    buy, sell = paper.execute([order("buy"), order("sell", 0.2)])
    assert (buy.price_source, buy.reference_price) == ("ask", 101.0)
    assert buy.avg_price == pytest.approx(101.0 * 1.002)
    assert (sell.price_source, sell.reference_price) == ("bid", 99.0)
    assert sell.avg_price == pytest.approx(99.0 * 0.998)
    assert source.calls == 2  # asked at execution time, per order
    # a limit order is marketable against the ask/bid it would meet
    [limit] = paper.execute([order("buy", price_mode="limit", limit_price=100.5)])
    assert limit.status == "rejected" and "ask price 101" in (limit.reason or "")


def test_closes_never_come_from_a_candle_that_has_not_closed() -> None:
    clock = ManualClock(DEFAULT_ORIGIN_MS + 50 * H + 30 * 60_000)  # half way through bar 50
    source = SimulatedMarketDataSource(seed=42, clock=clock, origin_ms=DEFAULT_ORIGIN_MS)
    prices = ClosePrices(source, clock, [BTC], "1h")
    quote = prices.price_for(BTC, "buy")
    bars = source.history(BTC, "1h", 0, 60, closed_only=False).set_index("ts")
    assert quote == FillQuote(pytest.approx(bars.loc[DEFAULT_ORIGIN_MS + 49 * H, "close"]), "close")
    clock.set(DEFAULT_ORIGIN_MS + 51 * H)  # bar 50 has closed now
    later = prices.price_for(BTC, "sell")
    assert later is not None and later.price == pytest.approx(
        bars.loc[DEFAULT_ORIGIN_MS + 50 * H, "close"]
    )


def test_a_plain_function_is_a_close_price() -> None:
    prices = CallablePrices({BTC: 50.0}.get)
    assert prices.price_for(BTC, "buy") == FillQuote(50.0, "close")
    assert prices.price_for("ETH/USDT", "buy") is None
    [result] = PaperExecutionGateway(Ledger(1_000), {BTC: 50.0}.get, ManualClock(1)).execute(
        [order("buy")]
    )
    assert result.price_source == "close" and result.reference_price == 50.0


def test_the_next_open_is_the_candle_after_the_decision_generated_or_recorded() -> None:
    clock = ManualClock(DEFAULT_ORIGIN_MS + 50 * H)  # bar 49 has just closed, bar 50 opens
    source = SimulatedMarketDataSource(seed=42, clock=clock, origin_ms=DEFAULT_ORIGIN_MS)
    prices = NextOpenPrices(source, clock, "1h")
    bars = source.history(BTC, "1h", 0, 60, closed_only=False).set_index("ts")
    quote = prices.price_for(BTC, "buy")
    assert quote == FillQuote(bars.loc[DEFAULT_ORIGIN_MS + 50 * H, "open"], "next_open")
    # the decision's candles stop at bar 49: the open it fills at is not among them
    seen = source.get_recent_candles([BTC], "1h", 5)
    assert max(c.ts for c in seen) == DEFAULT_ORIGIN_MS + 49 * H

    frame = pd.DataFrame(
        {
            "ts": [0, H, 2 * H],
            "open": [10.0, 11.0, 12.5],
            "high": [11.0, 12.0, 13.0],
            "low": [9.0, 10.0, 12.0],
            "close": [10.5, 11.5, 12.8],
            "volume": [1.0, 1.0, 1.0],
        }
    )
    replay_clock = ManualClock(2 * H)  # candles 0 and 1 closed
    replay = ReplayMarketDataSource({BTC: frame}, "1h", clock=replay_clock)
    recorded = NextOpenPrices(replay, replay_clock, "1h")
    assert recorded.price_for(BTC, "sell") == FillQuote(12.5, "next_open")
    replay_clock.set(3 * H)  # every candle closed: nothing opens after the last one
    assert recorded.price_for(BTC, "sell") is None
    assert "end of the data" in recorded.missing_reason(BTC)
    [result] = PaperExecutionGateway(Ledger(1_000), recorded, replay_clock).execute([order("buy")])
    assert result.status == "rejected" and result.reason == recorded.missing_reason(BTC)
