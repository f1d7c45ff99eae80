"""The LLM as the strategy's policy, through litellm (any provider it supports).

One ``propose`` = one chat call (plus at most one repair call when the reply has
no usable JSON). litellm is imported only here, on the first call, with its
cost map read locally, so the app starts fast and works offline. Retries live
in one place (``_call_with_retries``): only temporary failures (timeouts,
connection errors, 429 honouring ``retry-after``, 5xx), with exponential backoff
and jitter; litellm's and the openai client's own retries are switched off.

Every error raised carries ``error.audit`` (the same dict a decision would have),
so the composer can record what happened before it falls back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import sqlite3
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, SecretStr

from strategy_agent.decision.interfaces import Policy, PolicyDecision
from strategy_agent.decision.llm_errors import (
    is_retryable,
    rejects_response_format,
    translate_error,
)
from strategy_agent.decision.plan_parser import ParsedPlan, parse_plan
from strategy_agent.decision.prompt_context import render_context
from strategy_agent.decision.system_prompt import PlanReply, build_system_prompt
from strategy_agent.errors import (
    ConfigurationError,
    InvalidPlanError,
    RateLimitError,
    StrategyAgentError,
    TemporaryError,
)
from strategy_agent.models import ComposeContext, ModelConfig, UserRequest
from strategy_agent.secrets import key_env_name, needs_key, redact, resolve_api_key
from strategy_agent.trading_history.response_cache import CachedReply, ResponseCache, messages_json

logger = logging.getLogger(__name__)

RAW_REPLY_MAX_CHARS = 4_000
_NO_KEY_PLACEHOLDER = "no-key"  # the openai client insists on a key, even for a local server

_REPAIR_REQUEST = (
    "Your reply could not be used: {error}\n"
    "Answer again with ONE JSON object only, no prose and no code fence, exactly in this form:\n"
    '{{"items":[{{"instrument":"{symbol}","action":"noop","target_qty":0,"confidence":0.5,'
    '"rationale":"..."}}],"notes":"..."}}'
)


def load_litellm() -> ModuleType:
    """Import litellm (3-4 s the first time) offline and quiet."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with warnings.catch_warnings():  # litellm's own import-time warnings are not ours to fix
        warnings.simplefilter("ignore")
        import litellm

    litellm.suppress_debug_info = True
    # litellm builds pydantic schemas lazily on the first call, warning about
    # its own TypedDicts; those warnings mean nothing to our users.
    warnings.filterwarnings("ignore", message=".*ReadOnly.*", category=UserWarning)
    return litellm


def litellm_model(config: ModelConfig) -> str:
    """litellm's model string: ``"openai/gpt-4o-mini"``, ``"anthropic/claude-..."``."""
    return f"{config.provider}/{config.model_id}"


@dataclass
class _Reply:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    finish_reason: str | None
    cached: bool


class LlmPolicy(Policy):
    """Asks an LLM for a plan each cycle; parses, audits and caches its answer."""

    def __init__(
        self,
        config: ModelConfig,
        system_prompt: str,
        api_key: SecretStr | None,
        cache: ResponseCache | None = None,
        max_retries: int = 3,
        backoff_base_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        *,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = 120.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if config.is_builtin:
            raise ConfigurationError(
                f"LlmPolicy needs an LLM provider, got provider 'builtin' ({config.model_id}); "
                f"use the built-in policy instead"
            )
        if max_retries < 0 or backoff_base_s < 0:
            raise ConfigurationError("max_retries and backoff_base_s must be >= 0")
        self.config = config
        self.system_prompt = system_prompt
        self.cache = cache
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.model = litellm_model(config)
        self.name = f"llm:{self.model}"
        self._api_key = api_key
        self._sleep = sleep
        self._jitter = jitter
        self._response_format: Any = None
        self._format_mode: str | None = None  # decided on the first call

    # -- the policy --------------------------------------------------------------------

    def propose(self, context: ComposeContext) -> PolicyDecision:
        """Ask the model, parse its plan (one repair round), and return it with the audit."""
        messages = self.messages_for(context)
        audit = self._new_audit(messages)
        load_litellm()  # the first import takes seconds: not part of the model's latency
        started = time.perf_counter()
        try:
            parsed = self._plan(messages, context, audit)
        except StrategyAgentError as error:
            audit["latency_ms"] = _elapsed_ms(started)
            audit["error"] = redact(str(error), [self._api_key])
            error.audit = audit  # type: ignore[attr-defined]
            raise
        audit["latency_ms"] = _elapsed_ms(started)
        proposal = parsed.proposal.model_copy(
            update={"model_meta": {"model": self.model, "prompt_hash": audit["prompt_hash"]}}
        )
        audit["plan"] = proposal.model_dump(mode="json")
        return PolicyDecision(proposal=proposal, audit=audit, rejected_items=parsed.rejected)

    def messages_for(self, context: ComposeContext) -> list[dict[str, str]]:
        """The exact prompt of a cycle (system + user message)."""
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": render_context(context)},
        ]

    def _plan(
        self, messages: list[dict[str, str]], context: ComposeContext, audit: dict[str, Any]
    ) -> ParsedPlan:
        symbols = _known_symbols(context)
        reply = self._complete(messages, audit)
        try:
            return parse_plan(reply.text, context.ts, symbols)
        except InvalidPlanError as first_error:
            audit["repair_attempted"] = True
            audit["repair_reason"] = self._redacted(str(first_error))
            audit["first_reply"] = audit["raw_reply"]
            repair = [
                *messages,
                {"role": "assistant", "content": reply.text},
                {
                    "role": "user",
                    "content": _REPAIR_REQUEST.format(
                        error=first_error, symbol=symbols[0] if symbols else "BTC/USDT"
                    ),
                },
            ]
            repaired = self._complete(repair, audit)
            try:
                return parse_plan(repaired.text, context.ts, symbols)
            except InvalidPlanError as second_error:
                raise InvalidPlanError(
                    f"{self.model} gave no usable plan, even after one repair round "
                    f"(repair attempted): {second_error}"
                ) from None

    # -- one completion: cache, then provider ------------------------------------------

    def _complete(self, messages: list[dict[str, str]], audit: dict[str, Any]) -> _Reply:
        cached = self._cache_get(messages)
        if cached is not None:
            reply = _Reply(
                cached.text, cached.prompt_tokens, cached.completion_tokens, 0.0, None, True
            )
        else:
            reply = self._call_with_retries(messages, audit)
            self._cache_put(
                messages,
                CachedReply(
                    reply.text, reply.prompt_tokens, reply.completion_tokens, reply.cost_usd
                ),
            )
        self._account(reply, audit)
        return reply

    def _cache_get(self, messages: list[dict[str, str]]) -> CachedReply | None:
        """The cached reply, if any; a failing cache is skipped, never fatal."""
        if self.cache is None:
            return None
        try:
            return self.cache.get(self.model, self.config.temperature, messages)
        except sqlite3.Error as error:
            logger.warning("LLM response cache unreadable, asking the model: %s", error)
            return None

    def _cache_put(self, messages: list[dict[str, str]], reply: CachedReply) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(self.model, self.config.temperature, messages, reply)
        except sqlite3.Error as error:
            logger.warning("LLM response cache not written: %s", error)

    def _account(self, reply: _Reply, audit: dict[str, Any]) -> None:
        """Add one completion's usage to the audit (cost stays null once any call's is unknown)."""
        first_call = audit["calls"] == 0
        audit["calls"] += 1
        audit["cached_calls"] += int(reply.cached)
        audit["cache_hit"] = audit["cached_calls"] == audit["calls"]
        audit["prompt_tokens"] = _add(audit["prompt_tokens"], reply.prompt_tokens)
        audit["completion_tokens"] = _add(audit["completion_tokens"], reply.completion_tokens)
        cost_known_so_far = first_call or audit["cost_usd"] is not None
        if cost_known_so_far and reply.cost_usd is not None:
            audit["cost_usd"] = (audit["cost_usd"] or 0.0) + reply.cost_usd
        else:
            audit["cost_usd"] = None
        audit["finish_reason"] = reply.finish_reason
        audit["raw_reply"] = self._redacted(reply.text)[:RAW_REPLY_MAX_CHARS]

    def ping(self) -> str:
        """One tiny call, no retries, no cache, no schema: the reply text (connection test).

        Raises the same translated errors as ``propose`` (refused key, unknown model...).
        """
        litellm = load_litellm()
        kwargs = self._request_kwargs([{"role": "user", "content": "Reply with the word OK."}])
        kwargs["max_tokens"] = 16
        try:
            response = litellm.completion(**kwargs)
        except Exception as raw:
            raise self._translate(raw) from None
        return self._reply_of(litellm, response).text

    def _call_with_retries(self, messages: list[dict[str, str]], audit: dict[str, Any]) -> _Reply:
        """The one place that retries: temporary failures only, backoff with jitter."""
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

    def _call_once(self, messages: list[dict[str, str]], audit: dict[str, Any]) -> _Reply:
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
            self._response_format, self._format_mode = None, "instructions"
            audit["response_format"] = "instructions (server refused response_format)"
            kwargs.pop("response_format")
            try:
                audit["http_requests"] += 1
                response = litellm.completion(**kwargs)
            except Exception as raw_again:
                raise self._translate(raw_again) from None
        return self._reply_of(litellm, response)

    def _request_kwargs(self, messages: list[dict[str, str]]) -> dict[str, Any]:
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

    def _reply_of(self, litellm: ModuleType, response: Any) -> _Reply:
        choice = response.choices[0] if getattr(response, "choices", None) else None
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        usage = getattr(response, "usage", None)
        return _Reply(
            text=text if isinstance(text, str) else "",
            prompt_tokens=_int_or_none(getattr(usage, "prompt_tokens", None)),
            completion_tokens=_int_or_none(getattr(usage, "completion_tokens", None)),
            cost_usd=_cost(litellm, response),
            finish_reason=getattr(choice, "finish_reason", None),
            cached=False,
        )

    def _translate(self, raw: BaseException) -> StrategyAgentError:
        return translate_error(
            raw,
            model=self.model,
            key_env=key_env_name(self.config),
            secrets=[self._api_key.get_secret_value()] if self._api_key else [],
        )

    def _redacted(self, text: str) -> str:
        return redact(text, [self._api_key])

    def _new_audit(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "policy": "llm",
            "model": self.model,
            "provider": self.config.provider,
            "model_id": self.config.model_id,
            "temperature": self.config.temperature,
            "prompt_hash": hashlib.sha256(messages_json(messages).encode("utf-8")).hexdigest(),
            "prompt_tokens": None,
            "completion_tokens": None,
            "cost_usd": None,
            "latency_ms": None,
            "retries": 0,
            "http_requests": 0,
            "calls": 0,
            "cached_calls": 0,
            "cache_hit": False,
            "response_format": None,
            "finish_reason": None,
            "repair_attempted": False,
            "repair_reason": None,
            "raw_reply": None,
            "plan": None,
            "messages": messages,
        }


def build_llm_policy(
    request: UserRequest,
    limits: BaseModel | Mapping[str, Any],
    *,
    api_key: SecretStr | None = None,
    db_path: str | Path | None = None,
    use_cache: bool | None = None,
    secrets_path: str | Path = ".streamlit/secrets.toml",
) -> LlmPolicy:
    """An ``LlmPolicy`` for a strategy: key resolved, system prompt from its limits.

    ``api_key`` is a key typed in the UI for this session (it wins over the
    environment and secrets.toml). The response cache is on by default for the
    simulated market (replays) and off for real markets; it lives in ``db_path``.
    """
    constraints = limits.model_dump() if isinstance(limits, BaseModel) else dict(limits)
    session_key = api_key.get_secret_value() if api_key is not None else None
    key = resolve_api_key(request.llm, session_key=session_key, secrets_path=secrets_path)
    if use_cache is None:
        use_cache = request.exchange.exchange_id == "simulated"
    cache = ResponseCache(db_path) if use_cache and db_path is not None else None
    return LlmPolicy(request.llm, build_system_prompt(constraints), key, cache=cache)


def _known_symbols(context: ComposeContext) -> list[str]:
    symbols = list((context.constraints or {}).get("symbols") or [])
    symbols += [f.instrument.symbol for f in context.features]
    return list(dict.fromkeys(s for s in symbols if isinstance(s, str)))


def _cost(litellm: ModuleType, response: Any) -> float | None:
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    if cost is None:
        try:
            cost = litellm.completion_cost(completion_response=response)
        except Exception:  # unknown model: litellm raises; the cost is simply unknown
            return None
    try:
        value = float(cost)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _add(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return (total or 0) + value


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
