"""A spending cap shared by configs running side by side (``--budget-usd``).

Every worker adds what each cycle's LLM calls spent (``add`` or
``add_audit``) and asks ``should_stop()`` before its next cycle; once the total
reaches the budget, every worker stops after the cycle it is in. So the total
can pass the budget by at most one cycle per worker; the run is then stored as
``stopped`` with ``reason()`` and what was spent (``runs.finish_run``).

Cache hits spend nothing. A call whose price is unknown (a model neither
litellm nor the config prices) is counted in tokens and in ``unpriced_calls``,
not in dollars: a dollar budget cannot bound it, so the CLI refuses such a
config with ``--budget-usd`` before it starts (``cost.model_prices``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from strategy_agent.models import ModelConfig


@dataclass(frozen=True)
class Spend:
    """Tokens (prompt + completion) and US dollars spent; calls without a known price."""

    tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    unpriced_calls: int = 0


class BudgetTracker:
    """Thread-safe totals of what parallel runs spent, and whether the budget is reached.

    ``budget_usd`` (dollars) and ``budget_tokens`` are optional caps (``None``:
    no cap); reaching either one stops every run.
    """

    def __init__(self, budget_usd: float | None = None, budget_tokens: int | None = None) -> None:
        if budget_usd is not None and not (math.isfinite(budget_usd) and budget_usd > 0):
            raise ValueError(f"--budget-usd must be a positive amount of dollars, got {budget_usd}")
        if budget_tokens is not None and budget_tokens <= 0:
            raise ValueError(f"the token budget must be positive, got {budget_tokens}")
        self.budget_usd = budget_usd
        self.budget_tokens = budget_tokens
        self.stop_event = threading.Event()  # set once the budget is reached
        self._lock = threading.Lock()
        self._total = Spend()
        self._by_key: dict[str, Spend] = {}

    def add(self, key: str, tokens: int, cost_usd: float | None, calls: int = 1) -> bool:
        """Add what ``key`` (a run id) spent; True while the budget allows another cycle.

        ``cost_usd`` ``None`` means the price is unknown (see module doc).
        """
        if tokens < 0 or calls < 0 or (cost_usd is not None and not cost_usd >= 0):
            raise ValueError(f"spend must be >= 0, got {tokens} tokens, {cost_usd} USD")
        added = Spend(
            tokens=tokens,
            cost_usd=cost_usd or 0.0,
            calls=calls,
            unpriced_calls=calls if cost_usd is None else 0,
        )
        with self._lock:
            self._total = _plus(self._total, added)
            self._by_key[key] = _plus(self._by_key.get(key, Spend()), added)
            if self._reached(self._total):
                self.stop_event.set()
        return not self.stop_event.is_set()

    def add_audit(
        self, key: str, audit: Mapping[str, Any], config: ModelConfig | None = None
    ) -> bool:
        """Add the spend of one cycle's compose audit (the ``compose`` record's payload).

        A cycle answered wholly from the cache spends nothing. The dollars are
        the audit's ``cost_usd``, else (an unpriced model) the config's
        configured prices applied to its tokens, else unknown.
        """
        calls = _count(audit.get("calls"))
        if calls == 0 or _count(audit.get("cached_calls")) >= calls:
            return not self.stop_event.is_set()
        prompt, completion = (
            _count(audit.get("prompt_tokens")),
            _count(audit.get("completion_tokens")),
        )
        cost = audit.get("cost_usd")
        if not isinstance(cost, int | float) or isinstance(cost, bool) or not math.isfinite(cost):
            cost = None
        if cost is None and config is not None:
            from strategy_agent.backtest.cost import price_usd

            cost = price_usd(config, prompt, completion)
        return self.add(key, prompt + completion, cost, calls=calls)

    def should_stop(self) -> bool:
        """True once the budget is reached: start no further cycle."""
        return self.stop_event.is_set()

    def spent(self, key: str | None = None) -> Spend:
        """What ``key`` spent, or everyone together (``None``)."""
        with self._lock:
            return self._total if key is None else self._by_key.get(key, Spend())

    def reason(self) -> str | None:
        """Why the runs stopped (for the run's status reason), ``None`` while within budget."""
        if not self.stop_event.is_set():
            return None
        total = self.spent()
        spent = f"${total.cost_usd:,.4f} and {total.tokens:,} tokens spent"
        if self.budget_usd is not None and total.cost_usd >= self.budget_usd:
            return f"budget of ${self.budget_usd:,.2f} reached: {spent}"
        return f"token budget of {self.budget_tokens:,} reached: {spent}"

    def _reached(self, total: Spend) -> bool:
        if self.budget_usd is not None and total.cost_usd >= self.budget_usd:
            return True
        return self.budget_tokens is not None and total.tokens >= self.budget_tokens


def _plus(a: Spend, b: Spend) -> Spend:
    return replace(
        a,
        tokens=a.tokens + b.tokens,
        cost_usd=a.cost_usd + b.cost_usd,
        calls=a.calls + b.calls,
        unpriced_calls=a.unpriced_calls + b.unpriced_calls,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
