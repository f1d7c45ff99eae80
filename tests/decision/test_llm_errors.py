from __future__ import annotations

import httpx
import pytest

from strategy_agent.decision.llm_errors import (
    error_text,
    is_billing_stop,
    rejects_response_format,
    retry_after_seconds,
    status_code_of,
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


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "deepseek-reasoner does not support Json Output."),
        (400, "RESPONSE_FORMAT is not supported"),
        (400, "json_schema response format not supported by this backend"),
        (422, "Structured Output is unavailable"),
        (501, "JSON mode not implemented"),
    ],
)
def test_json_mode_refusals_in_any_wording_and_casing(status: int, message: str) -> None:
    error = litellm.APIError(status, message, "openai", "m")
    assert rejects_response_format(error)


def test_a_format_word_with_another_status_is_not_a_refusal() -> None:
    assert not rejects_response_format(litellm.APIError(401, "json output key", "openai", "m"))
    assert not rejects_response_format(
        litellm.BadRequestError("temperature must be <= 2", "m", "openai")
    )


@pytest.mark.parametrize(
    "error",
    [
        litellm.RateLimitError(
            "You exceeded your current quota, please check your plan and billing details.",
            "openai",
            "m",
            response=_response(429),
        ),
        litellm.RateLimitError("insufficient_quota", "openai", "m", response=_response(429)),
        litellm.BadRequestError(
            "Your credit balance is too low to access the Anthropic API.", "m", "anthropic"
        ),
        litellm.APIError(402, "Insufficient Balance", "deepseek", "m"),
    ],
    ids=["openai-quota", "quota-code", "anthropic-credit", "deepseek-402"],
)
def test_billing_stops_halt_with_add_credit_advice(error: BaseException) -> None:
    assert is_billing_stop(error) or status_code_of(error) == 402
    translated = _translate(error)
    assert type(translated) is AuthenticationError
    assert "add credit" in str(translated)


def test_a_quota_429_that_says_when_to_retry_is_a_rate_limit() -> None:
    per_minute = litellm.RateLimitError(
        "You exceeded your current quota, please check your plan and billing details. "
        "Quota exceeded for metric: generate_content requests per minute. Please retry in 41s.",
        "gemini",
        "m",
        response=_response(429),
    )
    assert not is_billing_stop(per_minute)
    assert isinstance(_translate(per_minute), RateLimitError)
    with_header = litellm.RateLimitError(
        "exceeded your current quota", "openai", "m", response=_response(429, {"retry-after": "5"})
    )
    assert isinstance(_translate(with_header), RateLimitError)


def test_the_provider_error_code_counts_even_when_the_message_does_not_say() -> None:
    error = litellm.RateLimitError("Request failed", "openai", "m", response=_response(429))
    error.body = {"message": "Request failed", "type": "insufficient_quota", "code": None}
    assert is_billing_stop(error)
    assert "insufficient_quota" in error_text(error)


def test_the_error_class_name_is_said_once() -> None:
    error = litellm.AuthenticationError(
        message="AuthenticationError: OpenAIException - Incorrect API key",
        llm_provider="openai",
        model="m",
    )
    message = str(translate_error(error, model=MODEL, key_env="OPENAI_API_KEY"))
    assert "Incorrect API key" in message
    assert "AuthenticationError: AuthenticationError" not in message
