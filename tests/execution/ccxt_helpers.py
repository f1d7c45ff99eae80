"""Helpers of the execution tests: keys, configs and instructions as the engine writes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strategy_agent.execution.ccxt_gateway import CcxtExecutionGateway
from strategy_agent.models import (
    ExchangeConfig,
    InstrumentRef,
    TradeInstruction,
    TradingConfig,
    UserRequest,
)

KEY = "fake-api-key-0123456789abcdef"
SECRET = "fake-secret-abcdef9876543210"
KEY_ENV = "TEST_BINANCE_KEY"
SECRET_ENV = "TEST_BINANCE_SECRET"
STRATEGY = "s1"


def exchange_config(
    market_type: str = "spot", trading_mode: str = "testnet", **kwargs: Any
) -> ExchangeConfig:
    return ExchangeConfig(
        exchange_id=kwargs.pop("exchange_id", "binance"),
        trading_mode=trading_mode,  # type: ignore[arg-type]
        market_type=market_type,  # type: ignore[arg-type]
        api_key_env=kwargs.pop("api_key_env", KEY_ENV),
        secret_key_env=kwargs.pop("secret_key_env", SECRET_ENV),
        **kwargs,
    )


def user_request(symbols: list[str], market_type: str = "spot", **kwargs: Any) -> UserRequest:
    return UserRequest(
        exchange=exchange_config(market_type, **kwargs),
        trading=TradingConfig(symbols=symbols),
    )


def instruction(
    symbol: str,
    side: str,
    quantity: float,
    *,
    compose_id: str = "s1-000001",
    target: float | None = None,
    suffix: str = "",
    **kwargs: Any,
) -> TradeInstruction:
    """An instruction as the guardrails write it (``target`` is the signed target position)."""
    return TradeInstruction(
        instruction_id=f"{compose_id}:{symbol}{suffix}",
        compose_id=compose_id,
        instrument=InstrumentRef(symbol=symbol),
        side=side,  # type: ignore[arg-type]
        quantity=quantity,
        meta=None if target is None else {"target_qty": target},
        **kwargs,
    )


MakeGateway = Callable[..., CcxtExecutionGateway]
