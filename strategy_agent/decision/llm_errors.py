"""Translate litellm's exceptions into ``strategy_agent.errors`` (the adapter boundary).

litellm raises its own classes (subclasses of the openai client's), and some
statuses arrive only as a generic ``APIError`` with a ``status_code`` (402, 403),
so the translation looks at the status first and the class second. Every message
is passed through ``redact`` so that a server echoing the key cannot leak it.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable
from typing import Any

from strategy_agent.errors import (
    AuthenticationError,
    ConfigurationError,
    ProviderTimeoutError,
    RateLimitError,
    StrategyAgentError,
    TemporaryError,
)
from strategy_agent.secrets import redact

# How servers word a refusal of structured output ("does not support Json Output",
# "response_format is not supported", "json_schema not supported", "JSON mode"...).
_RESPONSE_FORMAT_WORDS = re.compile(
    r"response[_ ]?format|json[_ ]?schema|json[_ ]?object|json[_ ]output|json[_ ]mode"
    r"|structured[_ ]output|guided[_ ]json",
    re.I,
)
_FORMAT_REFUSAL_STATUSES = (400, 415, 422, 501)
# A billing stop, whatever the status (OpenAI answers it with a 429).
_BILLING_WORDS = re.compile(
    r"insufficient[_ ]quota|exceeded your current quota|credit balance is too low"
    r"|insufficient[_ ](?:balance|credits?|funds)|payment[_ ]required|billing[_ ]hard[_ ]limit",
    re.I,
)
# ...unless the provider says when to retry: then it is a rate limit worded as a quota.
_RETRY_HINT_WORDS = re.compile(r"retry in|retrydelay|per minute|per second|rate[_ ]limit", re.I)
_MAX_DETAIL_CHARS = 300


def status_code_of(error: BaseException) -> int | None:
    """The HTTP status litellm attached to ``error``, if any."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's ``retry-after`` hint in seconds (numeric form), if it sent one."""
    headers: dict[str, object] = {}
    response_headers = getattr(getattr(error, "response", None), "headers", None)
    if response_headers is not None:
        with contextlib.suppress(AttributeError, TypeError):
            headers.update({str(k).lower(): v for k, v in response_headers.items()})
    explicit = getattr(error, "headers", None)
    if isinstance(explicit, dict):
        headers.update({str(k).lower(): v for k, v in explicit.items()})
    seconds = _as_seconds(headers.get("retry-after"))
    if seconds is None:
        milliseconds = _as_seconds(headers.get("retry-after-ms"))
        seconds = milliseconds / 1000.0 if milliseconds is not None else None
    return seconds


def _as_seconds(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None  # an HTTP date: rare for LLM APIs, the backoff applies instead
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def error_text(error: BaseException) -> str:
    """The message with the provider's error ``type`` and ``code`` (litellm keeps them in ``body``)."""
    parts = [str(error)]
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
        parts += [str(inner[key]) for key in ("type", "code", "message") if inner.get(key)]
    return " ".join(parts)


def rejects_response_format(error: BaseException) -> bool:
    """True when a client-error answer refuses structured output (retry without it).

    Matched by status (400, 415, 422, 501) and by wording, in any casing.
    """
    if status_code_of(error) not in _FORMAT_REFUSAL_STATUSES:
        return False
    return bool(_RESPONSE_FORMAT_WORDS.search(error_text(error)))


def is_billing_stop(error: BaseException) -> bool:
    """True when the provider refuses for want of credit (retrying cannot help).

    OpenAI says so with a 429 (``insufficient_quota``, "exceeded your current
    quota"); a 429 that also says when to retry is a rate limit instead.
    """
    text = error_text(error)
    if not _BILLING_WORDS.search(text):
        return False
    return status_code_of(error) != 429 or not (
        retry_after_seconds(error) is not None or _RETRY_HINT_WORDS.search(text)
    )


def is_retryable(error: StrategyAgentError) -> bool:
    """Only temporary failures are retried (timeouts, connection, 429, 5xx)."""
    return isinstance(error, TemporaryError)


def translate_error(
    error: BaseException,
    *,
    model: str,
    key_env: str | None,
    secrets: Iterable[str] = (),
) -> StrategyAgentError:
    """Map a litellm/openai exception to our hierarchy, with a message that says what to do."""
    import litellm  # already imported by the caller; here only to name its classes

    detail = _detail(error, secrets)
    status = status_code_of(error)
    if isinstance(error, litellm.Timeout) or status == 408:
        return ProviderTimeoutError(
            f"{model} did not answer in time ({detail}); raise timeout_s or try again later"
        )
    if isinstance(error, litellm.ContextWindowExceededError):
        return ConfigurationError(
            f"the prompt is too long for {model} ({detail}); trade fewer symbols, "
            f"shorten the strategy prompt or pick a model with a larger context window "
            f"(for a local model, set context_window in [llm] to its window)"
        )
    if status == 402 or is_billing_stop(error):
        return billing_error(status, detail, model=model)
    if status == 429 or isinstance(error, litellm.RateLimitError):
        return RateLimitError(
            f"{model} is rate limited ({detail}); slow the decision interval or raise your quota",
            retry_after_s=retry_after_seconds(error),
        )
    if status is not None and status >= 400 and status not in (408, 409) and status < 500:
        return _client_error(status, detail, model=model, key_env=key_env)
    if isinstance(error, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return _client_error(401, detail, model=model, key_env=key_env)
    if isinstance(error, litellm.NotFoundError):
        return _client_error(404, detail, model=model, key_env=key_env)
    if isinstance(error, litellm.BadRequestError):
        return _client_error(400, detail, model=model, key_env=key_env)
    if isinstance(error, litellm.APIConnectionError) or "connection" in detail.lower():
        return TemporaryError(
            f"{model} could not be reached ({detail}); check the network and, for a local "
            f"server, that it runs at the configured api_base"
        )
    return TemporaryError(f"{model} failed temporarily ({detail})")


def billing_error(status: int | None, detail: str, *, model: str) -> AuthenticationError:
    """The provider wants payment: stop (like a refused key), and say to add credit."""
    shown = f"HTTP {status}: " if status is not None else ""
    return AuthenticationError(
        f"{model} needs payment ({shown}{detail}); add credit to the provider account "
        f"(or raise its spending limit), then resume the strategy"
    )


def _client_error(
    status: int, detail: str, *, model: str, key_env: str | None
) -> StrategyAgentError:
    where = f"the environment variable {key_env}" if key_env else "the key you entered"
    if status == 401:
        return AuthenticationError(
            f"{model} refused the API key (HTTP 401: {detail}); check {where} "
            f"(a valid key for this provider, not expired or revoked)"
        )
    if status == 403:
        return AuthenticationError(
            f"{model} is not allowed for this key (HTTP 403: {detail}); check the key's "
            f"permissions in {where} or pick a model your account can use"
        )
    if status in (404, 405):
        return ConfigurationError(
            f"model {model} was not found (HTTP {status}: {detail}); check provider and "
            f"model_id, and that api_base points at the LLM server (it usually ends in /v1)"
        )
    return ConfigurationError(
        f"{model} rejected the request (HTTP {status}: {detail}); check model_id, "
        f"temperature and max_tokens in the [llm] settings"
    )


def _detail(error: BaseException, secrets: Iterable[str]) -> str:
    text = str(error).strip() or type(error).__name__
    for prefix in ("litellm.", "OpenAIException - "):
        text = text.replace(prefix, "")
    # litellm repeats the class name ("AuthenticationError: AuthenticationError: ..."): once
    text = re.sub(r"\b(\w+Error): (?:\1: )+", r"\1: ", text)
    text = redact(text, secrets)
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[:_MAX_DETAIL_CHARS] + "..."
    return text
