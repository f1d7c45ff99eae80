"""Paper trading on a real exchange's live data, end to end against the fake Binance.

The runtime is wired from the config alone (exchange id, paper mode, the
fake's URL): ``CcxtMarketDataSource`` candles, ``CcxtMarketRules`` for the
guardrails, fills at the ticker (ask for buys, bid for sells, plus slippage)
with the source recorded, the exchange's snapshot in the context and the
prompt, funding of paper swaps settled at each funding time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from strategy_agent.data.ccxt_market import CcxtMarketDataSource
from strategy_agent.data.ccxt_rules import CcxtMarketRules
from strategy_agent.decision.prompt_context import render_context
from strategy_agent.errors import ConfigurationError
from strategy_agent.execution.fill_prices import TickerPrices
from strategy_agent.factory import StrategyRuntime, open_runtime
from strategy_agent.models import ExchangeConfig, Fill, ModelConfig, TradingConfig, UserRequest
from strategy_agent.reporting import strategy_reports
from strategy_agent.scheduling import CandleCloseScheduler
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_binance_public import FUNDING_PERIOD_MS
from tests.fakes.fake_exchange import FAKE_NOW_MS, FakeExchange

HOUR = 3_600_000
SLIPPAGE_BPS = 5.0


def request_for(fake: FakeExchange, model: str = "buy_and_hold", **changes: Any) -> UserRequest:
    market_type = changes.pop("market_type", "spot")
    symbols = changes.pop("symbols", ["BTC/USDT", "ETH/USDT"])
    return UserRequest(
        llm=ModelConfig(provider="builtin", model_id=model),
        exchange=ExchangeConfig(
            exchange_id="binance",
            trading_mode="paper",
            market_type=market_type,
            fee_bps=10,
            slippage_bps=SLIPPAGE_BPS,
            api_url=fake.base_url,
        ),
        trading=TradingConfig(
            strategy_name="live paper",
            symbols=symbols,
            interval="1h",
            lookback=48,
            max_position_pct=0.4,
            **changes,
        ),
    )


def opened(
    db_path: Path, fake: FakeExchange, request: UserRequest
) -> tuple[StrategyRuntime, SqliteStore, str]:
    store = SqliteStore(db_path)
    sid = store.create_strategy(request, now_ms=0)
    return open_runtime(store, sid, clock=fake.clock), store, sid


def test_the_config_alone_wires_the_exchange_its_rules_and_ticker_fills(
    db_path: Path, fake_exchange: FakeExchange
) -> None:
    runtime, _, _ = opened(db_path, fake_exchange, request_for(fake_exchange))
    assert runtime.ports is not None and runtime.ports.is_live
    assert isinstance(runtime.ports.data, CcxtMarketDataSource)
    assert isinstance(runtime.rules, CcxtMarketRules)
    assert isinstance(runtime.ports.fill_prices, TickerPrices)
    # the guardrails get the exchange's lot size and minimum cost
    assert runtime.limits.model_dump()["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert runtime.rules.rules_for("BTC/USDT").qty_step == pytest.approx(0.00001)
    assert runtime.rules.rules_for("BTC/USDT").min_notional == pytest.approx(5.0)
    assert isinstance(runtime.scheduler(1.0), CandleCloseScheduler)


def test_cycles_decide_on_closed_candles_and_fill_at_the_ticker_with_slippage(
    db_path: Path, fake_exchange: FakeExchange
) -> None:
    runtime, store, sid = opened(db_path, fake_exchange, request_for(fake_exchange))
    report = runtime.step()
    assert report.ok, report.error
    assert report.ts == FAKE_NOW_MS  # the wall clock (the fake's), not a stepped one

    # the forming candle (opened at the top of this hour) is never used
    last_closed = FAKE_NOW_MS // HOUR * HOUR - HOUR
    assert report.context is not None
    for vector in report.context.features:
        assert vector.meta is not None and vector.meta["candle_ts"] == last_closed
    closed_close = fake_exchange.candles("BTC/USDT", "1h", last_closed, last_closed + 1)[0][4]
    assert report.context.market_snapshot["BTC/USDT"] == closed_close

    # buys fill at the ask now, plus the slippage, and say so
    buys = [r for r in report.executions if r.status == "filled"]
    assert {r.symbol for r in buys} == {"BTC/USDT", "ETH/USDT"}
    for result in buys:
        ask = fake_exchange.last_price(result.symbol) + 0.01  # the fake's ask: last + one tick
        assert result.side == "buy" and result.price_source == "ask"
        assert result.reference_price == pytest.approx(ask)
        assert result.avg_price == pytest.approx(ask * (1 + SLIPPAGE_BPS / 1e4))
    (execution,) = store.records(sid, kind="execution")
    assert {r["price_source"] for r in execution.payload["results"]} == {"ask"}
    fills = store.load_fills(sid)
    assert [f.price for f in fills] == [r.avg_price for r in buys]

    # the exchange's snapshot reached the context, the prompt and the compose record
    quotes = report.context.market_quotes
    assert set(quotes) == {"BTC/USDT", "ETH/USDT"}
    assert quotes["BTC/USDT"]["bid"] < quotes["BTC/USDT"]["ask"]
    prompt = render_context(report.context)
    assert "quotes (exchange now):\nsym|last|bid|ask|24h%" in prompt
    (compose,) = store.records(sid, kind="compose")
    assert compose.payload["quotes"] == quotes

    # an hour later the next candle has closed: the next cycle decides on it, and sells at the bid
    fake_exchange.clock.advance(HOUR)
    second = runtime.step()
    assert second.ok and second.context is not None
    assert second.context.features[0].meta is not None
    assert second.context.features[0].meta["candle_ts"] == last_closed + HOUR


def test_a_sell_fills_at_the_bid_minus_slippage(db_path: Path, fake_exchange: FakeExchange) -> None:
    runtime, _, _ = opened(db_path, fake_exchange, request_for(fake_exchange))
    assert runtime.step().ok
    fake_exchange.clock.advance(HOUR)
    closing = runtime.close_positions()
    sells = [r for r in closing.executions if r.status == "filled"]
    assert sells and all(r.side == "sell" for r in sells)
    for result in sells:
        bid = fake_exchange.last_price(result.symbol) - 0.01
        assert result.price_source == "bid"
        assert result.reference_price == pytest.approx(bid)
        assert result.avg_price == pytest.approx(bid * (1 - SLIPPAGE_BPS / 1e4))


def test_an_unknown_symbol_or_a_spot_symbol_for_swaps_is_refused_at_start(
    db_path: Path, fake_exchange: FakeExchange
) -> None:
    store = SqliteStore(db_path)
    unknown = store.create_strategy(request_for(fake_exchange, symbols=["BTC/USDX"]), now_ms=0)
    with pytest.raises(ConfigurationError, match="'BTC/USDX' is not a market on binance"):
        open_runtime(store, unknown, clock=fake_exchange.clock)
    wrong_kind = store.create_strategy(
        request_for(fake_exchange, market_type="swap", allow_short=True), now_ms=0
    )
    with pytest.raises(ConfigurationError, match="market type swap trades perpetual swaps"):
        open_runtime(store, wrong_kind, clock=fake_exchange.clock)


# -- funding of paper swaps ----------------------------------------------------------------------


def test_a_paper_swap_pays_funding_at_each_funding_time(
    db_path: Path, fake_exchange: FakeExchange
) -> None:
    fake_exchange.funding_rate = 0.0005  # 0.05 % per 8 h, paid by longs
    request = request_for(fake_exchange, market_type="swap", symbols=["BTC/USDT:USDT"])
    runtime, store, sid = opened(db_path, fake_exchange, request)
    assert runtime.step().ok  # buys the perp
    held = runtime.ledger.quantity("BTC/USDT:USDT")
    assert held > 0 and runtime.ledger.funding_paid == 0.0

    next_funding = (FAKE_NOW_MS // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS
    paid_at: list[int] = []
    while fake_exchange.clock.now_ms() < next_funding + 2 * HOUR:
        fake_exchange.clock.advance(HOUR)
        report = runtime.step()
        assert report.ok, report.error
        if runtime.ledger.funding_paid:
            paid_at.append(report.ts)
    # settled once, by the first cycle after the funding time, on the position held
    first_paid = paid_at[0]
    assert next_funding <= first_paid < next_funding + HOUR
    (record,) = store.records(sid, kind="funding")
    (payment,) = record.payload["payments"]
    assert payment["funding_ts"] == next_funding
    assert payment["quantity"] == pytest.approx(held)
    assert payment["rate"] == pytest.approx(0.0005)
    expected = held * payment["mark_price"] * 0.0005
    assert payment["amount"] == pytest.approx(expected)
    assert runtime.ledger.funding_paid == pytest.approx(expected)
    assert record.payload["funding_total"] == pytest.approx(expected)

    # the equity identity holds with funding, and the stored equity point carries it
    ledger = runtime.ledger
    identity = (
        ledger.initial_capital
        + ledger.realized_pnl
        + ledger.unrealized_pnl
        - ledger.fees_paid
        - ledger.funding_paid
    )
    assert math.isclose(ledger.equity, identity, rel_tol=1e-12)
    latest = store.latest_equity(sid)
    assert latest is not None and latest.equity == pytest.approx(ledger.equity)

    # the report adds it up, and a resumed ledger replays the payment exactly
    (report_row,) = strategy_reports(db_path)
    assert report_row["funding_paid"] == pytest.approx(expected)
    assert report_row["reconciled"]
    resumed = open_runtime(store, sid, clock=fake_exchange.clock)
    assert resumed.ledger.funding_paid == ledger.funding_paid
    assert resumed.ledger.cash == ledger.cash


class FailingComposer:
    """A composer whose policy fails: the cycle fails after the funding due was worked out."""

    def compose(self, context: Any) -> Any:
        raise RuntimeError("policy crashed")


def test_a_short_perp_earns_a_positive_rate_and_a_failed_cycle_settles_nothing(
    db_path: Path, fake_exchange: FakeExchange
) -> None:
    fake_exchange.funding_rate = 0.0002
    request = request_for(
        fake_exchange, model="noop", market_type="swap", symbols=["ETH/USDT:USDT"]
    )
    runtime, store, sid = opened(db_path, fake_exchange, request)
    runtime.ledger.apply(_short_fill(sid, FAKE_NOW_MS - HOUR), enforce=False)  # a short, held
    assert runtime.step().ok
    next_funding = (FAKE_NOW_MS // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS
    fake_exchange.clock.set(next_funding + 5_000)

    composer = runtime.coordinator._composer
    runtime.coordinator._composer = FailingComposer()  # type: ignore[assignment]
    failed = runtime.step()
    assert not failed.ok and failed.stage == "compose"
    assert runtime.ledger.funding_paid == 0.0 and store.records(sid, kind="funding") == []

    runtime.coordinator._composer = composer
    assert runtime.step().ok
    (record,) = store.records(sid, kind="funding")
    (payment,) = record.payload["payments"]
    assert payment["quantity"] == -1.0 and payment["funding_ts"] == next_funding
    assert runtime.ledger.funding_paid == pytest.approx(payment["amount"])
    assert payment["amount"] == pytest.approx(-1.0 * payment["mark_price"] * 0.0002)
    assert runtime.ledger.funding_paid < 0  # a short earns a positive rate

    fake_exchange.clock.advance(HOUR)  # no funding time passed: nothing more
    assert runtime.step().ok
    assert len(store.records(sid, kind="funding")) == 1


def _short_fill(sid: str, ts: int) -> Fill:
    return Fill(
        ts=ts,
        strategy_id=sid,
        compose_id="manual",
        instruction_id="manual:ETH",
        symbol="ETH/USDT:USDT",
        side="sell",
        quantity=1.0,
        price=3000.0,
        fee=0.0,
    )
