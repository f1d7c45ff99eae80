"""One chat completion through litellm: request, structured output, retries, errors.

litellm is imported only here (``load_litellm``), on the first call, with its
cost map read locally, so the app starts fast and works offline. Retries live
in one place (``LlmTransport.call``): only temporary failures (timeouts,
connection errors, 429 honouring ``retry-after``, 5xx), with exponential
backoff and jitter; litellm's and the openai client's own retries are off.

Structured output: ``PlanReply`` as a JSON schema where litellm says the model
supports it, else JSON mode, else instructions only. A server that refuses it
(HTTP 400 "does not support Json Output", "response_format is not
supported"...) is asked again at once without it, and the refusal is
remembered for that model and server in this process.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import sys
import time
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pydantic import SecretStr

from strategy_agent.decision.llm_errors import (
    is_retryable,
    rejects_response_format,
    translate_error,
)
from strategy_agent.decision.llm_reply import Reply, reply_of
from strategy_agent.decision.system_prompt import PlanReply
from strategy_agent.errors import RateLimitError, StrategyAgentError, TemporaryError
from strategy_agent.models import ModelConfig
from strategy_agent.secrets import key_env_name, needs_key, redact

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]
_NO_KEY_PLACEHOLDER = "no-key"  # the openai client insists on a key, even for a local server
INSTRUCTIONS_ONLY = "instructions (the server refused response_format)"

# (litellm model, api_base) of servers that refused structured output in this process.
_FORMAT_REFUSED: set[tuple[str, str | None]] = set()


_LOADED: ModuleType | None = None  # litellm, once load_litellm has set it up


def forget_format_refusals() -> None:
    """Forget which models refused ``response_format`` (tests; a server upgraded meanwhile)."""
    _FORMAT_REFUSED.clear()


def load_litellm() -> ModuleType:
    """Import litellm (3-4 s the first time) offline and quiet.

    The first import then moves every object alive to the garbage collector's
    permanent generation (``gc.freeze``): litellm's ~350,000 module objects live
    as long as the process, and scanning them again made each full collection
    cost about 0.3 s (a year replayed from the response cache spent a third of
    its time there). Later calls return the module at once (a replay asks every cycle).
    """
    global _LOADED
    if _LOADED is not None:
        return _LOADED
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    first = "litellm" not in sys.modules
    with warnings.catch_warnings():  # litellm's own import-time warnings are not ours to fix
        warnings.simplefilter("ignore")
        import litellm

    if first:
        gc.freeze()

    litellm.suppress_debug_info = True
    # litellm builds pydantic schemas lazily on the first call, warning about
    # its own TypedDicts; those warnings mean nothing to our users.
    warnings.filterwarnings("ignore", message=".*ReadOnly.*", category=UserWarning)
    _LOADED = litellm
    return litellm


def litellm_model(config: ModelConfig) -> str:
    """litellm's model string: ``"openai/gpt-4o-mini"``, ``"anthropic/claude-..."``."""
    return f"{config.provider}/{config.model_id}"


class LlmTransport:
    """Sends chat requests for one model; ``call`` retries, ``ping`` does not."""

    def __init__(
        self,
        config: ModelConfig,
        api_key: SecretStr | None,
        *,
        max_retries: int = 3,
        backoff_base_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = 120.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.model = litellm_model(config)
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self._api_key = api_key
        self._sleep = sleep
        self._jitter = jitter
        self._response_format: Any = None
        self._format_mode: str | None = None  # decided on the first call

    def call(self, messages: Messages, audit: dict[str, Any]) -> Reply:
        """One completion; temporary failures retried with backoff, counted in ``audit``."""
        attempt = 0
        while True:
            try:
                return self._call_once(messages, audit)
            except StrategyAgentError as error:
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise self._gave_up(error, attempt) from None
                attempt += 1
                audit["retries"] += 1
                logger.warning(
                    "%s: %s; retry %d/%d in %.2fs",
                    self.model,
                    self._redacted(str(error)),
                    attempt,
                    self.max_retries,
                    delay,
                )
                self._sleep(delay)

    def ping(self) -> str:
        """One tiny call, no retries, no schema: the reply text (connection test).

        Raises the same translated errors as ``call`` (refused key, unknown model...).
        """
        litellm = load_litellm()
        kwargs = self._request_kwargs([{"role": "user", "content": "Reply with the word OK."}])
        kwargs["max_tokens"] = 16
        try:
            response = litellm.completion(**kwargs)
        except Exception as raw:
            raise self._translate(raw) from None
        return reply_of(litellm, response).text

    def _retry_delay(self, error: StrategyAgentError, attempt: int) -> float | None:
        if not is_retryable(error) or attempt >= self.max_retries:
            return None
        backoff = min(self.backoff_base_s * (2**attempt), self.max_backoff_s)
        delay = backoff + self._jitter() * self.backoff_base_s
        if isinstance(error, RateLimitError) and error.retry_after_s is not None:
            if error.retry_after_s > self.max_retry_after_s:
                return None  # the provider wants a long pause: give up this cycle
            delay = max(delay, error.retry_after_s)
        return delay

    def _gave_up(self, error: StrategyAgentError, attempt: int) -> StrategyAgentError:
        if not isinstance(error, TemporaryError) or attempt == 0:
            return error
        message = f"{error} (gave up after {attempt} retries)"
        if isinstance(error, RateLimitError):
            return RateLimitError(message, retry_after_s=error.retry_after_s)
        return type(error)(message)

    def _call_once(self, messages: Messages, audit: dict[str, Any]) -> Reply:
        litellm = load_litellm()
        kwargs = self._request_kwargs(messages)
        response_format = self._format(litellm)
        if response_format is not None:
            kwargs["response_format"] = response_format
        audit["response_format"] = self._format_mode
        try:
            audit["http_requests"] += 1
            response = litellm.completion(**kwargs)
        except Exception as raw:
            if "response_format" not in kwargs or not rejects_response_format(raw):
                raise self._translate(raw) from None
            # The server refused structured output: ask with instructions only, from now on.
            self._response_format, self._format_mode = None, INSTRUCTIONS_ONLY
            _FORMAT_REFUSED.add((self.model, self.config.api_base))
            audit["response_format"] = INSTRUCTIONS_ONLY
            audit["response_format_refused"] = self._redacted(str(raw))[:300]
            kwargs.pop("response_format")
            try:
                audit["http_requests"] += 1
                response = litellm.completion(**kwargs)
            except Exception as raw_again:
                raise self._translate(raw_again) from None
        return reply_of(litellm, response, self.config)

    def _request_kwargs(self, messages: Messages) -> dict[str, Any]:
        config = self.config
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "timeout": config.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": True,
        }
        if config.api_base:
            kwargs["api_base"] = config.api_base
        if self._api_key is not None:
            kwargs["api_key"] = self._api_key.get_secret_value()
        elif config.provider == "openai" and not needs_key(config):
            kwargs["api_key"] = _NO_KEY_PLACEHOLDER
        if config.temperature is not None:
            kwargs["temperature"] = config.temperature
        if config.max_tokens is not None:
            kwargs["max_tokens"] = config.max_tokens
        return kwargs

    def _format(self, litellm: ModuleType) -> Any:
        """``PlanReply`` (JSON schema) where supported, else JSON mode, else nothing."""
        if self._format_mode is None and (self.model, self.config.api_base) in _FORMAT_REFUSED:
            self._response_format, self._format_mode = None, INSTRUCTIONS_ONLY
        if self._format_mode is None:
            self._response_format, self._format_mode = None, "instructions"
            try:
                if litellm.supports_response_schema(model=self.model):
                    self._response_format, self._format_mode = PlanReply, "json_schema"
                else:
                    params = litellm.get_supported_openai_params(
                        model=self.config.model_id, custom_llm_provider=self.config.provider
                    )
                    if params and "response_format" in params:
                        self._response_format = {"type": "json_object"}
                        self._format_mode = "json_object"
            except Exception:  # an unknown provider: instructions alone will do
                logger.debug("no structured-output support known for %s", self.model)
        return self._response_format

    def _translate(self, raw: BaseException) -> StrategyAgentError:
        return translate_error(
            raw,
            model=self.model,
            key_env=key_env_name(self.config),
            secrets=[self._api_key.get_secret_value()] if self._api_key else [],
        )

    def _redacted(self, text: str) -> str:
        return redact(text, [self._api_key])
