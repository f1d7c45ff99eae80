"""A policy that waits at a gate inside the cycle, and checks that each cycle ran once.

``Gate`` stands in for a slow LLM call: while the gate is closed every proposal
blocks (after saying it arrived), so a test can act while a cycle is in flight.
``install_gate`` makes ``open_runtime`` wrap every strategy's policy in it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strategy_agent.decision.interfaces import Policy, PolicyDecision
from strategy_agent.models import ComposeContext

GATE_TIMEOUT_S = 15.0


class Gate:
    """Closed: proposals wait (at most ``GATE_TIMEOUT_S``); open: they pass."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._arrived = threading.Semaphore(0)
        self.waiting = 0

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def wait_for_arrival(self, timeout_s: float = GATE_TIMEOUT_S) -> None:
        """Block until a proposal has reached the closed gate."""
        if not self._arrived.acquire(timeout=timeout_s):
            raise AssertionError("no cycle reached the gate in time")

    def pass_through(self) -> None:
        if self._open.is_set():
            return
        self.waiting += 1
        self._arrived.release()
        self._open.wait(GATE_TIMEOUT_S)


class GatedPolicy(Policy):
    """Wraps a real policy; every proposal goes through the gate first."""

    def __init__(self, inner: Policy, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate
        self.name = inner.name

    def propose(self, context: ComposeContext) -> PolicyDecision:
        self.gate.pass_through()
        return self.inner.propose(context)


def install_gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    """Every runtime built from now on asks its policy through one shared gate."""
    from strategy_agent import factory

    gate = Gate()
    real = factory.build_policy

    def gated(*args: Any, **kwargs: Any) -> Policy:
        return GatedPolicy(real(*args, **kwargs), gate)

    monkeypatch.setattr(factory, "build_policy", gated)
    return gate


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def assert_each_cycle_once(db_path: Path, strategy_id: str) -> int:
    """Cycles 1..n each recorded once: checkpoints, fills and equity points; returns n."""
    from strategy_agent.trading_history.store import SqliteStore

    with SqliteStore(db_path) as store:
        cycles = store.cycle_count(strategy_id)
        records = store.records(strategy_id, limit=100_000)
        fills = store.load_fills(strategy_id)
        equity = store.equity_series(strategy_id, max_points=100_000)
    twice = [key for key, n in Counter((r.kind, r.reference_id) for r in records).items() if n > 1]
    assert not twice, f"checkpoints written twice: {twice[:5]}"
    filled_twice = [i for i, n in Counter(f.instruction_id for f in fills).items() if n > 1]
    assert not filled_twice, f"instructions filled twice: {filled_twice[:5]}"
    compose_ids = {r.reference_id for r in records if r.kind in {"compose", "error"}}
    expected = {f"{strategy_id}-{cycle:06d}" for cycle in range(1, cycles + 1)}
    assert compose_ids == expected, "cycle numbers are not 1..n, each once"
    assert len(equity) == len({point.ts for point in equity}), "two equity points at one time"
    return cycles
