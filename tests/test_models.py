"""Boundary validation of the DTOs: what must be refused is refused, with a reason."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from strategy_agent.models import (
    Candle,
    ExchangeConfig,
    ExecutionResult,
    FeatureVector,
    Fill,
    HistoryRecord,
    InstrumentRef,
    LlmDecisionItem,
    LlmPlanProposal,
    MarketRules,
    ModelConfig,
    PortfolioView,
    TradeInstruction,
    TradingConfig,
    UserRequest,
    interval_ms,
)

BTC = InstrumentRef(symbol="BTC/USDT")


def candle(**overrides: Any) -> Candle:
    fields: dict[str, Any] = {
        "ts": 0,
        "instrument": BTC,
        "open": 100.0,
        "high": 110.0,
        "low": 90.0,
        "close": 105.0,
        "volume": 1.0,
        "interval": "1h",
    }
    fields.update(overrides)
    return Candle(**fields)


def test_instrument_symbol_is_stripped_and_not_blank() -> None:
    assert InstrumentRef(symbol="  ETH/USDT ").symbol == "ETH/USDT"
    for bad in ["", "   "]:
        with pytest.raises(ValidationError):
            InstrumentRef(symbol=bad)


def test_candle_valid_and_ohlc_consistency() -> None:
    assert candle().close == 105.0
    with pytest.raises(ValidationError, match="low <= open,close <= high"):
        candle(high=104.0)
    with pytest.raises(ValidationError, match="low <= open,close <= high"):
        candle(low=101.0)


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_candle_refuses_non_finite(field: str, value: float) -> None:
    with pytest.raises(ValidationError):
        candle(**{field: value})


def test_candle_refuses_negative_price_volume_ts_and_unknown_interval() -> None:
    with pytest.raises(ValidationError):
        candle(close=-1.0)
    with pytest.raises(ValidationError):
        candle(volume=-1.0)
    with pytest.raises(ValidationError):
        candle(ts=-5)
    with pytest.raises(ValidationError):
        candle(interval="7m")


def test_interval_ms_known_and_unknown() -> None:
    assert interval_ms("1m") == 60_000
    assert interval_ms("1d") == 86_400_000
    with pytest.raises(ValueError, match="use one of"):
        interval_ms("2w")


def test_models_are_frozen_and_refuse_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        InstrumentRef(symbol="BTC/USDT", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        BTC.symbol = "ETH/USDT"  # type: ignore[misc]


def test_decision_item_actions_and_confidence() -> None:
    item = LlmDecisionItem(instrument=BTC, action="buy", target_qty=0.5, confidence=0.7)
    assert item.target_qty == 0.5
    assert LlmDecisionItem(instrument=BTC, action="sell", target_qty=-1.0).target_qty == -1.0
    with pytest.raises(ValidationError):
        LlmDecisionItem(instrument=BTC, action="hodl", target_qty=1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        LlmDecisionItem(instrument=BTC, action="buy", target_qty=math.nan)
    with pytest.raises(ValidationError):
        LlmDecisionItem(instrument=BTC, action="buy", target_qty=1, confidence=1.5)


def test_trade_instruction_side_and_positive_quantity() -> None:
    ok = TradeInstruction(
        instruction_id="c1:BTC/USDT", compose_id="c1", instrument=BTC, side="sell", quantity=0.1
    )
    assert ok.price_mode == "market"
    for bad in [{"side": "short"}, {"quantity": 0.0}, {"quantity": -1.0}, {"quantity": math.inf}]:
        fields: dict[str, Any] = {
            "instruction_id": "c1:BTC/USDT",
            "compose_id": "c1",
            "instrument": BTC,
            "side": "buy",
            "quantity": 1.0,
        }
        fields.update(bad)
        with pytest.raises(ValidationError):
            TradeInstruction(**fields)


def test_fill_and_execution_result_bounds() -> None:
    Fill(ts=1, symbol="BTC/USDT", side="buy", quantity=1, price=10, fee=0)
    with pytest.raises(ValidationError):
        Fill(ts=1, symbol="BTC/USDT", side="buy", quantity=1, price=10, fee=-0.1)
    with pytest.raises(ValidationError):
        Fill(ts=1, symbol="", side="buy", quantity=1, price=10, fee=0)
    with pytest.raises(ValidationError):
        ExecutionResult(
            instruction_id="i",
            compose_id="c",
            symbol="BTC/USDT",
            side="buy",
            status="pending",  # type: ignore[arg-type]
            requested_qty=1,
            ts=1,
        )


def test_history_kinds_and_plan_ts() -> None:
    HistoryRecord(ts=1, kind="compose", reference_id="c1", payload={})
    with pytest.raises(ValidationError):
        HistoryRecord(ts=1, kind="gossip", reference_id="c1", payload={})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        LlmPlanProposal(ts=-1)


def test_feature_vector_refuses_nan_values() -> None:
    with pytest.raises(ValidationError):
        FeatureVector(ts=1, instrument=BTC, values={"rsi_14": math.nan})


def test_portfolio_view_refuses_negative_fees() -> None:
    with pytest.raises(ValidationError):
        PortfolioView(ts=1, cash=10, fees_paid=-1)


def test_market_rules_need_positive_step() -> None:
    assert MarketRules(symbol="BTC/USDT", qty_step=1e-5).contract_size == 1.0
    with pytest.raises(ValidationError):
        MarketRules(symbol="BTC/USDT", qty_step=0)


def test_model_config_key_is_secret_and_never_dumped() -> None:
    config = ModelConfig(provider="openai", model_id="gpt-4o-mini", api_key=SecretStr("sk-XYZ"))
    assert "sk-XYZ" not in config.model_dump_json()
    assert "sk-XYZ" not in repr(config)
    assert config.api_key is not None and config.api_key.get_secret_value() == "sk-XYZ"


def test_env_var_names_only() -> None:
    assert ModelConfig(api_key_env="OPENAI_API_KEY").api_key_env == "OPENAI_API_KEY"
    with pytest.raises(ValidationError, match="NAME of an environment variable"):
        ModelConfig(api_key_env="sk-live-123")
    with pytest.raises(ValidationError, match="NAME of an environment variable"):
        ExchangeConfig(secret_key_env="abc def")


def test_trading_config_symbols_and_caps() -> None:
    assert TradingConfig(symbols=[" BTC/USDT "]).symbols == ["BTC/USDT"]
    with pytest.raises(ValidationError, match="at least one"):
        TradingConfig(symbols=[])
    with pytest.raises(ValidationError, match="must not repeat"):
        TradingConfig(symbols=["BTC/USDT", "BTC/USDT"])
    with pytest.raises(ValidationError):
        TradingConfig(initial_capital=0)
    with pytest.raises(ValidationError):
        TradingConfig(max_position_qty={"BTC/USDT": -1.0})


def test_user_request_spot_is_long_only_without_leverage() -> None:
    with pytest.raises(ValidationError, match="allow_short"):
        UserRequest(trading=TradingConfig(allow_short=True))
    with pytest.raises(ValidationError, match="max_leverage"):
        UserRequest(trading=TradingConfig(max_leverage=3))
    margin = UserRequest(
        exchange=ExchangeConfig(market_type="margin"),
        trading=TradingConfig(allow_short=True, max_leverage=3),
    )
    assert margin.trading.allow_short
