"""The trading account on a real exchange: keys, testnet, the live confirmation, one symbol one owner.

Keys are never stored. They come, in this order, from the key typed in the app
for this session, the ``ExchangeConfig`` itself (``api_key``/``secret_key``,
set in-process and excluded from every dump), the environment variables the
config names (``api_key_env``/``secret_key_env``, else ``<EXCHANGE>_API_KEY``
and ``<EXCHANGE>_SECRET``), then ``.streamlit/secrets.toml`` (the same names at
the top level or under ``[exchange]``). A passphrase (OKX, KuCoin...) is read
the same way from ``<EXCHANGE>_PASSWORD`` when present.

``trading_mode = "testnet"`` switches ccxt to the exchange's sandbox; an
exchange without one is refused with what to do instead. A testnet strategy
reads its candles from the sandbox too where ccxt's sandbox URLs include the
public endpoints (``create_sandbox_data_exchange``), else from the live market. ``"live"`` needs an
explicit confirmation (``require_live_confirmation``).
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ccxt
from pydantic import SecretStr

from strategy_agent.data.ccxt_exchange import create_exchange, redirect_api
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import ExchangeConfig
from strategy_agent.secrets import redact

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

LIVE_CONFIRMATION_FLAG = "--i-understand-live-trading"
DEFAULT_SECRETS_PATH = ".streamlit/secrets.toml"
# Statuses of a strategy that no longer trades (its symbols are free again).
_ENDED_STATUSES = ("stopped",)


class LiveTradingNotConfirmed(ConfigurationError):
    """Live trading was asked for without the explicit confirmation."""


@dataclass(frozen=True)
class ExchangeKeys:
    """An exchange key pair (and passphrase) plus where it was looked for (names only)."""

    api_key: SecretStr
    secret: SecretStr
    api_key_env: str
    secret_env: str
    password: SecretStr | None = None

    def where(self) -> str:
        """Which key to check, in words (names of variables, never values)."""
        return (
            f"the API key in {self.api_key_env} and its secret in {self.secret_env} "
            f"(environment, .streamlit/secrets.toml or the app's session)"
        )


def require_live_confirmation(config: ExchangeConfig, confirmed: bool) -> None:
    """Raise ``LiveTradingNotConfirmed`` for live trading that was not explicitly confirmed."""
    if config.trading_mode == "live" and not confirmed:
        raise LiveTradingNotConfirmed(
            f"trading_mode 'live' sends real orders with real money to {config.exchange_id}: "
            f"confirm it with {LIVE_CONFIRMATION_FLAG} on the command line or by typing the "
            f"confirmation in the form; try trading_mode 'testnet' or 'paper' first"
        )


def key_env_names(config: ExchangeConfig) -> tuple[str, str]:
    """The environment variables of the key and the secret (``BINANCE_API_KEY``, ``BINANCE_SECRET``)."""
    prefix = _env_prefix(config.exchange_id)
    return (
        config.api_key_env or f"{prefix}_API_KEY",
        config.secret_key_env or f"{prefix}_SECRET",
    )


def account_of(config: ExchangeConfig) -> str:
    """Who owns the orders: exchange, mode and key variable (``binance:testnet:BINANCE_API_KEY``)."""
    return f"{config.exchange_id}:{config.trading_mode}:{key_env_names(config)[0]}"


def resolve_exchange_keys(
    config: ExchangeConfig,
    session_keys: tuple[str, str] | None = None,
    secrets_path: str | Path = DEFAULT_SECRETS_PATH,
    environ: Mapping[str, str] | None = None,
) -> ExchangeKeys:
    """The key pair for ``config`` (see the module doc for the order of the sources).

    Raises ``ConfigurationError`` naming the variables to set when a key or
    its secret is missing (never showing a value).
    """
    env = os.environ if environ is None else environ
    key_env, secret_env = key_env_names(config)
    password_env = f"{_env_prefix(config.exchange_id)}_PASSWORD"
    file_values = _secrets_file(Path(secrets_path))
    session_key, session_secret = session_keys or (None, None)
    api_key = _first(
        session_key, _secret(config.api_key), env.get(key_env), file_values.get(key_env.upper())
    )
    secret = _first(
        session_secret,
        _secret(config.secret_key),
        env.get(secret_env),
        file_values.get(secret_env.upper()),
    )
    missing = [name for name, value in ((key_env, api_key), (secret_env, secret)) if not value]
    if missing or api_key is None or secret is None:
        raise ConfigurationError(
            f"no {' and no '.join(missing)} for {config.exchange_id} {config.trading_mode}: set "
            f"the environment variable{'s' if len(missing) > 1 else ''} {', '.join(missing)}, "
            f'add {missing[0]} = "..." to {secrets_path}, or type the key in the app for this '
            f"session (keys are never stored)"
        )
    password = _first(env.get(password_env), file_values.get(password_env))
    return ExchangeKeys(
        api_key=SecretStr(api_key),
        secret=SecretStr(secret),
        api_key_env=key_env,
        secret_env=secret_env,
        password=SecretStr(password) if password else None,
    )


def create_trading_exchange(
    config: ExchangeConfig,
    keys: ExchangeKeys,
    *,
    api_url: str | None = None,
    ccxt_config: Mapping[str, Any] | None = None,
) -> ccxt.Exchange:
    """A ccxt instance with the keys set, in sandbox mode for ``testnet``.

    ``api_url`` (a test server) is applied after the sandbox switch, so the
    testnet's paths are kept. Refuses the simulated market and paper mode.
    """
    if config.exchange_id == "simulated" or config.trading_mode == "paper":
        raise ConfigurationError(
            f"{config.exchange_id} {config.trading_mode} does not send orders to an exchange: "
            f"paper trading uses the paper gateway; use trading_mode 'testnet' or 'live'"
        )
    settings: dict[str, Any] = dict(ccxt_config or {})
    options = dict(settings.get("options") or {})
    options.setdefault("defaultType", "swap" if config.market_type == "swap" else "spot")
    settings |= {
        "apiKey": keys.api_key.get_secret_value(),
        "secret": keys.secret.get_secret_value(),
        "options": options,
    }
    if keys.password is not None:
        settings["password"] = keys.password.get_secret_value()
    guard_logs([settings["apiKey"], settings["secret"], settings.get("password")])
    exchange = create_exchange(config.exchange_id, config=settings)
    if config.trading_mode == "testnet":
        enable_sandbox(exchange)
    if api_url:
        redirect_api(exchange, api_url)
    return exchange


def enable_sandbox(exchange: ccxt.Exchange) -> None:
    """Switch ``exchange`` to its testnet; ``ConfigurationError`` when ccxt knows none."""
    try:
        if not exchange.urls.get("test"):
            raise ccxt.NotSupported(f"{exchange.id} does not have a sandbox URL")
        exchange.set_sandbox_mode(True)
    except (ccxt.NotSupported, TypeError, KeyError, AttributeError):
        # some exchanges raise TypeError instead of NotSupported when they have no test URLs
        raise ConfigurationError(
            f"{exchange.id} has no testnet (sandbox mode) in ccxt {ccxt.__version__}: use "
            f"trading_mode 'paper' to trade its live prices with paper money, or an exchange "
            f"with a testnet (binance, bybit, okx)"
        ) from None


def sandbox_serves_market_data(exchange: ccxt.Exchange) -> bool:
    """True when ccxt's sandbox URLs of ``exchange`` include its public endpoints.

    Binance (``public``, ``fapiPublic``...), Bybit (``public``) and OKX (one
    ``rest`` host; the sandbox is a header on every call) do: their testnets
    serve their own markets, candles and tickers.
    """
    test = exchange.urls.get("test")
    if not test:
        return False
    if isinstance(test, str):
        return True
    return any("public" in str(name).lower() or name == "rest" for name in test)


def create_sandbox_data_exchange(
    config: ExchangeConfig, *, api_url: str | None = None
) -> ccxt.Exchange | None:
    """The exchange a testnet strategy reads public data from: its sandbox, no key.

    ``None`` when ccxt's sandbox of the exchange has no public endpoints: the
    testnet strategy then decides on the live market's candles. ``api_url``
    (a test server) is applied after the sandbox switch.
    """
    exchange = create_exchange(config.exchange_id)
    if not sandbox_serves_market_data(exchange):
        return None
    enable_sandbox(exchange)
    if api_url:
        redirect_api(exchange, api_url)
    return exchange


def check_symbol_conflicts(
    store: SqliteStore,
    exchange_id: str,
    account: str,
    symbols: Iterable[str],
    *,
    strategy_id: str | None = None,
) -> None:
    """Refuse a second strategy on a symbol of the same exchange account.

    ``account`` is ``account_of(config)``. Strategies on paper, stopped ones and
    ``strategy_id`` itself are ignored. Raises ``ConfigurationError`` naming
    the symbol and the strategy that already trades it.
    """
    wanted = set(symbols)
    for row in store.list_strategies():
        other = row.request.exchange
        if row.id == strategy_id or row.status in _ENDED_STATUSES:
            continue
        if other.exchange_id != exchange_id or other.trading_mode == "paper":
            continue
        if account_of(other) != account:
            continue
        shared = sorted(wanted & set(row.request.trading.symbols))
        if shared:
            raise ConfigurationError(
                f"{', '.join(shared)} on {account} is already traded by strategy "
                f"{row.name!r} ({row.id}): two strategies on one symbol of one account would "
                f"trade each other's positions; stop that strategy, drop the symbol, or use "
                f"another account (another key)"
            )


class _RedactingFilter(logging.Filter):
    """Scrubs known key values out of log records (ccxt logs request headers at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            clean = redact(text, self.secrets)
            if clean != text:
                record.msg, record.args = clean, None
        return True


_LOG_REDACTOR = _RedactingFilter()
# ccxt logs every request with its headers (the API key) at DEBUG; urllib3 logs URLs
_GUARDED_LOGGERS = ("ccxt.base.exchange", "urllib3.connectionpool")


def guard_logs(secrets: Iterable[str | None]) -> None:
    """Keep these key values out of ccxt's and urllib3's log records, whatever the log level."""
    _LOG_REDACTOR.secrets.update(s for s in secrets if s and len(s) >= 4)
    for name in _GUARDED_LOGGERS:
        target = logging.getLogger(name)
        if _LOG_REDACTOR not in target.filters:
            target.addFilter(_LOG_REDACTOR)


def _env_prefix(exchange_id: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in exchange_id.upper())


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _first(*values: str | None) -> str | None:
    for value in values:
        if value is not None and value.strip():
            return value.strip()
    return None


def _secrets_file(path: Path) -> dict[str, str]:
    """Top-level string entries of the secrets file, overlaid by its ``[exchange]`` table."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(
            f"{path} could not be read ({type(error).__name__}); fix its TOML syntax"
        ) from None
    section = data.get("exchange")
    found = {k.upper(): v for k, v in data.items() if isinstance(v, str)}
    if isinstance(section, Mapping):
        found |= {str(k).upper(): v for k, v in section.items() if isinstance(v, str)}
    return found
