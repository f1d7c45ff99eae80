"""Fixtures of the execution tests: the fake Binance with its private endpoints, a store, gateways."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strategy_agent.data.ccxt_exchange import RetryPolicy
from strategy_agent.execution.ccxt_gateway import CcxtExecutionGateway
from strategy_agent.trading_history.store import SqliteStore
from tests.execution.ccxt_helpers import (
    KEY,
    KEY_ENV,
    SECRET,
    SECRET_ENV,
    STRATEGY,
    exchange_config,
    user_request,
)
from tests.fakes.fake_binance_private import FakeBinancePrivate
from tests.fakes.fake_exchange import FAST_CCXT_CONFIG, FakeExchange, fake_exchange

__all__ = ["fake_exchange"]


@pytest.fixture
def account(fake_exchange: FakeExchange) -> FakeBinancePrivate:
    """The fake's account: 10,000 USDT and 2 ETH on spot, a 10,000 USDT futures wallet."""
    return FakeBinancePrivate(fake_exchange)


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(db_path) as opened:
        opened.create_strategy(user_request(["BTC/USDT"]), 0, strategy_id=STRATEGY)
        yield opened


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the gateways asked for (they never really sleep in tests)."""
    return []


@pytest.fixture
def make_gateway(
    fake_exchange: FakeExchange,
    account: FakeBinancePrivate,
    store: SqliteStore,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Callable[..., CcxtExecutionGateway]:
    """``make_gateway(market_type="spot", **overrides)``: a gateway on the fake, keys in env."""
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)

    def make(
        market_type: str = "spot", trading_mode: str = "testnet", **kwargs: Any
    ) -> CcxtExecutionGateway:
        config = kwargs.pop("config", None) or exchange_config(market_type, trading_mode)
        kwargs.setdefault("store", store)
        kwargs.setdefault("strategy_id", STRATEGY)
        kwargs.setdefault("clock", fake_exchange.clock)
        kwargs.setdefault("api_url", fake_exchange.base_url)
        kwargs.setdefault("ccxt_config", FAST_CCXT_CONFIG)
        kwargs.setdefault("retry", RetryPolicy(attempts=3, sleep=sleeps.append))
        kwargs.setdefault("secrets_path", str(tmp_path / "no-secrets.toml"))
        return CcxtExecutionGateway(config, **kwargs)

    return make
