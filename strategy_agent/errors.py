"""One exception hierarchy, named by what the caller should do about it.

- ``TemporaryError`` and its children: retry later (network, rate limit, timeout).
- Everything else under ``StrategyAgentError``: do not retry; fix the cause first.

Vendor exceptions (ccxt, litellm, sqlite) are translated into these at the
adapter boundary, so the engine never imports a vendor to catch its errors.
"""

from __future__ import annotations


class StrategyAgentError(Exception):
    """Base class of every error the engine raises on purpose."""


class TemporaryError(StrategyAgentError):
    """A failure that may succeed if retried later (network, 5xx, timeout)."""


class RateLimitError(TemporaryError):
    """The provider asked us to slow down; ``retry_after_s`` is its hint, if any."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProviderTimeoutError(TemporaryError):
    """A call did not answer in the configured time."""


class ConfigurationError(StrategyAgentError):
    """The configuration is invalid or incomplete; the message says how to fix it."""


class AuthenticationError(StrategyAgentError):
    """A key was refused (or the model/account does not exist). Retrying will not help."""


class ExchangeKeyRefused(AuthenticationError):
    """The exchange refused the trading key: the strategy pauses (the message names the key)."""


class InvalidPlanError(StrategyAgentError):
    """A policy's output could not be turned into a plan."""


class DataUnavailableError(TemporaryError):
    """Market data could not be obtained for this cycle."""


class InsufficientFundsError(StrategyAgentError):
    """The ledger cannot afford an order; nothing was applied."""
