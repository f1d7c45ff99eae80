"""What an LLM backtest will cost, before it runs, and how that compared afterwards.

The estimate renders real prompts for each config: the exact messages
``LlmPolicy.messages_for`` builds (its system prompt from the config's limits,
the user message from ``render_context``) on representative cycles
(``sample_context``: the simulated market's candles for the config's symbols
and lookback, once flat and once invested), counted with litellm's offline
tokenizer as ``prompt_fit`` counts them; their mean is the prompt per call. Completion tokens come from a
constant per plan item (one item per symbol) calibrated on the plan shape the
system prompt asks for, capped by ``max_tokens``; a reasoning model is given
``max_tokens`` (else a fixed allowance), since its hidden reasoning is billed.

Calls: one per cycle, config and sample (a built-in rule costs nothing). A
reply that needs a repair round costs a second call; the estimate does not
count those, so a model that often answers prose lands above it.

Prices: ``input_cost_per_mtok``/``output_cost_per_mtok`` of the config when
set, else litellm's price map (read offline), else unknown (``cost_usd``
``None``: the CLI says so instead of printing $0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType

from strategy_agent.models import ModelConfig, UserRequest, interval_ms

# Completion tokens of one plan item and of the reply around the items, calibrated on the
# JSON plans the system prompt asks for ({"instrument","action","target_qty","confidence",
# "rationale"} with a one-line rationale: 35-45 tokens an item with OpenAI's tokenizers).
COMPLETION_TOKENS_PER_ITEM = 40
COMPLETION_TOKENS_OVERHEAD = 20
# Hidden reasoning a reasoning model is billed for when max_tokens does not bound it.
REASONING_ALLOWANCE_TOKENS = 1_500
_PER_MTOK = 1_000_000


@dataclass(frozen=True)
class Prices:
    """US dollars per prompt and per completion token, and where they come from."""

    input_per_token: float
    output_per_token: float
    source: str  # "built-in rule", "configured", "litellm"


def model_prices(config: ModelConfig, litellm: ModuleType | None = None) -> Prices | None:
    """The config's prices: configured, else litellm's, else ``None`` (unknown)."""
    if config.is_builtin:
        return Prices(0.0, 0.0, "built-in rule")
    if config.input_cost_per_mtok is not None and config.output_cost_per_mtok is not None:
        return Prices(
            config.input_cost_per_mtok / _PER_MTOK,
            config.output_cost_per_mtok / _PER_MTOK,
            "configured",
        )
    litellm = litellm or _litellm()
    from strategy_agent.decision.llm_transport import litellm_model

    try:
        prompt_usd, completion_usd = litellm.cost_per_token(
            model=litellm_model(config), prompt_tokens=_PER_MTOK, completion_tokens=_PER_MTOK
        )
    except Exception:  # a model litellm has no price for
        return None
    return Prices(prompt_usd / _PER_MTOK, completion_usd / _PER_MTOK, "litellm")


def price_usd(
    config: ModelConfig,
    prompt_tokens: int,
    completion_tokens: int,
    litellm: ModuleType | None = None,
) -> float | None:
    """Dollars of these tokens at the config's prices; ``None`` when the price is unknown."""
    prices = model_prices(config, litellm)
    if prices is None:
        return None
    return prompt_tokens * prices.input_per_token + completion_tokens * prices.output_per_token


@dataclass(frozen=True)
class ConfigEstimate:
    """The estimate of one config over all its samples; tokens are totals unless per call."""

    label: str
    model: str
    calls: int
    prompt_tokens_per_call: int
    completion_tokens_per_call: int
    cost_usd: float | None
    price_source: str | None
    notes: tuple[str, ...] = ()

    @property
    def prompt_tokens(self) -> int:
        return self.calls * self.prompt_tokens_per_call

    @property
    def completion_tokens(self) -> int:
        return self.calls * self.completion_tokens_per_call

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class CostEstimate:
    """The estimate of a whole backtest: every config, ``samples`` samples of ``cycles`` each."""

    cycles: int
    samples: int
    configs: list[ConfigEstimate] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(c.calls for c in self.configs)

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.configs)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.configs)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float | None:
        """Total dollars; ``None`` when any config that calls an LLM has no known price."""
        costs = [c.cost_usd for c in self.configs if c.calls]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    def lines(self) -> list[str]:
        """The estimate as the CLI prints it, one line per config and a total."""
        out = [
            f"{c.label} ({c.model}): {c.calls:,} LLM calls, ~{c.prompt_tokens:,} prompt + "
            f"~{c.completion_tokens:,} completion tokens, {_usd(c.cost_usd, c.price_source)}"
            for c in self.configs
        ]
        out += [f"  note: {note}" for c in self.configs for note in c.notes]
        llm_configs = sum(1 for c in self.configs if c.calls)
        out.append(
            f"total: {self.calls:,} LLM calls ({self.cycles:,} cycles x {llm_configs} LLM "
            f"config{'' if llm_configs == 1 else 's'} x {self.samples} samples), "
            f"~{self.tokens:,} tokens, {_usd(self.cost_usd, 'estimate')}"
        )
        return out


def cycles_in_window(start_ms: int, end_ms: int, interval: str) -> int:
    """Decisions in a window: one per candle whose open time is in ``[start_ms, end_ms]``."""
    if end_ms < start_ms:
        raise ValueError(f"the window ends ({end_ms}) before it starts ({start_ms})")
    return (end_ms - start_ms) // interval_ms(interval) + 1


def estimate_config(
    request: UserRequest,
    cycles: int,
    samples: int = 1,
    *,
    label: str | None = None,
    litellm: ModuleType | None = None,
) -> ConfigEstimate:
    """Calls, tokens and dollars of ``cycles`` decisions x ``samples`` samples of one config."""
    if cycles < 0 or samples < 1:
        raise ValueError(f"need cycles >= 0 and samples >= 1, got {cycles} and {samples}")
    config = request.llm
    label = label or request.trading.strategy_name
    if config.is_builtin:
        return ConfigEstimate(label, f"builtin/{config.model_id}", 0, 0, 0, 0.0, "built-in rule")
    from strategy_agent.decision.llm_transport import litellm_model

    litellm = litellm or _litellm()
    calls = cycles * samples
    prompt = prompt_tokens_per_call(request, litellm)
    completion, notes = _completion_per_call(request, litellm)
    prices = model_prices(config, litellm)
    cost = (
        None
        if prices is None
        else calls * (prompt * prices.input_per_token + completion * prices.output_per_token)
    )
    if prices is None:
        notes += (
            f"no price known for {litellm_model(config)}: set input_cost_per_mtok and "
            f"output_cost_per_mtok in [llm] to see dollars",
        )
    return ConfigEstimate(
        label,
        litellm_model(config),
        calls,
        prompt,
        completion,
        cost,
        None if prices is None else prices.source,
        notes,
    )


def estimate_backtest(
    requests: Sequence[UserRequest],
    cycles: int,
    samples: int = 1,
    *,
    labels: Sequence[str] | None = None,
) -> CostEstimate:
    """The estimate of running every config for ``cycles`` decisions, ``samples`` times each."""
    litellm = None if all(r.llm.is_builtin for r in requests) else _litellm()
    names = list(labels) if labels is not None else [r.trading.strategy_name for r in requests]
    return CostEstimate(
        cycles,
        samples,
        [
            estimate_config(request, cycles, samples, label=name, litellm=litellm)
            for request, name in zip(requests, names, strict=True)
        ],
    )


def prompt_tokens_per_call(request: UserRequest, litellm: ModuleType | None = None) -> int:
    """Mean prompt tokens of the config's representative cycles, counted as ``prompt_fit`` does."""
    from strategy_agent.backtest.sample_context import representative_prompts
    from strategy_agent.decision.llm_transport import litellm_model
    from strategy_agent.decision.prompt_fit import scaled_counter

    litellm = litellm or _litellm()
    count = scaled_counter(litellm, litellm_model(request.llm), 1.0)
    prompts = representative_prompts(request)
    return round(sum(count(messages) for messages in prompts) / len(prompts))


def _completion_per_call(request: UserRequest, litellm: ModuleType) -> tuple[int, tuple[str, ...]]:
    config = request.llm
    plan = COMPLETION_TOKENS_OVERHEAD + COMPLETION_TOKENS_PER_ITEM * len(request.trading.symbols)
    if _is_reasoning(config, litellm):
        budget = config.max_tokens or plan + REASONING_ALLOWANCE_TOKENS
        return budget, (
            f"{config.model_id} reasons before answering: completion tokens are "
            f"{'max_tokens' if config.max_tokens else 'a rough allowance'} per call",
        )
    return (plan if config.max_tokens is None else min(plan, config.max_tokens)), ()


def _is_reasoning(config: ModelConfig, litellm: ModuleType) -> bool:
    from strategy_agent.decision.llm_transport import litellm_model

    try:
        return bool(litellm.supports_reasoning(model=litellm_model(config)))
    except Exception:  # unknown to litellm: assume a plain chat model
        return False


def _litellm() -> ModuleType:
    from strategy_agent.decision.llm_transport import load_litellm

    return load_litellm()


def _usd(value: float | None, source: str | None) -> str:
    if value is None:
        return "dollars unknown"
    return f"${value:,.4f}" + (f" ({source} prices)" if source not in (None, "estimate") else "")


# -- after the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimateCheck:
    """The estimate beside what a run actually used; errors are (estimate - actual) / actual."""

    estimated_tokens: int
    actual_tokens: int
    estimated_usd: float | None
    actual_usd: float | None

    @property
    def token_error(self) -> float | None:
        if self.actual_tokens <= 0:
            return None
        return (self.estimated_tokens - self.actual_tokens) / self.actual_tokens

    @property
    def usd_error(self) -> float | None:
        if self.estimated_usd is None or not self.actual_usd:
            return None
        return (self.estimated_usd - self.actual_usd) / self.actual_usd

    def within(self, tolerance: float = 0.15) -> bool:
        """True when the token estimate is within ``tolerance`` (a fraction) of the actual."""
        error = self.token_error
        return error is not None and abs(error) <= tolerance

    def lines(self) -> list[str]:
        """``estimated ... actual ... (+x %)`` for tokens and dollars, as the CLI prints them."""
        return [
            f"tokens: estimated {self.estimated_tokens:,}, actual {self.actual_tokens:,}"
            + _pct(self.token_error),
            f"dollars: estimated {_usd(self.estimated_usd, None)}, actual "
            f"{_usd(self.actual_usd, None)}" + _pct(self.usd_error),
        ]


def compare_estimate(
    estimate: CostEstimate | ConfigEstimate, actual_tokens: int, actual_usd: float | None
) -> EstimateCheck:
    """Set the estimate beside actual figures (e.g. summed ``store.llm_usage`` of its runs)."""
    return EstimateCheck(estimate.tokens, actual_tokens, estimate.cost_usd, actual_usd)


def _pct(error: float | None) -> str:
    return "" if error is None or not math.isfinite(error) else f" ({error * 100:+.1f} %)"
