from __future__ import annotations

import httpx
import pytest

from strategy_agent.decision.llm_errors import (
    rejects_response_format,
    retry_after_seconds,
    translate_error,
)
from strategy_agent.decision.llm_policy import load_litellm
from strategy_agent.errors import (
    AuthenticationError,
    ConfigurationError,
    ProviderTimeoutError,
    RateLimitError,
    TemporaryError,
)

litellm = load_litellm()
MODEL = "openai/m"


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, headers=headers, request=httpx.Request("POST", "http://127.0.0.1/v1")
    )


def _translate(error: BaseException) -> Exception:
    return translate_error(error, model=MODEL, key_env="MY_KEY", secrets=["secret-key-123"])


def test_rate_limit_keeps_the_retry_after_hint() -> None:
    error = litellm.RateLimitError(
        "slow", "openai", "m", response=_response(429, {"retry-after": "7"})
    )
    translated = _translate(error)
    assert isinstance(translated, RateLimitError) and translated.retry_after_s == 7.0
    assert retry_after_seconds(error) == 7.0


def test_retry_after_ms_and_dates() -> None:
    ms = litellm.RateLimitError(
        "x", "openai", "m", response=_response(429, {"retry-after-ms": "1500"})
    )
    assert retry_after_seconds(ms) == 1.5
    dated = litellm.RateLimitError(
        "x",
        "openai",
        "m",
        response=_response(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}),
    )
    assert retry_after_seconds(dated) is None


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        (litellm.Timeout("late", "m", "openai"), ProviderTimeoutError, "timeout_s"),
        (
            litellm.AuthenticationError("bad secret-key-123", "openai", "m"),
            AuthenticationError,
            "MY_KEY",
        ),
        (litellm.NotFoundError("no model", "m", "openai"), ConfigurationError, "model_id"),
        (litellm.BadRequestError("bad", "m", "openai"), ConfigurationError, "rejected"),
        (
            litellm.ContextWindowExceededError("too long", "m", "openai"),
            ConfigurationError,
            "fewer symbols",
        ),
        (litellm.InternalServerError("oops", "openai", "m"), TemporaryError, "temporarily"),
        (litellm.APIConnectionError("refused", "openai", "m"), TemporaryError, "api_base"),
        (RuntimeError("strange"), TemporaryError, "strange"),
    ],
)
def test_translation_by_kind(error: BaseException, expected: type, words: str) -> None:
    translated = _translate(error)
    assert type(translated) is expected
    assert words in str(translated)
    assert "secret-key-123" not in str(translated)


def test_generic_api_errors_are_mapped_by_status() -> None:
    forbidden = litellm.APIError(403, "forbidden", "openai", "m")
    assert isinstance(_translate(forbidden), AuthenticationError)
    unavailable = litellm.APIError(503, "busy", "openai", "m")
    assert type(_translate(unavailable)) is TemporaryError


def test_response_format_rejection_is_recognised() -> None:
    refused = litellm.BadRequestError("response_format json_schema is not supported", "m", "openai")
    assert rejects_response_format(refused)
    assert not rejects_response_format(
        litellm.BadRequestError("max_tokens too large", "m", "openai")
    )
    assert not rejects_response_format(
        litellm.InternalServerError("response_format", "openai", "m")
    )


def test_long_details_are_cut() -> None:
    translated = _translate(litellm.BadRequestError("x" * 2_000, "m", "openai"))
    assert len(str(translated)) < 600
