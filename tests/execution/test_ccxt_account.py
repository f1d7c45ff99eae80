"""The exchange account: live confirmation, testnet, keys (never stored, logged or shown),
the portfolio limited to the strategy's symbols, and one strategy per symbol and account."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from strategy_agent.errors import ConfigurationError
from strategy_agent.execution.ccxt_account import (
    LIVE_CONFIRMATION_FLAG,
    LiveTradingNotConfirmed,
    account_of,
    check_symbol_conflicts,
    create_trading_exchange,
    require_live_confirmation,
    resolve_exchange_keys,
)
from strategy_agent.execution.ccxt_gateway import GatewayAuthenticationError
from strategy_agent.trading_history.store import SqliteStore
from tests.execution.ccxt_helpers import (
    KEY,
    KEY_ENV,
    SECRET,
    SECRET_ENV,
    STRATEGY,
    MakeGateway,
    exchange_config,
    instruction,
    user_request,
)
from tests.fakes.fake_binance_private import FakeBinancePrivate
from tests.fakes.fake_exchange import FakeExchange

# -- live trading needs a confirmation ---------------------------------------------------------------


def test_live_trading_without_the_confirmation_is_refused_with_how_to_confirm():
    with pytest.raises(LiveTradingNotConfirmed) as raised:
        require_live_confirmation(exchange_config(trading_mode="live"), confirmed=False)
    assert LIVE_CONFIRMATION_FLAG in str(raised.value) and "real money" in str(raised.value)
    require_live_confirmation(exchange_config(trading_mode="live"), confirmed=True)
    require_live_confirmation(exchange_config(trading_mode="testnet"), confirmed=False)


def test_the_gateway_refuses_live_unconfirmed_before_touching_keys_or_network(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(LiveTradingNotConfirmed):
        make_gateway(trading_mode="live")
    assert fake_exchange.requests == []


def test_a_confirmed_live_gateway_is_not_in_sandbox_mode(make_gateway: MakeGateway):
    gateway = make_gateway(trading_mode="live", live_confirmed=True)
    assert not gateway.exchange.isSandboxModeEnabled


def test_paper_mode_sends_no_orders_through_this_gateway(make_gateway: MakeGateway):
    with pytest.raises(ConfigurationError, match="paper"):
        make_gateway(trading_mode="paper")


# -- testnet -------------------------------------------------------------------------------------------


def test_testnet_switches_ccxt_to_the_sandbox_and_keeps_the_test_server(
    make_gateway: MakeGateway, fake_exchange: FakeExchange
):
    gateway = make_gateway(trading_mode="testnet")
    assert gateway.exchange.isSandboxModeEnabled
    assert gateway.exchange.options["sandboxMode"] is True
    gateway.execute([instruction("ETH/USDT", "sell", 0.1)])
    assert fake_exchange.requests_to("/api/v3/order")


def test_testnet_without_a_test_server_points_at_the_exchange_testnet():
    keys = resolve_exchange_keys(
        exchange_config(), environ={KEY_ENV: KEY, SECRET_ENV: SECRET}, secrets_path="/nowhere"
    )
    exchange = create_trading_exchange(exchange_config(trading_mode="testnet"), keys)
    assert "testnet" in exchange.urls["api"]["private"]
    live = create_trading_exchange(exchange_config(trading_mode="live"), keys)
    assert "testnet" not in live.urls["api"]["private"]


def test_an_exchange_without_a_testnet_is_refused_clearly(make_gateway: MakeGateway):
    with pytest.raises(ConfigurationError) as raised:
        make_gateway(config=exchange_config(exchange_id="kraken"))
    assert "kraken has no testnet" in str(raised.value) and "paper" in str(raised.value)


# -- keys ------------------------------------------------------------------------------------------------


def test_keys_come_from_the_session_then_the_config_then_env_then_the_secrets_file(tmp_path: Path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[exchange]\n{KEY_ENV} = "file-key-1234"\n{SECRET_ENV} = "file-secret"\n')
    env = {KEY_ENV: "env-key-1234", SECRET_ENV: "env-secret"}
    config = exchange_config()

    from_file = resolve_exchange_keys(config, secrets_path=secrets, environ={})
    from_env = resolve_exchange_keys(config, secrets_path=secrets, environ=env)
    in_process = exchange_config(api_key=SecretStr("cfg-key-1234"), secret_key=SecretStr("cfg-sec"))
    from_config = resolve_exchange_keys(in_process, secrets_path=secrets, environ=env)
    from_session = resolve_exchange_keys(
        in_process, ("typed-key-1234", "typed-secret"), secrets_path=secrets, environ=env
    )

    assert from_file.api_key.get_secret_value() == "file-key-1234"
    assert from_env.secret.get_secret_value() == "env-secret"
    assert from_config.api_key.get_secret_value() == "cfg-key-1234"
    assert from_session.api_key.get_secret_value() == "typed-key-1234"
    assert (from_env.api_key_env, from_env.secret_env) == (KEY_ENV, SECRET_ENV)


def test_the_default_key_variables_are_named_after_the_exchange():
    keys = resolve_exchange_keys(
        exchange_config(exchange_id="okx", api_key_env=None, secret_key_env=None),
        environ={"OKX_API_KEY": "k-123456", "OKX_SECRET": "s-123456", "OKX_PASSWORD": "p-123456"},
        secrets_path="/nowhere",
    )
    assert (keys.api_key_env, keys.secret_env) == ("OKX_API_KEY", "OKX_SECRET")
    assert keys.password is not None and keys.password.get_secret_value() == "p-123456"


def test_a_missing_secret_names_its_variable_and_shows_no_key():
    with pytest.raises(ConfigurationError) as raised:
        resolve_exchange_keys(exchange_config(), environ={KEY_ENV: KEY}, secrets_path="/nowhere")
    message = str(raised.value)
    assert SECRET_ENV in message and KEY_ENV not in message.split("set")[0]
    assert KEY not in message


def test_no_key_reaches_the_database_the_logs_or_an_error_message(
    make_gateway: MakeGateway,
    account: FakeBinancePrivate,
    store: SqliteStore,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)  # ccxt logs every request with its headers at DEBUG
    gateway = make_gateway()
    seen: list[str] = []
    results = gateway.execute([instruction("BTC/USDT", "buy", 0.01)])
    account.reject_next(-1013, f"Filter failure: LOT_SIZE (key {KEY}, secret {SECRET})")
    results += gateway.execute([instruction("ETH/USDT", "sell", 0.1)])
    seen += [r.reason or "" for r in results]
    account.auth_failure = True
    fresh = make_gateway()
    with pytest.raises(GatewayAuthenticationError) as raised:
        fresh.execute([instruction("SOL/USDT", "buy", 1.0)])
    seen.append(str(raised.value))
    store.db.conn.commit()

    assert "X-MBX-APIKEY" in caplog.text and "***" in caplog.text  # the header was logged, scrubbed
    stored = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    for secret in (KEY, SECRET):
        assert secret not in caplog.text
        assert secret.encode() not in stored
        assert not any(secret in text for text in seen)
    assert "Filter failure: LOT_SIZE" in seen[1]


# -- portfolio and symbol ownership ------------------------------------------------------------------


def test_the_portfolio_holds_only_the_strategy_symbols(
    make_gateway: MakeGateway, account: FakeBinancePrivate
):
    account.balances |= {"BTC": 0.5, "ETH": 2.0, "SOL": 30.0}
    account.set_position("BTCUSDT", 0.02, 80_000.0)
    account.set_position("ETHUSDT", -1.0, 3_000.0)

    spot = make_gateway().fetch_portfolio(["ETH/USDT"])
    swap = make_gateway("swap").fetch_portfolio(["ETH/USDT:USDT"])

    assert list(spot.positions) == ["ETH/USDT"] and spot.positions["ETH/USDT"].quantity == 2.0
    assert spot.cash == pytest.approx(account.balances["USDT"])
    assert list(swap.positions) == ["ETH/USDT:USDT"]
    short = swap.positions["ETH/USDT:USDT"]
    assert (short.quantity, short.avg_price, short.trade_type) == (-1.0, 3_000.0, "short")
    assert swap.cash > 0 and swap.strategy_id == STRATEGY


def test_two_strategies_on_one_symbol_of_one_account_are_refused(store: SqliteStore):
    account = account_of(exchange_config())
    check_symbol_conflicts(store, "binance", account, ["BTC/USDT"], strategy_id=STRATEGY)  # itself

    with pytest.raises(ConfigurationError) as raised:
        check_symbol_conflicts(store, "binance", account, ["ETH/USDT", "BTC/USDT"])
    assert "BTC/USDT" in str(raised.value) and STRATEGY in str(raised.value)

    check_symbol_conflicts(store, "binance", account, ["ETH/USDT"])  # another symbol
    other_key = account_of(exchange_config(api_key_env="OTHER_KEY"))
    check_symbol_conflicts(store, "binance", other_key, ["BTC/USDT"])  # another account
    live = account_of(exchange_config(trading_mode="live"))
    check_symbol_conflicts(store, "binance", live, ["BTC/USDT"])  # testnet is not live

    store.set_status(STRATEGY, "stopped", None, 1)
    check_symbol_conflicts(store, "binance", account, ["BTC/USDT"])  # ended: symbol free


def test_paper_strategies_never_block_a_symbol(db_path: Path):
    with SqliteStore(db_path) as store:
        store.create_strategy(user_request(["BTC/USDT"], trading_mode="paper"), 0, "paper1")
        paper_account = account_of(exchange_config(trading_mode="paper"))
        check_symbol_conflicts(store, "binance", paper_account, ["BTC/USDT"])
