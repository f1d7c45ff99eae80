"""The LLM as the strategy's policy, through litellm (any provider it supports).

One ``propose`` = one chat call (plus at most one repair call when the reply has
no usable JSON, or was cut off by ``max_tokens``). The call itself (litellm,
structured output, retries, error translation) is ``llm_transport.LlmTransport``'s.

The prompt is fitted to the model's context window first (``prompt_fit``). A
reply stopped by a content filter or refused is not parsed (fallback); one cut off
by ``max_tokens`` is not parsed either (repair round). Reasoning before the
answer is dropped and kept, cut short, in the audit (``reasoning``).

Every error raised carries ``error.audit`` (the same dict a decision would have),
so the composer can record what happened before it falls back.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from pydantic import BaseModel, SecretStr

from strategy_agent.decision.interfaces import Policy, PolicyDecision
from strategy_agent.decision.llm_reply import Reply, ReplyStopped, account_usage, stopped_reason
from strategy_agent.decision.llm_transport import (
    LlmTransport,
    litellm_model,
    load_litellm,
)
from strategy_agent.decision.plan_parser import MAX_REASONING_CHARS, ParsedPlan, RecentParses
from strategy_agent.decision.prompt_context import render_context
from strategy_agent.decision.prompt_fit import (
    context_window,
    fit_prompt,
    observed_ratio,
    reply_reserve,
    scaled_counter,
)
from strategy_agent.decision.system_prompt import build_system_prompt
from strategy_agent.errors import (
    ConfigurationError,
    InvalidPlanError,
    StrategyAgentError,
)
from strategy_agent.models import ComposeContext, LlmPlanProposal, ModelConfig, UserRequest
from strategy_agent.secrets import redact, resolve_api_key
from strategy_agent.trading_history.response_cache import (
    CachedReply,
    PromptDigest,
    PromptHasher,
    ResponseCache,
)

logger = logging.getLogger(__name__)


class _Prompt(NamedTuple):
    """A cycle's messages and their hash and cache key, worked out once."""

    messages: list[dict[str, str]]
    digest: PromptDigest


_REPAIR_REQUEST = (
    "Your reply could not be used: {error}\n"
    "Answer again with ONE JSON object only, no prose and no code fence, exactly in this form:\n"
    '{{"items":[{{"instrument":"{symbol}","action":"noop","target_qty":0,"confidence":0.5,'
    '"rationale":"..."}}],"notes":"..."}}'
)


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
        self.model = litellm_model(config)
        self.name = f"llm:{self.model}"
        self._api_key = api_key
        self._sleep = sleep  # replaceable after construction (tests skip the waits)
        self.transport = LlmTransport(
            config,
            api_key,
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            sleep=lambda seconds: self._sleep(seconds),
            max_backoff_s=max_backoff_s,
            max_retry_after_s=max_retry_after_s,
            jitter=jitter,
        )
        self._window: int | bool | None = False  # False: not looked up yet
        self._hasher = PromptHasher(self.model, config.temperature, config.sample_index)
        self._token_ratio = 1.0  # the server's prompt tokens / litellm's count
        self._parses = RecentParses()  # a replay meets the same replies again

    # -- the policy --------------------------------------------------------------------

    def propose(self, context: ComposeContext) -> PolicyDecision:
        """Ask the model, parse its plan (one repair round), and return it with the audit."""
        messages = self.messages_for(context)
        prompt = _Prompt(messages, self._hasher.digest(messages))
        audit = self._new_audit(prompt)
        litellm = load_litellm()  # the first import takes seconds: not the model's latency
        started = time.perf_counter()
        try:
            prompt = self._fit(litellm, context, audit, prompt)
            parsed = self._plan(prompt, context, audit)
        except StrategyAgentError as error:
            audit["latency_ms"] = _elapsed_ms(started)
            audit["error"] = redact(str(error), [self._api_key])
            error.audit = audit  # type: ignore[attr-defined]
            raise
        audit["latency_ms"] = _elapsed_ms(started)
        plan = parsed.proposal  # a remembered parse may come from another cycle
        proposal = LlmPlanProposal(  # validation copies the lists: plans share no list
            ts=context.ts,
            items=plan.items,
            notes=plan.notes,
            model_meta={"model": self.model, "prompt_hash": audit["prompt_hash"]},
        )
        audit["plan"] = proposal.model_dump(mode="json")
        return PolicyDecision(proposal=proposal, audit=audit, rejected_items=parsed.rejected)

    def messages_for(self, context: ComposeContext) -> list[dict[str, str]]:
        """The exact prompt of a cycle (system + user message)."""
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": render_context(context)},
        ]

    def _fit(
        self, litellm: ModuleType, context: ComposeContext, audit: dict[str, Any], prompt: _Prompt
    ) -> _Prompt:
        """The cycle's messages, fitted to the context window when it is known."""
        if self._window is False:
            self._window = context_window(self.config, litellm, self.model)
        window = self._window
        if not isinstance(window, int) or isinstance(window, bool):
            return prompt
        reserve = reply_reserve(self.config, window)
        fitted = fit_prompt(
            context,
            self.messages_for,
            scaled_counter(litellm, self.model, self._token_ratio),
            budget=window - reserve,
            describe_limit=(
                f"{self.model}'s context window is {window} tokens, {reserve} kept for the reply"
            ),
            rendered=prompt.messages,
        )
        audit["prompt_fit"] = fitted.audit(window, reserve, self._token_ratio)
        audit["prompt_trimmed"] = fitted.series_points_dropped > 0
        if fitted.messages is not prompt.messages:
            prompt = _Prompt(fitted.messages, self._hasher.digest(fitted.messages))
        audit.update(self._prompt_fields(prompt))
        return prompt

    def _calibrate(self, reply: Reply, audit: dict[str, Any]) -> None:
        """Learn how the server counts tokens against litellm's count (see ``prompt_fit``)."""
        fit = audit.get("prompt_fit")
        if reply.cached or not fit:
            return
        litellm_count = fit["prompt_tokens_estimate"] / fit["token_ratio"]
        ratio = observed_ratio(reply.prompt_tokens, round(litellm_count))
        if ratio is not None:
            self._token_ratio = ratio

    def _plan(self, prompt: _Prompt, context: ComposeContext, audit: dict[str, Any]) -> ParsedPlan:
        messages = prompt.messages
        symbols = _known_symbols(context)
        positions = _positions(context)
        reply = self._complete(messages, audit, prompt.digest.cache_key)
        self._calibrate(reply, audit)
        try:
            return self._parse(reply, context.ts, symbols, positions, audit)
        except InvalidPlanError as first_error:
            if isinstance(first_error, ReplyStopped) and not first_error.repairable:
                raise
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
                return self._parse(repaired, context.ts, symbols, positions, audit)
            except InvalidPlanError as second_error:
                raise InvalidPlanError(
                    f"{self.model} gave no usable plan, even after one repair round "
                    f"(repair attempted): {second_error}"
                ) from None

    def _parse(
        self,
        reply: Reply,
        ts: int,
        symbols: list[str],
        positions: dict[str, float],
        audit: dict[str, Any],
    ) -> ParsedPlan:
        """The plan of one reply; a stopped reply is refused whole, reasoning is noted."""
        stopped = stopped_reason(reply)
        if stopped is not None:
            raise stopped
        parsed = self._parses.parse(reply.text, ts, symbols, positions)
        reasoning = parsed.reasoning or reply.reasoning
        if reasoning:
            audit["reasoning_dropped"] = True
            audit["reasoning"] = self._redacted(reasoning)[:MAX_REASONING_CHARS]
        return parsed

    # -- one completion: cache, then provider ------------------------------------------

    def _complete(
        self, messages: list[dict[str, str]], audit: dict[str, Any], key: str | None = None
    ) -> Reply:
        """One completion, from the cache when it has it (``key``: the messages' cache key)."""
        if key is None:
            key = self._hasher.digest(messages).cache_key
        cached = self._cache_get(messages, key)
        if cached is not None:
            reply = Reply(
                cached.text,
                cached.prompt_tokens,
                cached.completion_tokens,
                0.0,
                None,
                True,
                source="cache",
            )
        elif (reply := self.transport.call(messages, audit)) and stopped_reason(reply) is None:
            self._cache_put(
                messages,
                key,
                CachedReply(
                    reply.text, reply.prompt_tokens, reply.completion_tokens, reply.cost_usd
                ),
            )
        account_usage(audit, reply, self._redacted(reply.text))
        return reply

    def _cache_get(self, messages: list[dict[str, str]], key: str) -> CachedReply | None:
        """The cached reply, if any; a failing cache is skipped, never fatal."""
        if self.cache is None:
            return None
        try:
            return self.cache.get(
                self.model,
                self.config.temperature,
                messages,
                self.config.sample_index,
                key=key,
            )
        except sqlite3.Error as error:
            logger.warning("LLM response cache unreadable, asking the model: %s", error)
            return None

    def _cache_put(self, messages: list[dict[str, str]], key: str, reply: CachedReply) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(
                self.model,
                self.config.temperature,
                messages,
                reply,
                sample_index=self.config.sample_index,
                key=key,
            )
        except sqlite3.Error as error:
            logger.warning("LLM response cache not written: %s", error)

    def ping(self) -> str:
        """One tiny call, no retries, no cache, no schema: the reply text (connection test).

        Raises the same translated errors as ``propose`` (refused key, unknown model...).
        """
        return self.transport.ping()

    def _redacted(self, text: str) -> str:
        return redact(text, [self._api_key])

    def _prompt_fields(self, prompt: _Prompt) -> dict[str, Any]:
        return {"prompt_hash": prompt.digest.prompt_hash, "messages": prompt.messages}

    def _new_audit(self, prompt: _Prompt) -> dict[str, Any]:
        return {
            "policy": "llm",
            "model": self.model,
            "provider": self.config.provider,
            "model_id": self.config.model_id,
            "temperature": self.config.temperature,
            **self._prompt_fields(prompt),
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
            "reply_source": None,
            "reasoning_dropped": False,
            "plan": None,
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


def _positions(context: ComposeContext) -> dict[str, float]:
    return {symbol: p.quantity for symbol, p in context.portfolio.positions.items()}


def _known_symbols(context: ComposeContext) -> list[str]:
    listed = (context.constraints or {}).get("symbols") or []
    symbols = [s for s in listed if isinstance(s, str)]
    symbols += [f.instrument.symbol for f in context.features]
    return list(dict.fromkeys(symbols))


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
