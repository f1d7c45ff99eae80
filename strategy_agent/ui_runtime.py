"""The app's process-wide runtime: one ``StrategyRunner`` and where the database is.

The runner lives in ``st.cache_resource``, so every session and rerun shares it
and its threads survive closed browsers; when the resource is released (cache
cleared, server shut down) its threads are stopped without touching stored
statuses, so they resume on the next start. Pages open a short-lived
``SqliteStore`` per rerun (SQLite connections belong to one thread, and
Streamlit reruns on varying threads).

Settings come from the environment:

- ``STRATEGY_AGENT_DB``: the database file (default ``data/strategy_agent.db``).
- ``STRATEGY_AGENT_STEP_DELAY_S``: seconds between two auto-run cycles (default 1).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

if TYPE_CHECKING:
    from strategy_agent.runner import StrategyRunner
    from strategy_agent.trading_history.store import SqliteStore

DB_ENV = "STRATEGY_AGENT_DB"
DELAY_ENV = "STRATEGY_AGENT_STEP_DELAY_S"
DEFAULT_DB = "data/strategy_agent.db"


def db_path() -> Path:
    """The database file the app reads and the runner writes."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def step_delay_s() -> float:
    """Seconds between two cycles of an auto-running strategy."""
    raw = os.environ.get(DELAY_ENV, "1")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{DELAY_ENV} must be a number of seconds, got {raw!r}") from None
    return max(value, 0.0)


@dataclass
class AppRuntime:
    """The shared runner plus what happened when it was created (for a notice)."""

    runner: StrategyRunner
    db_path: Path
    resumed: list[str] = field(default_factory=list)
    resume_error: str | None = None


def _release(runtime: AppRuntime) -> None:
    runtime.runner.shutdown()


@st.cache_resource(show_spinner=False, on_release=_release)
def _create_runtime(path: str, delay_s: float) -> AppRuntime:
    from strategy_agent.runner import StrategyRunner

    resolved = Path(path)
    resolved.parent.mkdir(parents=True, exist_ok=True)
    runtime = AppRuntime(runner=StrategyRunner(resolved, step_delay_s=delay_s), db_path=resolved)
    try:
        runtime.resumed = runtime.runner.resume_running()
    except Exception as error:  # a broken database must not take the whole app down
        runtime.resume_error = f"{type(error).__name__}: {error}"
    return runtime


def get_runtime() -> AppRuntime:
    """The process-wide runtime for the configured database (created once)."""
    return _create_runtime(str(db_path()), step_delay_s())


def get_runner() -> StrategyRunner:
    """The process-wide ``StrategyRunner``."""
    return get_runtime().runner


@contextmanager
def open_store() -> Iterator[SqliteStore]:
    """A store for this rerun only, closed afterwards (one connection per thread)."""
    from strategy_agent.trading_history.store import SqliteStore

    store = SqliteStore(get_runtime().db_path)
    try:
        yield store
    finally:
        store.close()
