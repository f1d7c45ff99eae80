"""The notes a backtest adds to its plan and its runs: where its window starts and ends,
whether its samples can differ, and cycles the fallback policy decided for the model."""

from __future__ import annotations

from collections.abc import Sequence

from strategy_agent.backtest.window import RunWindow, utc
from strategy_agent.models import ModelConfig


def window_notes(from_ms: int, to_ms: int, window: RunWindow) -> list[str]:
    """Where the window starts or ends other than asked (``from_ms``/``to_ms``, epoch ms)."""
    notes = []
    step = window.step_ms
    if window.first_ms > -(-from_ms // step) * step:
        notes.append(
            f"the window starts at {utc(window.first_ms)} UTC: the first candle with a full "
            f"lookback behind it in the data"
        )
    if window.last_ms < to_ms // step * step:
        notes.append(f"the window ends at {utc(window.last_ms)} UTC: the last candle in the data")
    return notes


def sample_notes(configs: Sequence[tuple[str, ModelConfig]], samples: int) -> list[str]:
    """With ``--samples N``, a note for each LLM config whose samples may not differ."""
    if samples < 2:
        return []
    notes = []
    for label, llm in configs:
        if llm.is_builtin:
            continue
        if llm.temperature == 0:
            notes.append(
                f"{label}: temperature 0: the {samples} samples will be the same; set "
                f"temperature > 0 to measure the spread"
            )
        elif llm.temperature is None:
            notes.append(
                f"{label}: temperature not set: the provider's default decides whether "
                f"the {samples} samples differ; set temperature > 0 to measure the spread"
            )
    return notes


def fallback_note(fallback_cycles: int, cycles: int, fallback: str) -> str:
    """ "12 of 624 cycles fell back to noop": how many cycles the model did not decide."""
    return f"{fallback_cycles:,} of {cycles:,} cycles fell back to {fallback}"


def fallback_failure(in_row: int, audit: dict[str, object], config: ModelConfig) -> str:
    """Why a run whose last cycles all fell back was stopped, for the trader."""
    error = audit.get("fallback_reason") or "the policy failed"
    return (
        f"the model failed in {in_row} cycles in a row and each fell back to "
        f"{config.fallback} (last error: {error}); a backtest of {config.fallback} decisions "
        f"measures nothing about the model, so the run was stopped. Check that the model's "
        f"server is running and reachable at its api_base, the API key and the model name, "
        f"then run again"
    )
