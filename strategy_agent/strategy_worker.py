"""One strategy's background thread: cycles until asked to end, then its last status.

The worker holds the strategy's lease (a ``LeaseKeeper`` taken before it
starts) for its whole life and opens its own ``SqliteStore`` (one SQLite
connection per thread). Asked to end (``ask_to_end``), it finishes the cycle in
flight, optionally runs one more cycle that closes every position, writes
``paused``/``stopped`` and only then hands the lease back, so no fill follows
that status and nobody else can overwrite it. Between cycles the status is
written at once. When its lease is lost (another owner took it over) it stops
before its next cycle and leaves the status to that owner.

The pace is the runtime's scheduler (``strategy_agent.scheduling``): on the
simulated market and in replays one cycle every ``step_delay_s`` seconds, on
a live market one per closed candle; the wait ends at once on Pause or Stop.
An exchange that cannot be reached when the strategy starts pauses it with the
reason (Start tries again); so does a key the exchange refuses (the reason says
which key to check; what the cycle did before is recorded); a replay with no
candle left pauses it too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from strategy_agent.core import CycleReport, StrategyPaused
from strategy_agent.errors import ExchangeKeyRefused, StrategyAgentError, TemporaryError
from strategy_agent.leasing import LeaseKeeper, now_ms
from strategy_agent.models import StrategyStatus

if TYPE_CHECKING:
    from strategy_agent.scheduling import Scheduler
    from strategy_agent.trading_history.store import SqliteStore

log = logging.getLogger(__name__)


class StrategyWorker:
    """Runs one strategy's cycles on its own thread until asked to end.

    ``on_report`` receives every cycle's report (on the worker's thread);
    ``step_delay_s`` is the pause between two cycles of a stepped market.
    ``scheduler`` is set once the runtime is open (its ``next_due_ms`` is
    when a live strategy decides next).
    """

    def __init__(
        self,
        db_path: Path,
        strategy_id: str,
        keeper: LeaseKeeper,
        *,
        api_key: SecretStr | None,
        step_delay_s: float,
        on_report: Callable[[CycleReport], None],
    ) -> None:
        self.db_path = db_path
        self.strategy_id = strategy_id
        self.keeper = keeper
        self.api_key = api_key
        self.step_delay_s = step_delay_s
        self.on_report = on_report
        self.stop = threading.Event()
        self.final: StrategyStatus | None = None  # asked: "paused"/"stopped"; None: "running"
        self.close_positions = False
        self.settled = False  # its last status is written (or is not its to write)
        self.scheduler: Scheduler | None = None
        self._pause_reason: str | None = None  # paused by itself (exchange unreachable...)
        self._in_cycle = False
        self._guard = threading.Lock()
        self.thread = threading.Thread(
            target=self._run, name=f"strategy-{strategy_id}", daemon=True
        )

    def ask_to_end(self, final: StrategyStatus, close_positions: bool) -> StrategyStatus | None:
        """End after the cycle in flight (at once if none runs); the status now stored.

        ``None`` when the worker has already written its last status.
        A stop is never turned back into a pause.
        """
        with self._guard:
            if self.settled:
                return None
            self.stop.set()
            if self.final != "stopped":
                self.final = final
            self.close_positions = self.close_positions or close_positions
            if self._in_cycle or self.close_positions:
                status: StrategyStatus = "pausing" if self.final == "paused" else "stopping"
            else:
                status, self.settled = self.final, True
            self._write_status(status)
            return status

    def shutdown(self) -> None:
        """End after the cycle in flight, its status left as is (it resumes on restart)."""
        self.stop.set()

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        from strategy_agent.factory import open_runtime
        from strategy_agent.trading_history.store import SqliteStore

        store = SqliteStore(self.db_path)
        error: str | None = None
        try:
            # live_confirmed: the app's form asked for the typed confirmation at creation
            runtime = open_runtime(
                store, self.strategy_id, api_key=self.api_key, live_confirmed=True
            )
            ports = runtime.ports
            self.scheduler = runtime.scheduler(self.step_delay_s)
            while self.scheduler.wait_until_due(self.stop) and self._next_cycle():
                try:
                    report = runtime.step()
                    self.scheduler.ran(report.ts, report.ok)
                    self.on_report(report)
                finally:
                    with self._guard:
                        self._in_cycle = False
                if runtime.ports is not ports:  # settings edited: the runtime was rebuilt
                    ports, self.scheduler = runtime.ports, runtime.scheduler(self.step_delay_s)
                if runtime.exhausted():
                    self._pause_itself("the replay has no candle left to decide on")
            if self.close_positions and not self.keeper.lost.is_set():
                report = runtime.close_positions()
                self.on_report(report)
                if not report.ok:
                    error = f"could not close the positions ({report.stage}: {report.error})"
        except TemporaryError as failure:  # the exchange cannot be reached now: pause, say why
            self._pause_itself(f"{failure} (paused; press Start to try again)")
        except (StrategyPaused, ExchangeKeyRefused) as failure:  # a refused key: which to check
            self._pause_itself(str(failure))
        except StrategyAgentError as failure:
            error = str(failure)
        except Exception as failure:  # a bug: keep the app alive, show the reason
            log.exception("strategy %s crashed", self.strategy_id)
            error = f"unexpected {type(failure).__name__}: {failure}"
        finally:
            try:
                self._settle(store, error)
            finally:
                self.keeper.release()
                store.close()

    def _pause_itself(self, reason: str) -> None:
        """End the loop and leave the strategy paused with ``reason`` (unless asked to stop)."""
        with self._guard:
            self.stop.set()
            if self.final is None:
                self.final, self._pause_reason = "paused", reason

    def _next_cycle(self) -> bool:
        with self._guard:
            if self.stop.is_set() or self.keeper.lost.is_set():
                return False
            self._in_cycle = True
            return True

    def _settle(self, store: SqliteStore, error: str | None) -> None:
        """Write the last status, before the lease goes (so nobody overwrites it)."""
        with self._guard:
            if self.settled:
                return
            self.settled = True
            if self.keeper.lost.is_set():  # another owner took over: the status is theirs
                log.warning("strategy %s: another owner took its lease over", self.strategy_id)
                return
            if error is not None:
                store.set_status(self.strategy_id, "error", error, now_ms())
            elif self.final is not None:
                reason = self._pause_reason if self.final == "paused" else None
                store.set_status(self.strategy_id, self.final, reason, now_ms())
            # else: shut down with the process: stays "running" and resumes on the next start

    def _write_status(self, status: StrategyStatus) -> None:
        from strategy_agent.trading_history.store import SqliteStore

        with SqliteStore(self.db_path) as store:
            store.set_status(self.strategy_id, status, None, now_ms())
