"""The one door to ccxt: exchange instances, URL redirection, retries and error translation.

Every adapter that talks to a real exchange (market data, downloads, later
execution) builds its ccxt instance with ``create_exchange`` and calls it
through ``call_with_retries``, so rate limiting, retries and the translation of
ccxt's exceptions into ``strategy_agent.errors`` live in one place.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt

from strategy_agent.errors import (
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    StrategyAgentError,
    TemporaryError,
)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff for ccxt's retryable errors (``OperationFailed``).

    ``attempts`` counts every try (1 means no retry). The wait before retry
    ``n`` (0-based) is ``min(max_delay_s, base_delay_s * 2**n)`` seconds; rate
    limits wait twice as long. ``sleep`` is injectable so tests run fast.
    """

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")

    def delay_s(self, retry: int, rate_limited: bool) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        delay = min(self.max_delay_s, self.base_delay_s * 2**retry)
        return min(self.max_delay_s, delay * 2) if rate_limited else delay


def exchange_ids() -> list[str]:
    """Every exchange id this ccxt knows (``binance``, ``okx``...)."""
    return list(ccxt.exchanges)


def create_exchange(
    exchange_id: str, *, api_url: str | None = None, config: Mapping[str, Any] | None = None
) -> ccxt.Exchange:
    """A ccxt instance of ``exchange_id`` with rate limiting on.

    ``api_url`` sends every REST call to that base URL instead of the
    exchange's hosts, keeping each endpoint's path (a test server or a proxy).
    ``config`` is passed to ccxt (``options``, ``timeout``...); ``enableRateLimit``
    stays on whatever it says. Raises ``ConfigurationError`` for an unknown id.
    """
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id.lower(), ccxt.exchanges, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigurationError(
            f"unknown exchange {exchange_id!r}: {hint}ccxt {ccxt.__version__} knows "
            f"{len(ccxt.exchanges)} exchanges by their lower-case id (e.g. 'binance', 'okx', "
            f"'bybit'); 'simulated' is the offline market"
        )
    exchange: ccxt.Exchange = getattr(ccxt, exchange_id)(
        {**(config or {}), "enableRateLimit": True}
    )
    if api_url:
        redirect_api(exchange, api_url)
    return exchange


def redirect_api(exchange: ccxt.Exchange, base_url: str) -> None:
    """Point every entry of ``exchange.urls['api']`` at ``base_url``, keeping the paths.

    ``https://fapi.binance.com/fapi/v1`` becomes ``<base_url>/fapi/v1``.
    """
    base = base_url.rstrip("/")
    exchange.urls["api"] = _rewrite(exchange.urls["api"], base)


def _rewrite(value: Any, base: str) -> Any:
    if isinstance(value, str):
        parts = urlsplit(value)
        return base + parts.path if parts.scheme else value
    if isinstance(value, dict):
        return {key: _rewrite(item, base) for key, item in value.items()}
    return value


def call_with_retries(
    what: str, func: Callable[..., T], *args: Any, policy: RetryPolicy, **kwargs: Any
) -> T:
    """``func(*args, **kwargs)``, retried on ccxt's "may succeed if retried" errors.

    ``ccxt.OperationFailed`` (network errors, time-outs, 5xx, rate limits, an
    exchange's "internal error, try again") is retried up to
    ``policy.attempts`` tries, then raised as a ``TemporaryError``
    (``RateLimitError`` for a rate limit). Any other ccxt error is translated
    at once (see ``translate_error``). ``what`` names the call in messages
    (``"binance fetch_ohlcv BTC/USDT 1h"``). Not for calls that must not run
    twice (placing an order): a lost answer there needs a look-up first.
    """
    for attempt in range(policy.attempts):
        try:
            return func(*args, **kwargs)
        except ccxt.OperationFailed as error:
            if attempt + 1 >= policy.attempts:
                raise translate_error(error, what, tries=policy.attempts) from error
            policy.sleep(policy.delay_s(attempt, _is_rate_limit(error)))
        except ccxt.BaseError as error:
            raise translate_error(error, what) from error
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def translate_error(error: Exception, what: str, tries: int = 1) -> StrategyAgentError:
    """The ``strategy_agent.errors`` exception for a ccxt exception (to raise ``from`` it)."""
    detail = _short(error)
    after = f" after {tries} tries" if tries > 1 else ""
    if _is_rate_limit(error):
        return RateLimitError(f"{what}: the exchange is rate limiting us{after} ({detail})")
    if isinstance(error, ccxt.NetworkError):
        return TemporaryError(f"{what}: the exchange could not be reached{after} ({detail})")
    if isinstance(error, ccxt.OperationFailed):
        return TemporaryError(f"{what}: the exchange failed to answer{after} ({detail})")
    if isinstance(error, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return AuthenticationError(
            f"{what}: the exchange refused the API key ({detail}); check the key, its secret "
            f"and its permissions"
        )
    if isinstance(error, ccxt.BadSymbol):
        return ConfigurationError(f"{what}: the exchange does not know this symbol ({detail})")
    if isinstance(error, ccxt.NotSupported):
        return ConfigurationError(f"{what}: not supported by this exchange in ccxt ({detail})")
    if isinstance(error, ccxt.BadRequest):
        return ConfigurationError(f"{what}: the exchange refused the request ({detail})")
    return StrategyAgentError(f"{what}: {type(error).__name__}: {detail}")


def _is_rate_limit(error: Exception) -> bool:
    # binance answers 429/418 with DDoSProtection; others raise RateLimitExceeded
    return isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection)


def _short(error: Exception, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
