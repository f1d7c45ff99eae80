"""Ports of the decision layer: a policy proposes, the composer guards."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pydantic import Field

from strategy_agent.models import (
    ComposeContext,
    ComposeResult,
    Dto,
    GuardrailOutcome,
    LlmPlanProposal,
)


class PolicyDecision(Dto):
    """A policy's proposal plus what it knows about how it was made.

    ``audit`` carries model, tokens, cost, latency, raw reply, retries,
    fallback... (never a key). ``rejected_items`` are items the policy could not
    parse (with reasons); the composer records them as rejections.
    """

    proposal: LlmPlanProposal
    audit: dict[str, Any] = Field(default_factory=dict)
    rejected_items: list[GuardrailOutcome] = Field(default_factory=list)


class Policy(ABC):
    """Decides what the strategy wants: an LLM or a built-in rule."""

    name: str = "policy"

    @abstractmethod
    def propose(self, context: ComposeContext) -> PolicyDecision:
        """Return a proposal. May raise ``StrategyAgentError`` subclasses;
        ``AuthenticationError``/``ConfigurationError`` stop the strategy."""


class Composer(ABC):
    """Turns a context into guarded instructions (design: ``compose``)."""

    @abstractmethod
    def compose(self, context: ComposeContext) -> ComposeResult: ...
