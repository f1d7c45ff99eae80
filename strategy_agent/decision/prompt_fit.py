"""Fit a cycle's prompt to the model's context window.

The window is ``ModelConfig.context_window`` when set (local models), else
litellm's model info (``max_input_tokens``), else unknown (nothing is trimmed).
Tokens are counted with litellm's offline counter, scaled by what the server
reported last time: a local model's tokenizer may count our digit-heavy tables
at 2-3x litellm's figure, and ``usage.prompt_tokens`` says by how much.

Room is kept for the reply (``max_tokens``, else an eighth of the window, at
most 1,024). When the prompt does not fit, the oldest points of the price and
RSI series go first, one at a time, down to no series at all; when it still
does not fit, ``ConfigurationError`` stops the strategy with the sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import ComposeContext, ModelConfig

Messages = list[dict[str, str]]
MAX_TOKEN_RATIO = 4.0
_DEFAULT_REPLY_TOKENS = 1_024


def context_window(config: ModelConfig, litellm: ModuleType, model: str) -> int | None:
    """The model's input window in tokens, if known."""
    if config.context_window is not None:
        return config.context_window
    try:
        info = litellm.get_model_info(model)
    except Exception:  # a model litellm does not know: the window is unknown
        return None
    for key in ("max_input_tokens", "max_tokens"):
        value = info.get(key) if isinstance(info, Mapping) else None
        if isinstance(value, int) and value > 0:
            return value
    return None


def reply_reserve(config: ModelConfig, window: int) -> int:
    """Tokens kept free for the reply."""
    if config.max_tokens is not None:
        return config.max_tokens
    return min(_DEFAULT_REPLY_TOKENS, window // 8)


@dataclass(frozen=True)
class FittedPrompt:
    """The messages to send and what fitting them did (for the audit)."""

    messages: Messages
    estimated_tokens: int
    series_points_dropped: int

    def audit(self, window: int, reserve: int, ratio: float) -> dict[str, Any]:
        return {
            "context_window": window,
            "reply_reserve_tokens": reserve,
            "prompt_tokens_estimate": self.estimated_tokens,
            "token_ratio": round(ratio, 3),
            "series_points_dropped": self.series_points_dropped,
        }


def fit_prompt(
    context: ComposeContext,
    render: Callable[[ComposeContext], Messages],
    count: Callable[[Messages], int],
    *,
    budget: int,
    describe_limit: str,
    rendered: Messages | None = None,
) -> FittedPrompt:
    """The messages of ``context``, series trimmed oldest first until ``count`` <= ``budget``.

    ``describe_limit`` ends the error message ("window 4096 tokens of openai/x,
    512 kept for the reply"). ``rendered``: ``render(context)``, when the caller
    has it already. Raises ``ConfigurationError`` when even the prompt without
    series does not fit.
    """
    longest = _longest_series(context)
    messages = rendered if rendered is not None else render(context)
    tokens = count(messages)
    dropped = 0
    while tokens > budget and dropped < longest:
        dropped += 1
        messages = render(_trim_series(context, longest - dropped))
        tokens = count(messages)
    if tokens > budget:
        system = count(messages[:1])
        raise ConfigurationError(
            f"the prompt needs about {tokens} tokens (system {system}, market and account "
            f"{tokens - system}) even with the price series dropped, but only {budget} fit "
            f"({describe_limit}); trade fewer symbols, shorten the strategy prompt, lower "
            f"max_tokens or use a model with a larger context window (context_window in [llm])"
        )
    return FittedPrompt(messages, tokens, dropped * _series_count(context))


def scaled_counter(litellm: ModuleType, model: str, ratio: float) -> Callable[[Messages], int]:
    """Counts messages with litellm's tokenizer, times ``ratio`` (the server's own count)."""

    def count(messages: Messages) -> int:
        return math.ceil(litellm.token_counter(model=model, messages=messages) * ratio)

    return count


def observed_ratio(reported: int | None, estimated: int | None) -> float | None:
    """The server's prompt tokens over litellm's count of the same prompt (>= 1, capped)."""
    if not reported or not estimated or estimated <= 0:
        return None
    return min(max(reported / estimated, 1.0), MAX_TOKEN_RATIO)


def _series_of(context: ComposeContext) -> list[Mapping[str, Any]]:
    series = []
    for vector in context.features:
        value = (vector.meta or {}).get("series")
        if isinstance(value, Mapping):
            series.append(value)
    return series


def _longest_series(context: ComposeContext) -> int:
    lengths = [
        len(values)
        for series in _series_of(context)
        for values in series.values()
        if isinstance(values, list | tuple)
    ]
    return max(lengths, default=0)


def _series_count(context: ComposeContext) -> int:
    return sum(
        1
        for series in _series_of(context)
        for values in series.values()
        if isinstance(values, list | tuple) and values
    )


def _trim_series(context: ComposeContext, keep: int) -> ComposeContext:
    """A copy of ``context`` whose series hold only their newest ``keep`` points."""
    features = []
    for vector in context.features:
        meta = dict(vector.meta or {})
        series = meta.get("series")
        if isinstance(series, Mapping):
            meta["series"] = {
                name: (list(values)[-keep:] if keep > 0 else [])
                if isinstance(values, list | tuple)
                else values
                for name, values in series.items()
            }
        features.append(vector.model_copy(update={"meta": meta}))
    return context.model_copy(update={"features": features})
