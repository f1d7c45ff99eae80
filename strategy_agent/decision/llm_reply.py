"""Read one chat completion as litellm returns it: the text, or the plan of a tool call.

Some OpenAI-compatible proxies deliver the plan as a tool (function) call with
empty text; its arguments are then the reply (and what is stored as the raw
reply). Its ``cost_usd`` is priced at the config's ``input_cost_per_mtok`` and
``output_cost_per_mtok`` when both are set (as the backtest's estimate and
budget price it), else by litellm. A reply stopped by a content filter, refused, or cut off by
``max_tokens`` is never parsed, not even in part: ``stopped_reason`` says why,
and the policy repairs (cut off) or falls back (filtered, refused).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from strategy_agent.decision.plan_json import REASONING_END
from strategy_agent.errors import InvalidPlanError
from strategy_agent.models import ModelConfig

RAW_REPLY_MAX_CHARS = 4_000


class ReplyStopped(InvalidPlanError):
    """The provider stopped or refused the reply; ``repairable`` says if asking again may help."""

    def __init__(self, message: str, repairable: bool) -> None:
        super().__init__(message)
        self.repairable = repairable


@dataclass
class Reply:
    """One completion: the text to parse and what the provider said about it."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    finish_reason: str | None
    cached: bool
    source: str = "content"  # or "tool_call:<name>"
    reasoning: str | None = None  # a separate reasoning field (DeepSeek's reasoning_content)
    refusal: str | None = None


def reply_of(litellm: ModuleType, response: Any, config: ModelConfig | None = None) -> Reply:
    """The ``Reply`` of a litellm ``ModelResponse`` (``config``: its configured prices)."""
    choice = response.choices[0] if getattr(response, "choices", None) else None
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    text = content if isinstance(content, str) else ""
    source = "content"
    calls = _tool_calls(message)
    if calls:
        text, source = plan_text_of_tool_calls(calls), "tool_call:" + calls[-1][0]
    usage = getattr(response, "usage", None)
    reasoning = getattr(message, "reasoning_content", None)
    refusal = getattr(message, "refusal", None)
    prompt_tokens = int_or_none(getattr(usage, "prompt_tokens", None))
    completion_tokens = int_or_none(getattr(usage, "completion_tokens", None))
    configured = configured_cost(config, prompt_tokens, completion_tokens)
    return Reply(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=configured if configured is not None else _cost(litellm, response),
        finish_reason=_str_or_none(getattr(choice, "finish_reason", None)),
        cached=False,
        source=source,
        reasoning=reasoning if isinstance(reasoning, str) and reasoning.strip() else None,
        refusal=refusal if isinstance(refusal, str) and refusal.strip() else None,
    )


def _tool_calls(message: Any) -> list[tuple[str, Any]]:
    """``[(function name, arguments)]`` of the message's tool calls (or legacy function_call)."""
    calls: list[tuple[str, Any]] = []
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        if function is not None:
            calls.append((str(getattr(function, "name", "") or "?"), function.arguments))
    legacy = getattr(message, "function_call", None)
    if not calls and legacy is not None:
        calls.append((str(getattr(legacy, "name", "") or "?"), getattr(legacy, "arguments", None)))
    return calls


def plan_text_of_tool_calls(calls: list[tuple[str, Any]]) -> str:
    """The reply text of tool calls: one call's arguments, or a list when each call is one item.

    Arguments arrive as a JSON string (OpenAI) or already as an object (some proxies).
    """
    texts = [args if isinstance(args, str) else json.dumps(args) for _, args in calls]
    if len(texts) == 1:
        return texts[0]
    decoded = []
    for text in texts:
        try:
            decoded.append(json.loads(text))
        except ValueError:
            return texts[-1]
    if all(isinstance(value, dict) and not _has_list(value) for value in decoded):
        return json.dumps(decoded)  # one call per decision: together they are the plan
    return texts[-1]


def _has_list(value: dict[str, Any]) -> bool:
    return any(isinstance(inner, list) for inner in value.values())


def stopped_reason(reply: Reply) -> ReplyStopped | None:
    """Why the reply must not be parsed (filtered, refused, cut off), or ``None``."""
    if reply.refusal is not None:
        return ReplyStopped(
            f"the model refused to answer ({reply.refusal[:200]}); nothing of the reply is used",
            repairable=False,
        )
    if reply.finish_reason == "content_filter":
        return ReplyStopped(
            'the provider\'s content filter stopped the reply (finish_reason "content_filter"); '
            "nothing of the reply is used",
            repairable=False,
        )
    if reply.finish_reason == "length":
        return ReplyStopped(
            'the reply was cut off by the max_tokens limit (finish_reason "length") and is '
            "not used, not even in part; answer with a shorter JSON object, reasoning kept "
            "short",
            repairable=True,
        )
    return None


def int_or_none(value: Any) -> int | None:
    """``value`` when it is an ``int`` (not a bool), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def configured_cost(
    config: ModelConfig | None, prompt_tokens: int | None, completion_tokens: int | None
) -> float | None:
    """US dollars of these tokens at the config's prices per million; ``None`` when the
    config does not set both prices or the provider reported no usage."""
    if config is None or config.input_cost_per_mtok is None or config.output_cost_per_mtok is None:
        return None
    if prompt_tokens is None and completion_tokens is None:
        return None
    return (
        (prompt_tokens or 0) * config.input_cost_per_mtok
        + (completion_tokens or 0) * config.output_cost_per_mtok
    ) / 1_000_000


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


def account_usage(audit: dict[str, Any], reply: Reply, shown_text: str) -> None:
    """Add one completion's usage to a policy's audit (cost stays null once any call's is
    unknown); ``shown_text`` is the reply as it may be shown (secrets redacted)."""
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
    audit["reply_source"] = reply.source
    audit["raw_reply"] = kept_reply(shown_text)


def kept_reply(text: str) -> str:
    """The raw reply as stored: whole when short; else its head, or, when long reasoning
    comes first, its tail (the answer is what a reader needs)."""
    if len(text) <= RAW_REPLY_MAX_CHARS:
        return text
    ends = list(REASONING_END.finditer(text))
    if not ends:
        return text[:RAW_REPLY_MAX_CHARS]
    marker = f"[{ends[-1].start()} characters of reasoning left out, see 'reasoning'] "
    return marker + text[-(RAW_REPLY_MAX_CHARS - len(marker)) :]


def _add(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return (total or 0) + value
