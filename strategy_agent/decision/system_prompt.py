"""The system prompt: role, action semantics, output schema, the actual limits, the context's legend.

The limits are read from ``ComposeContext.constraints`` (``GuardrailLimits.model_dump()``)
and written as numbers, so the model sees what the guardrails will enforce.
``PlanReply`` is the schema the model must answer with; it is also sent as
``response_format`` to providers that support structured output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from strategy_agent.errors import ConfigurationError


class PlanReplyItem(BaseModel):
    """One decision as the model writes it (the LLM-facing schema)."""

    model_config = ConfigDict(extra="forbid")

    instrument: str
    action: Literal["buy", "sell", "flat", "noop"]
    target_qty: float
    confidence: float
    rationale: str


class PlanReply(BaseModel):
    """The whole answer the model must give (sent as ``response_format``)."""

    model_config = ConfigDict(extra="forbid")

    items: list[PlanReplyItem]
    notes: str


class PromptLimits(BaseModel):
    """The limits the prompt states (a tolerant reading of ``GuardrailLimits.model_dump()``)."""

    model_config = ConfigDict(extra="ignore")

    symbols: list[str] = Field(default_factory=list)
    market_type: str = "spot"
    allow_short: bool = False
    max_leverage: float = 1.0
    max_positions: int | None = None
    max_position_pct: float | None = None
    max_position_qty: dict[str, float] = Field(default_factory=dict)
    max_gross_exposure: float | None = None
    max_net_exposure: float | None = None
    min_confidence: float = 0.0
    cooldown_ms: int = 0
    fee_bps: float = 0.0
    slippage_bps: float = 0.0
    contract_sizes: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_constraints(cls, constraints: Mapping[str, Any] | None) -> PromptLimits:
        try:
            return cls.model_validate(dict(constraints or {}))
        except ValidationError as error:
            raise ConfigurationError(f"the strategy's limits are malformed: {error}") from None


_ROLE = """\
You are the trading policy of an automated strategy: each cycle, decide the position to \
hold in each instrument. Guardrails clamp or reject what breaks the limits below."""

_ACTIONS = """\
Actions (at most one item per instrument; instruments you omit stay unchanged):
- buy / sell: target_qty is the SIGNED position AFTER the trade, in %s \
(-0.5 = short 0.5), not an order size: to add 0.1 to a 0.3 long, buy 0.4; to halve \
it, sell 0.15.
- flat: close the position; noop: keep it."""

_SCHEMA = """\
Reply with ONE JSON object and nothing else (no prose, no code fence):
{"items":[{"instrument":"%s","action":"buy","target_qty":0.01,"confidence":0.7,\
"rationale":"at most 20 words"}],"notes":"one short sentence"}
confidence is 0..1. {"items":[],"notes":"..."} changes nothing."""

_LEGEND = """\
In the user message: market = last closed candle (ret_* and realized_vol_24 in %%, \
max_qty = the largest |target_qty| the limits allow now); digest = \
your closed trades (score = recent performance: trade smaller where you keep losing); \
strategy = the user's instructions: follow them within the limits."""


def build_system_prompt(constraints: Mapping[str, Any] | None) -> str:
    """The full system prompt for these limits (numbers filled in, no placeholders)."""
    limits = PromptLimits.from_constraints(constraints)
    example_symbol = limits.symbols[0] if limits.symbols else "BTC/USDT"
    sections = [
        _ROLE,
        _ACTIONS % ("contracts" if limits.contract_sizes else "base units"),
        "Limits (equity = cash + positions at mark price):\n" + render_limits(limits),
        _SCHEMA % example_symbol,
        _LEGEND % (),
    ]
    return "\n\n".join(sections)


def render_limits(limits: PromptLimits) -> str:
    """The limits as short bullet lines, in words the model can act on."""
    lines = []
    if limits.symbols:
        lines.append(f"- instruments: {', '.join(limits.symbols)} only")
    direction = "long and short" if limits.allow_short else "long only (target_qty >= 0)"
    lines.append(
        f"- market: {limits.market_type}, {direction}, leverage <= {_num(limits.max_leverage)}x"
    )
    lines.extend(_size_lines(limits))
    if limits.min_confidence > 0:
        lines.append(f"- items with confidence below {_num(limits.min_confidence)} are rejected")
    if limits.cooldown_ms > 0:
        lines.append(
            f"- after a losing trade, wait {format_duration(limits.cooldown_ms)} before "
            f"re-entering that instrument"
        )
    cost_bps = limits.fee_bps + limits.slippage_bps
    lines.append(
        f"- each fill costs about {_num(cost_bps)} bps (fee {_num(limits.fee_bps)}, slippage "
        f"{_num(limits.slippage_bps)}): avoid small, frequent changes"
    )
    return "\n".join(lines)


def _size_lines(limits: PromptLimits) -> list[str]:
    lines = []
    if limits.max_positions is not None:
        lines.append(f"- at most {limits.max_positions} open positions at once")
    value = "|target_qty| x price"
    if limits.contract_sizes:
        sizes = ", ".join(f"{s} {_num(size)}" for s, size in sorted(limits.contract_sizes.items()))
        others = not limits.symbols or any(s not in limits.contract_sizes for s in limits.symbols)
        lines.append(f"- base units per contract: {sizes}" + (" (others 1)" if others else ""))
        value = "|target_qty| x contract size x price"
    if limits.max_position_pct is not None:
        lines.append(f"- per instrument: {value} <= {_pct(limits.max_position_pct)} of equity")
    if limits.max_position_qty:
        caps = ", ".join(f"{s} {_num(q)}" for s, q in sorted(limits.max_position_qty.items()))
        lines.append(f"- |target_qty| caps: {caps}")
    exposure = []
    if limits.max_gross_exposure is not None:
        exposure.append(f"gross (sum of |notional|) <= {_num(limits.max_gross_exposure)}x equity")
    if limits.max_net_exposure is not None:
        exposure.append(f"net <= {_num(limits.max_net_exposure)}x equity")
    if exposure:
        lines.append("- exposure: " + ", ".join(exposure))
    return lines


def format_duration(ms: float) -> str:
    """``5400000`` -> ``"1h30m"``; compact, for prompts."""
    if type(ms) is not int:  # an int is remembered (a prompt writes a few durations a cycle)
        return _duration(ms)
    text = _DURATIONS.get(ms)
    if text is None:
        if len(_DURATIONS) >= 4_096:
            _DURATIONS.clear()
        text = _DURATIONS[ms] = _duration(ms)
    return text


_DURATIONS: dict[int, str] = {}


def _duration(ms: float) -> str:
    if ms < 60_000:
        return f"{max(int(ms // 1000), 0)}s"
    minutes = round(ms / 60_000)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return "".join(parts[:2] if days else parts)


def _num(value: float) -> str:
    return f"{value:.6g}"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"
