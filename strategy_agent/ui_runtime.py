"""The app's process-wide runtime: one ``StrategyRunner`` and where the database is.

``python -m strategy_agent app`` (what ``make run`` calls) creates the runtime
with ``start_process_runtime`` before the web server starts, so strategies
marked running resume with the process, before any browser connects; every
page then gets that same runner. Under a plain ``streamlit run app.py`` the
runtime is created by the first page instead and lives in ``st.cache_resource``;
when that resource is released (cache cleared, server shut down) its threads
are stopped without touching stored statuses, so they resume on the next
start. Either way every session and rerun shares one runner, and its threads
survive closed browsers. Pages open a short-lived ``SqliteStore`` per rerun
(SQLite connections belong to one thread, and Streamlit reruns on varying
threads).

Settings come from the environment:

- ``STRATEGY_AGENT_DB``: the database file (default ``data/strategy_agent.db``).
- ``STRATEGY_AGENT_STEP_DELAY_S``: seconds between two auto-run cycles (default 1).
- ``STRATEGY_AGENT_LEASE_STALE_S``: seconds without a heartbeat after which the
  process that ran a strategy counts as dead (default 30; see ``leasing``).
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
    from strategy_agent.backtest.jobs import BacktestJobs
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
    """The shared runner, the background backtests, and what happened when it was
    created (for a notice)."""

    runner: StrategyRunner
    db_path: Path
    resumed: list[str] = field(default_factory=list)
    resume_error: str | None = None
    backtests: BacktestJobs | None = None  # set by ``create_runtime``


_process_runtime: AppRuntime | None = None  # set by ``start_process_runtime``


def create_runtime(path: Path, delay_s: float) -> AppRuntime:
    """A runner for the database at ``path`` that has resumed what was running."""
    from strategy_agent.backtest.jobs import BacktestJobs
    from strategy_agent.leasing import lease_stale_s
    from strategy_agent.runner import StrategyRunner

    path.parent.mkdir(parents=True, exist_ok=True)
    runner = StrategyRunner(path, step_delay_s=delay_s, lease_stale_s=lease_stale_s())
    runtime = AppRuntime(runner=runner, db_path=path, backtests=BacktestJobs(path))
    try:
        runtime.resumed = runtime.runner.resume_running()
    except Exception as error:  # a broken database must not take the whole app down
        runtime.resume_error = f"{type(error).__name__}: {error}"
    return runtime


def start_process_runtime() -> AppRuntime:
    """Create this process's runtime now (before the web server starts); pages reuse it."""
    global _process_runtime
    if _process_runtime is None:
        _process_runtime = create_runtime(db_path(), step_delay_s())
    return _process_runtime


def stop_process_runtime() -> None:
    """Stop the threads of the process runtime, stored statuses untouched (they resume)."""
    global _process_runtime
    if _process_runtime is not None:
        _release(_process_runtime)
        _process_runtime = None


def _release(runtime: AppRuntime) -> None:
    if runtime.backtests is not None:  # their runs are stored stopped
        runtime.backtests.shutdown()
    runtime.runner.shutdown()


@st.cache_resource(show_spinner=False, on_release=_release)
def _create_runtime(path: str, delay_s: float) -> AppRuntime:
    return create_runtime(Path(path), delay_s)


def get_runtime() -> AppRuntime:
    """The process-wide runtime: the one the process started with, else created once."""
    if _process_runtime is not None:
        return _process_runtime
    return _create_runtime(str(db_path()), step_delay_s())


def get_runner() -> StrategyRunner:
    """The process-wide ``StrategyRunner``."""
    return get_runtime().runner


def get_backtests() -> BacktestJobs:
    """The process-wide background backtests (``backtest.jobs``)."""
    runtime = get_runtime()
    if runtime.backtests is None:
        from strategy_agent.backtest.jobs import BacktestJobs

        runtime.backtests = BacktestJobs(runtime.db_path)
    return runtime.backtests


@contextmanager
def open_store() -> Iterator[SqliteStore]:
    """A store for this rerun only, closed afterwards (one connection per thread)."""
    from strategy_agent.trading_history.store import SqliteStore

    store = SqliteStore(get_runtime().db_path)
    try:
        yield store
    finally:
        store.close()
