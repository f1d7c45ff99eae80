"""StrategyRunner: one background thread per running strategy.

Threads never touch the UI: each opens its own ``SqliteStore`` (one SQLite
connection per thread), runs cycles, and writes status changes to the
database, where pages read them. The runner is process-wide (the app holds one
via ``st.cache_resource``); its state survives page reruns and closed browsers.

Status lives in the ``strategies`` table: ``running`` while a thread works,
``paused``/``stopped`` by the user, ``error`` with the reason when the strategy
had to halt (refused key, bad config). On start-up, strategies stored as
``running`` are resumed (``resume_running``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from strategy_agent.core import CycleReport, StrategyHalted
from strategy_agent.errors import StrategyAgentError
from strategy_agent.models import ComposeContext, ComposeResult

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Worker:
    thread: threading.Thread
    stop: threading.Event


class StrategyRunner:
    """Starts, pauses, stops and steps strategies stored in one database."""

    def __init__(self, db_path: str | Path, step_delay_s: float = 1.0) -> None:
        self.db_path = Path(db_path)
        self.step_delay_s = step_delay_s
        self._workers: dict[str, _Worker] = {}
        self._keys: dict[str, SecretStr] = {}
        self._lock = threading.Lock()
        # One cycle at a time per strategy: two clicks on "Step" in two browser tabs
        # must not both run cycle N+1 from the same stored state.
        self._cycle_locks: dict[str, threading.Lock] = {}
        self._last_reports: dict[str, CycleReport] = {}  # of the background loops

    # -- keys (memory only, this process) ------------------------------------------

    def set_session_key(self, strategy_id: str, key: SecretStr | None) -> None:
        """Remember a key typed in the UI for this process only (never stored)."""
        with self._lock:
            if key is None:
                self._keys.pop(strategy_id, None)
            else:
                self._keys[strategy_id] = key

    # -- lifecycle ---------------------------------------------------------------------

    def is_running(self, strategy_id: str) -> bool:
        with self._lock:
            worker = self._workers.get(strategy_id)
            return worker is not None and worker.thread.is_alive()

    def running_ids(self) -> list[str]:
        with self._lock:
            return [sid for sid, w in self._workers.items() if w.thread.is_alive()]

    def start(self, strategy_id: str) -> bool:
        """Start (or resume) a strategy in the background; False if already running."""
        with self._lock:
            current = self._workers.get(strategy_id)
            if current is not None and current.thread.is_alive():
                return False
            stop = threading.Event()
            thread = threading.Thread(
                target=self._loop,
                args=(strategy_id, stop),
                name=f"strategy-{strategy_id}",
                daemon=True,
            )
            worker = _Worker(thread=thread, stop=stop)
            self._workers[strategy_id] = worker
        self._set_status(strategy_id, "running", None)
        worker.thread.start()
        return True

    def pause(self, strategy_id: str) -> None:
        self._halt(strategy_id, "paused")

    def stop(self, strategy_id: str) -> None:
        self._halt(strategy_id, "stopped")

    def step_once(self, strategy_id: str) -> CycleReport:
        """Run exactly one cycle now, on the caller's thread (not while it auto-runs)."""
        from strategy_agent.factory import open_runtime
        from strategy_agent.trading_history.store import SqliteStore

        if self.is_running(strategy_id):
            raise StrategyAgentError("this strategy is auto-running: pause it to step by hand")
        lock = self._cycle_lock(strategy_id)
        if not lock.acquire(blocking=False):
            raise StrategyAgentError("a cycle of this strategy is already running: wait for it")
        store = SqliteStore(self.db_path)
        try:
            runtime = open_runtime(store, strategy_id, api_key=self._key(strategy_id))
            try:
                return runtime.step()
            except StrategyHalted as halted:
                store.set_status(strategy_id, "error", str(halted), _now_ms())
                raise
        finally:
            store.close()
            lock.release()

    def preview(self, strategy_id: str) -> tuple[ComposeContext, ComposeResult]:
        """Dry run: compose on the current market without executing or recording."""
        from strategy_agent.factory import open_runtime
        from strategy_agent.trading_history.store import SqliteStore

        store = SqliteStore(self.db_path)
        try:
            runtime = open_runtime(store, strategy_id, api_key=self._key(strategy_id))
            return runtime.preview()
        finally:
            store.close()

    def resume_running(self) -> list[str]:
        """Restart every strategy the database says was running (after a restart)."""
        from strategy_agent.trading_history.store import SqliteStore

        if not self.db_path.exists():
            return []
        store = SqliteStore(self.db_path)
        try:
            ids = [row.id for row in store.list_strategies() if row.status == "running"]
        finally:
            store.close()
        return [sid for sid in ids if self.start(sid)]

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop every thread, leaving stored statuses as they are (so they resume)."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop.set()
        for worker in workers:
            worker.thread.join(timeout_s)

    def last_report(self, strategy_id: str) -> CycleReport | None:
        with self._lock:
            return self._last_reports.get(strategy_id)

    # -- internals ---------------------------------------------------------------------

    def _cycle_lock(self, strategy_id: str) -> threading.Lock:
        with self._lock:
            return self._cycle_locks.setdefault(strategy_id, threading.Lock())

    def _key(self, strategy_id: str) -> SecretStr | None:
        with self._lock:
            return self._keys.get(strategy_id)

    def _halt(self, strategy_id: str, status: str) -> None:
        with self._lock:
            worker = self._workers.get(strategy_id)
        if worker is not None:
            worker.stop.set()
            worker.thread.join(timeout=30)
        self._set_status(strategy_id, status, None)

    def _set_status(self, strategy_id: str, status: str, reason: str | None) -> None:
        from strategy_agent.trading_history.store import SqliteStore

        store = SqliteStore(self.db_path)
        try:
            store.set_status(strategy_id, status, reason, _now_ms())  # type: ignore[arg-type]
        finally:
            store.close()

    def _loop(self, strategy_id: str, stop: threading.Event) -> None:
        from strategy_agent.factory import open_runtime
        from strategy_agent.trading_history.store import SqliteStore

        store = SqliteStore(self.db_path)
        try:
            runtime = open_runtime(store, strategy_id, api_key=self._key(strategy_id))
            lock = self._cycle_lock(strategy_id)
            while not stop.is_set():
                with lock:
                    report = runtime.step()
                with self._lock:
                    self._last_reports[strategy_id] = report
                stop.wait(self.step_delay_s)
        except StrategyAgentError as error:
            store.set_status(strategy_id, "error", str(error), _now_ms())
        except Exception as error:  # a bug: keep the app alive, show the reason
            log.exception("strategy %s crashed", strategy_id)
            store.set_status(
                strategy_id, "error", f"unexpected {type(error).__name__}: {error}", _now_ms()
            )
        finally:
            store.close()
