"""DecisionCoordinator in isolation: stages, checkpoints and failure handling (fakes only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.core import DecisionCoordinator, StrategyHalted
from strategy_agent.decision.interfaces import Composer
from strategy_agent.errors import AuthenticationError, DataUnavailableError
from strategy_agent.execution.fill_prices import ClosePrices
from strategy_agent.models import (
    Candle,
    ComposeContext,
    ComposeResult,
    EquityPoint,
    ExecutionResult,
    FeatureVector,
    Fill,
    HistoryRecord,
    InstrumentRef,
    PortfolioView,
    TradeDigest,
    TradeHistoryEntry,
    TradeInstruction,
    TradingConfig,
)

T0 = 1_700_000_000_000


class FakeData:
    def __init__(self) -> None:
        self.fail_next = False

    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        if self.fail_next:
            self.fail_next = False
            raise DataUnavailableError("exchange unreachable")
        return [
            Candle(
                ts=T0,
                instrument=InstrumentRef(symbol=s),
                open=100,
                high=101,
                low=99,
                close=100,
                volume=1,
                interval="1h",
            )
            for s in symbols
        ]

    def available_symbols(self) -> list[str]:
        return ["BTC/USDT"]


class FakeFeatures:
    def compute_features(self, candles: list[Candle]) -> list[FeatureVector]:
        return [
            FeatureVector(ts=c.ts, instrument=c.instrument, values={"close": c.close})
            for c in candles
        ]


class FakeComposer(Composer):
    def __init__(self) -> None:
        self.raise_error: Exception | None = None
        self.contexts: list[ComposeContext] = []

    def compose(self, context: ComposeContext) -> ComposeResult:
        self.contexts.append(context)
        if self.raise_error is not None:
            raise self.raise_error
        instruction = TradeInstruction(
            instruction_id=f"{context.compose_id}:BTC/USDT",
            compose_id=context.compose_id,
            instrument=InstrumentRef(symbol="BTC/USDT"),
            side="buy",
            quantity=1,
        )
        return ComposeResult(instructions=[instruction], proposal=None, audit={"policy": "fake"})


class FakeGateway:
    def __init__(self, avg_price: float | None = 100.0) -> None:
        self.avg_price = avg_price

    def execute(self, instructions: list[TradeInstruction]) -> list[ExecutionResult]:
        return [
            ExecutionResult(
                instruction_id=i.instruction_id,
                compose_id=i.compose_id,
                symbol=i.instrument.symbol,
                side=i.side,
                status="filled",
                requested_qty=i.quantity,
                filled_qty=i.quantity,
                avg_price=self.avg_price,
                fee=0.1,
                ts=T0,
            )
            for i in instructions
        ]


@dataclass
class Applied:
    fill: Fill
    closed_trades: list[TradeHistoryEntry] = field(default_factory=list)


class FakeBook:
    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.marks: list[dict[str, float]] = []

    def mark(self, prices: dict[str, float], ts: int) -> None:
        self.marks.append(dict(prices))

    def get_view(self, ts: int | None = None) -> PortfolioView:
        return PortfolioView(ts=ts or 0, cash=1000.0, total_value=1000.0)

    def apply(self, fill: Fill, enforce: bool = True) -> Applied:
        self.fills.append(fill)
        return Applied(fill=fill)

    def equity_point(self, ts: int) -> EquityPoint:
        return EquityPoint(
            ts=ts,
            strategy_id="s1",
            cash=1000,
            equity=1000,
            realized_pnl=0,
            unrealized_pnl=0,
            fees_paid=0,
            gross_exposure=0,
            net_exposure=0,
        )


class FakeDigest:
    def __init__(self) -> None:
        self.updates = 0

    def update(self, fill: Fill, closed_trades: list[TradeHistoryEntry]) -> None:
        self.updates += 1

    def digest(self, ts: int) -> TradeDigest:
        return TradeDigest(ts=ts)


class FakeStore:
    def __init__(self) -> None:
        self.cycles: list[dict[str, Any]] = []
        self.fail_next = False

    def write_cycle(
        self,
        strategy_id: str,
        records: list[HistoryRecord],
        fills: list[Fill],
        trades: list[TradeHistoryEntry],
        equity: EquityPoint | None,
    ) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        self.cycles.append({"records": records, "fills": fills, "equity": equity})


def make() -> tuple[DecisionCoordinator, dict[str, Any]]:
    parts: dict[str, Any] = {
        "data": FakeData(),
        "composer": FakeComposer(),
        "book": FakeBook(),
        "digest": FakeDigest(),
        "store": FakeStore(),
        "clock": ManualClock(T0 + 3_600_000),
    }
    coordinator = DecisionCoordinator(
        strategy_id="s1",
        trading=TradingConfig(symbols=["BTC/USDT"]),
        prompt_text="buy low",
        features=FakeFeatures(),
        gateway=FakeGateway(),
        constraints={"max_positions": 1},
        **parts,
    )
    return coordinator, parts


def test_cycle_records_four_checkpoints_in_one_write() -> None:
    coordinator, parts = make()
    report = coordinator.run_once()
    assert report.ok and report.cycle == 1
    (written,) = parts["store"].cycles
    assert [r.kind for r in written["records"]] == [
        "features",
        "compose",
        "instructions",
        "execution",
    ]
    assert {r.reference_id for r in written["records"]} == {"s1-000001"}
    assert len(written["fills"]) == 1 and written["fills"][0].strategy_id == "s1"
    assert written["equity"] is not None
    assert parts["digest"].updates == 1


def test_context_carries_prompt_prices_and_constraints() -> None:
    coordinator, parts = make()
    coordinator.run_once()
    context = parts["composer"].contexts[0]
    assert context.prompt_text == "buy low"
    assert context.market_snapshot == {"BTC/USDT": 100.0}
    assert context.constraints == {"max_positions": 1}
    assert context.compose_id == "s1-000001"


@pytest.mark.parametrize("stage", ["data", "compose"])
def test_failure_is_recorded_and_next_cycle_runs(stage: str) -> None:
    coordinator, parts = make()
    if stage == "data":
        parts["data"].fail_next = True
    else:
        parts["composer"].raise_error = RuntimeError("boom")
    report = coordinator.run_once()
    assert not report.ok and report.stage == stage
    error_records = [r for c in parts["store"].cycles for r in c["records"] if r.kind == "error"]
    assert error_records and error_records[0].payload["stage"] == stage
    parts["composer"].raise_error = None
    parts["clock"].advance(3_600_000)
    second = coordinator.run_once()
    assert second.ok and second.cycle == 2


def test_authentication_error_halts_after_recording() -> None:
    coordinator, parts = make()
    parts["composer"].raise_error = AuthenticationError("key refused by provider")
    with pytest.raises(StrategyHalted, match="key refused"):
        coordinator.run_once()
    (written,) = parts["store"].cycles
    assert written["records"][0].kind == "error"
    assert "key refused" in written["records"][0].payload["error"]


def test_preview_neither_executes_nor_records() -> None:
    coordinator, parts = make()
    context, result = coordinator.preview()
    assert result.instructions and context.prompt_text == "buy low"
    assert parts["store"].cycles == [] and parts["book"].fills == []
    assert coordinator.cycles_done == 0


def test_storage_failure_halts_so_resume_uses_what_is_stored() -> None:
    coordinator, parts = make()
    parts["store"].fail_next = True
    with pytest.raises(StrategyHalted, match=r"could not be recorded.*disk full"):
        coordinator.run_once()
    # the failure itself was recorded once the database answered again
    (written,) = parts["store"].cycles
    assert written["records"][0].kind == "error"
    assert written["records"][0].payload["stage"] == "storage"


def test_malformed_fill_fails_the_stage_before_the_book_moves() -> None:
    coordinator, parts = make()

    coordinator._gateway = FakeGateway(avg_price=None)  # a gateway bug: filled at no price
    report = coordinator.run_once()
    assert not report.ok and report.stage == "execution"
    assert parts["book"].fills == []
    assert "apply only filled results" in (report.error or "")


HOUR_MS = 3_600_000


class FormingBarData(FakeData):
    """A source like ccxt's fetch_ohlcv: the last bar is still forming (absurd close)."""

    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        closed = super().get_recent_candles(symbols, interval, lookback)
        forming = [
            c.model_copy(update={"ts": T0 + HOUR_MS, "close": 1e9, "high": 1e9}) for c in closed
        ]
        return closed + forming


class SpyFeatures(FakeFeatures):
    def __init__(self) -> None:
        self.seen: list[list[Candle]] = []

    def compute_features(self, candles: list[Candle]) -> list[FeatureVector]:
        self.seen.append(candles)
        return super().compute_features(candles)


class PriceGateway(FakeGateway):
    """Fills at the price its ``FillPrices`` port gives, like the paper gateway."""

    def __init__(self, prices: ClosePrices) -> None:
        super().__init__()
        self.prices = prices

    def execute(self, instructions: list[TradeInstruction]) -> list[ExecutionResult]:
        results = []
        for result in super().execute(instructions):
            quote = self.prices.price_for(result.symbol, result.side)
            assert quote is not None
            results.append(result.model_copy(update={"avg_price": quote.price}))
        return results


def test_a_still_forming_candle_never_reaches_features_prompt_or_fill() -> None:
    coordinator, parts = make()
    data = FormingBarData()  # now = T0 + 1h: the bar opened at T0 + 1h is forming
    coordinator._data = data
    coordinator._gateway = PriceGateway(ClosePrices(data, parts["clock"], ["BTC/USDT"], "1h"))
    features = SpyFeatures()
    coordinator._features = features
    report = coordinator.run_once()
    assert report.ok
    assert [c.ts for c in features.seen[0]] == [T0]
    context = parts["composer"].contexts[0]
    assert context.market_snapshot == {"BTC/USDT": 100.0}
    assert all(fv.values["close"] == 100.0 for fv in context.features)
    (written,) = parts["store"].cycles
    assert written["fills"][0].price == 100.0
    compose = next(r for r in written["records"] if r.kind == "compose")
    assert compose.payload["prices"] == {"BTC/USDT": 100.0}


def test_only_forming_candles_fail_the_data_stage() -> None:
    coordinator, parts = make()
    parts["clock"].set(T0 + HOUR_MS - 1)  # the bar opened at T0 closes 1 ms from now
    report = coordinator.run_once()
    assert not report.ok and report.stage == "data"
    assert "no closed candle" in (report.error or "")
