"""What a cycle reports and how its stages fail (``strategy_agent.core`` runs the cycle).

``CycleReport`` is one cycle's outcome for the CLI line and the UI;
``StrategyHalted`` stops a strategy until the user fixes something (stored
``error``), ``StrategyPaused`` (a key the exchange refused) stores ``paused``;
``CycleFailed`` carries the stage a failure happened in (``stage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strategy_agent.errors import StrategyAgentError
from strategy_agent.execution.fills import fill_from_result
from strategy_agent.models import (
    ComposeContext,
    ComposeResult,
    ExecutionResult,
    Fill,
    HistoryRecord,
    StrategyStatus,
)


class StrategyHalted(StrategyAgentError):
    """The strategy cannot go on until the user fixes something (reason in the message)."""

    status: StrategyStatus = "error"  # the status the runner stores


class StrategyPaused(StrategyHalted):
    """Halted on a refused exchange key: stored ``paused`` with the key to check, not ``error``."""

    status: StrategyStatus = "paused"


@dataclass
class CycleReport:
    """What one cycle did, for the CLI line and the UI."""

    cycle: int
    compose_id: str
    ts: int
    ok: bool
    equity: float | None = None
    actions: list[str] = field(default_factory=list)
    error: str | None = None
    stage: str | None = None
    result: ComposeResult | None = None
    executions: list[ExecutionResult] = field(default_factory=list)
    context: ComposeContext | None = None
    overhead_ms: float = 0.0
    fallback_reason: str | None = None
    alert: str | None = None  # the alert this cycle recorded (K fallbacks in a row)
    prompt_version: int | None = None
    prompt_hash: str | None = None
    halted_by: str | None = None  # a refused exchange key stopped the execution (recorded)


class CycleFailed(Exception):
    """Internal: a stage of the cycle failed; carries the stage name."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error


def error_record(
    strategy_id: str, cycle: int, ts: int, compose_id: str, stage: str, message: str
) -> HistoryRecord:
    return HistoryRecord(
        ts=ts,
        kind="error",
        reference_id=compose_id,
        payload={"cycle": cycle, "stage": stage, "error": message},
        strategy_id=strategy_id,
    )


def run_stage(name: str, func: Any, *args: Any) -> Any:
    """Run one stage; any exception becomes ``CycleFailed(name, error)``."""
    try:
        return func(*args)
    except CycleFailed:
        raise
    except Exception as error:
        raise CycleFailed(name, error) from error


def fills_of(executions: list[ExecutionResult], strategy_id: str) -> list[Fill]:
    return [fill_from_result(r, strategy_id) for r in executions if r.status == "filled"]


def error_message(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if isinstance(error, StrategyAgentError) else f"{type(error).__name__}: {text}"


def describe_result(result: ExecutionResult) -> str:
    if result.status == "filled":
        return f"{result.side} {result.filled_qty:g} {result.symbol} @ {result.avg_price:,.2f}"
    return f"{result.status} {result.side} {result.symbol}: {result.reason}"
