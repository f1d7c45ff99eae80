"""Port of the execution layer: paper and real exchanges implement it alike."""

from __future__ import annotations

from abc import ABC, abstractmethod

from strategy_agent.models import ExecutionResult, TradeInstruction


class ExecutionGateway(ABC):
    """Executes instructions; one result per instruction, in order. Never raises
    for a refused order: a refusal is a ``rejected`` result with a reason."""

    @abstractmethod
    def execute(self, instructions: list[TradeInstruction]) -> list[ExecutionResult]: ...
