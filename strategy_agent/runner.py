"""StrategyRunner: one background thread per running strategy, and the controls.

Threads never touch the UI: each opens its own ``SqliteStore`` (one SQLite
connection per thread), runs cycles, and writes status changes to the
database, where pages read them. The runner is process-wide (``python -m
strategy_agent app`` creates one before the web server starts); its state
survives page reruns and closed browsers.

One cycle, once: whatever runs a cycle (auto-run, Step, the Prompt lab's Run
one cycle) first takes the strategy's lease (``strategy_agent.leasing``), so
two threads, two runners or the app and the CLI never run one strategy at the
same time. A live lease held elsewhere is refused with who holds it.

Controls answer at once. Pause and Stop ask the worker to end after its
current cycle and store ``pausing``/``stopping``; the worker writes ``paused``
or ``stopped`` when that cycle has ended, so no fill is written after the
status says paused or stopped. Between cycles they take effect immediately.

- Pause keeps the positions; Start resumes. The app's runs count as confirmed
  for live trading (the form asked for the typed confirmation at creation).
- Stop ends the strategy (it cannot be started again; Duplicate it instead);
  ``stop(..., close_positions=True)`` first runs one recorded cycle that closes
  every position.
- A Step leaves the strategy ``paused`` (it was run by hand, not auto-run).
- ``error`` carries the reason when a strategy had to halt (an unknown model...);
  a key the exchange refuses leaves it ``paused`` with the key to check.

On start-up, ``resume_running`` restarts strategies stored as ``running``
(waiting for the lease of a crashed owner to go stale) and settles the
``pausing``/``stopping`` a crash left behind.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pydantic import SecretStr

from strategy_agent.core import CycleReport, StrategyHalted, StrategyPaused
from strategy_agent.errors import ExchangeKeyRefused, StrategyAgentError
from strategy_agent.leasing import DEFAULT_STALE_S, HEARTBEATS_PER_STALE, LeaseKeeper, now_ms
from strategy_agent.leasing import owner_name as _owner_name
from strategy_agent.models import ComposeContext, ComposeResult, StrategyStatus
from strategy_agent.strategy_worker import StrategyWorker

log = logging.getLogger(__name__)

_ENDED = {"stopped", "stopping"}


class StrategyRunner:
    """Starts, pauses, stops, steps and deletes strategies stored in one database.

    ``lease_stale_s``: seconds without a heartbeat after which a lease's owner
    counts as dead; heartbeats go every ``heartbeat_s`` (default a sixth of it).
    ``role`` names this process in lease owners ("app", "cli").
    """

    def __init__(
        self,
        db_path: str | Path,
        step_delay_s: float = 1.0,
        *,
        lease_stale_s: float = DEFAULT_STALE_S,
        heartbeat_s: float | None = None,
        role: str = "app",
    ) -> None:
        self.db_path = Path(db_path)
        self.step_delay_s = step_delay_s
        self.lease_stale_s = lease_stale_s
        self.heartbeat_s = heartbeat_s or lease_stale_s / HEARTBEATS_PER_STALE
        self.role = role
        self._workers: dict[str, StrategyWorker] = {}
        self._keys: dict[str, SecretStr] = {}
        self._last_reports: dict[str, CycleReport] = {}  # of the background loops
        self._lock = threading.Lock()  # guards the dicts above
        self._controls = threading.Lock()  # one control (start/pause/stop/delete) at a time
        self._closed = threading.Event()
        self._waiting: set[str] = set()  # to resume once a dead owner's lease is stale
        self._resumer: threading.Thread | None = None

    # -- keys (memory only, this process) ------------------------------------------

    def set_session_key(self, strategy_id: str, key: SecretStr | None) -> None:
        """Remember a key typed in the UI for this process only (never stored)."""
        with self._lock:
            if key is None:
                self._keys.pop(strategy_id, None)
            else:
                self._keys[strategy_id] = key

    def session_keys(self) -> dict[str, SecretStr]:
        """The keys typed in the UI this process, by strategy id (a copy; never stored)."""
        with self._lock:
            return dict(self._keys)

    # -- state -------------------------------------------------------------------------

    def is_running(self, strategy_id: str) -> bool:
        """True while its thread lives (including a pausing or stopping last cycle)."""
        return self._live_worker(strategy_id) is not None

    def running_ids(self) -> list[str]:
        with self._lock:
            ids = list(self._workers)
        return [sid for sid in ids if self.is_running(sid)]

    def waiting_ids(self) -> list[str]:
        """Strategies to resume once the lease of their dead owner goes stale."""
        with self._lock:
            return sorted(self._waiting)

    def next_due_ms(self, strategy_id: str) -> int | None:
        """When a running live strategy decides next (epoch ms); None on a stepped market."""
        worker = self._live_worker(strategy_id)
        scheduler = worker.scheduler if worker is not None else None
        return scheduler.next_due_ms() if scheduler is not None else None

    def last_report(self, strategy_id: str) -> CycleReport | None:
        with self._lock:
            return self._last_reports.get(strategy_id)

    # -- controls ----------------------------------------------------------------------

    def start(self, strategy_id: str) -> bool:
        """Run a strategy in the background; False if it already runs here.

        Raises ``StrategyAgentError`` when it has ended (stopped), is a backtest
        run, is still finishing a pause, or another owner holds its lease (``LeaseHeld``).
        """
        with self._controls:
            self._refuse_if_backtest(strategy_id)
            current = self._live_worker(strategy_id)
            if current is not None:
                if current.final is None:
                    return False
                raise StrategyAgentError(
                    f"strategy {strategy_id} is finishing its current cycle before it "
                    f"{'pauses' if current.final == 'paused' else 'stops'}: start it again "
                    f"once it shows {current.final}"
                )
            self._refuse_if_ended(strategy_id)
            worker = self._spawn(strategy_id, "auto-run")
            try:
                self._set_status(strategy_id, "running")
            except BaseException:
                worker.keeper.release()
                raise
            self._launch(worker)
            return True

    def pause(self, strategy_id: str) -> StrategyStatus:
        """Pause after the current cycle (positions kept); returns the status now stored."""
        return self._halt(strategy_id, "paused", close_positions=False)

    def stop(self, strategy_id: str, *, close_positions: bool = False) -> StrategyStatus:
        """End the strategy after the current cycle, optionally closing every position.

        ``close_positions``: one more recorded cycle whose plan closes every
        open position through the normal guardrails, gateway and ledger.
        Returns the status now stored (``stopping`` until that is done).
        """
        return self._halt(strategy_id, "stopped", close_positions=close_positions)

    def step_once(self, strategy_id: str) -> CycleReport:
        """Run exactly one cycle now, on the caller's thread; leaves the strategy paused."""
        from strategy_agent.factory import open_runtime
        from strategy_agent.trading_history.store import SqliteStore

        self._refuse_if_backtest(strategy_id)
        if self.is_running(strategy_id):
            raise StrategyAgentError("this strategy is auto-running: pause it to step by hand")
        with self._keeper(strategy_id, "Step"), SqliteStore(self.db_path) as store:
            self._refuse_if_ended(strategy_id)  # read again now that nobody else can run it
            try:
                runtime = open_runtime(
                    store, strategy_id, api_key=self._key(strategy_id), live_confirmed=True
                )
                report = runtime.step()
            except ExchangeKeyRefused as refused:  # at open: paused, the key to check
                store.set_status(strategy_id, "paused", str(refused), now_ms())
                raise StrategyPaused(str(refused)) from refused
            except StrategyHalted as halted:  # paused (a refused key) or error
                store.set_status(strategy_id, halted.status, str(halted), now_ms())
                raise
            store.set_status(strategy_id, "paused", None, now_ms())
            return report

    def preview(self, strategy_id: str) -> tuple[ComposeContext, ComposeResult]:
        """Dry run: compose on the current market without executing or recording."""
        from strategy_agent.factory import open_runtime
        from strategy_agent.trading_history.store import SqliteStore

        with SqliteStore(self.db_path) as store:
            runtime = open_runtime(
                store, strategy_id, api_key=self._key(strategy_id), live_confirmed=True
            )
            return runtime.preview()

    def delete(self, strategy_id: str) -> None:
        """Delete a strategy and its history; refused while anything runs it."""
        from strategy_agent.trading_history.store import SqliteStore

        with self._controls:
            if self.is_running(strategy_id):
                raise StrategyAgentError(
                    f"strategy {strategy_id} is running: pause or stop it first, then delete it"
                )
            with self._keeper(strategy_id, "Delete"), SqliteStore(self.db_path) as store:
                store.delete_strategy(strategy_id)
            with self._lock:
                self._keys.pop(strategy_id, None)
                self._last_reports.pop(strategy_id, None)

    def resume_running(self) -> list[str]:
        """After a restart: start every strategy stored as running; returns those started.

        One whose lease a (probably dead) owner still holds is retried until
        that lease is stale (see ``waiting_ids``). ``pausing``/``stopping`` left
        by a crash become ``paused``/``stopped``. A strategy the command line
        was running is not the app's to run: while that run lives it is left
        alone, and one killed before it finished becomes ``paused`` with the
        reason (the trader asked the terminal for a number of cycles, not for
        an endless run).
        """
        from strategy_agent.trading_history.leases import LeaseHeld
        from strategy_agent.trading_history.store import SqliteStore

        if not self.db_path.exists():
            return []
        with SqliteStore(self.db_path) as store:
            rows = [(row.id, row.status) for row in store.list_strategies()]
        started: list[str] = []
        for sid, status in rows:
            try:
                if status in {"pausing", "stopping"}:
                    self._settle_leftover(sid, "paused" if status == "pausing" else "stopped")
                elif status == "running" and not self._left_to_the_cli(sid) and self.start(sid):
                    started.append(sid)
            except LeaseHeld:
                if status == "running":
                    self._wait_to_resume(sid)
        return started

    def _left_to_the_cli(self, strategy_id: str) -> bool:
        """True when the command line runs (or ran, and was killed) this strategy."""
        from strategy_agent.leasing import parse_owner
        from strategy_agent.trading_history.leases import lease_holder, lease_is_live
        from strategy_agent.trading_history.store import SqliteStore

        with SqliteStore(self.db_path) as store:
            lease = lease_holder(store, strategy_id)
            if lease is None or not lease.owner.startswith("cli "):
                return False
            if not lease_is_live(lease, now_ms(), int(self.lease_stale_s * 1000)):
                store.set_status(
                    strategy_id,
                    "paused",
                    f"the command-line run ({parse_owner(lease.owner, lease.pid, lease.host).process}) "
                    f"ended before it finished; press Start to run it here",
                    now_ms(),
                )
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop every thread, leaving stored statuses as they are (so they resume)."""
        self._closed.set()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.shutdown()
        for worker in workers:
            worker.thread.join(timeout_s)

    # -- internals ---------------------------------------------------------------------

    def _live_worker(self, strategy_id: str) -> StrategyWorker | None:
        """Its worker while that runs or finishes a cycle (one that has written its last
        status is given the moment it needs to hand its lease back)."""
        with self._lock:
            worker = self._workers.get(strategy_id)
        if worker is None or not worker.thread.is_alive():
            return None
        if worker.settled:
            worker.thread.join(2.0)
            return None
        return worker

    def _key(self, strategy_id: str) -> SecretStr | None:
        with self._lock:
            return self._keys.get(strategy_id)

    def _keeper(self, strategy_id: str, activity: str) -> LeaseKeeper:
        return LeaseKeeper(
            self.db_path,
            strategy_id,
            _owner_name(self.role, activity),
            stale_after_s=self.lease_stale_s,
            heartbeat_s=self.heartbeat_s,
        )

    def _status(self, strategy_id: str) -> StrategyStatus:
        from strategy_agent.trading_history.store import SqliteStore

        with SqliteStore(self.db_path) as store:
            return store.get_strategy(strategy_id).status

    def _set_status(self, strategy_id: str, status: StrategyStatus) -> None:
        from strategy_agent.trading_history.store import SqliteStore

        with SqliteStore(self.db_path) as store:
            store.set_status(strategy_id, status, None, now_ms())

    def _refuse_if_ended(self, strategy_id: str) -> None:
        status = self._status(strategy_id)
        if status in _ENDED:
            raise StrategyAgentError(
                f"strategy {strategy_id} was {status}: a stopped strategy has ended and "
                f"cannot run again; Duplicate it to trade the same settings afresh"
            )

    def _refuse_if_backtest(self, strategy_id: str) -> None:
        """A backtest run replayed its window once: it is never started or stepped."""
        from strategy_agent.trading_history.runs import run_mark
        from strategy_agent.trading_history.store import SqliteStore

        with SqliteStore(self.db_path) as store:
            mark = run_mark(store, strategy_id)
        if mark is not None and mark.kind == "backtest":
            batch = f" of batch {mark.batch_id}" if mark.batch_id else ""
            raise StrategyAgentError(
                f"strategy {strategy_id} is a backtest run{batch}: it replayed its window "
                f"once, so it cannot be started or stepped; start a new backtest on the "
                f"Backtest page, or start the strategy its config came from"
            )

    def _spawn(self, strategy_id: str, activity: str) -> StrategyWorker:
        """A worker holding the lease (raises ``LeaseHeld``), not started yet."""

        def keep(report: CycleReport) -> None:
            with self._lock:
                self._last_reports[strategy_id] = report

        return StrategyWorker(
            self.db_path,
            strategy_id,
            self._keeper(strategy_id, activity).acquire(),
            api_key=self._key(strategy_id),
            step_delay_s=self.step_delay_s,
            on_report=keep,
        )

    def _launch(self, worker: StrategyWorker) -> None:
        with self._lock:
            self._workers[worker.strategy_id] = worker
        worker.thread.start()

    def _halt(
        self, strategy_id: str, final: StrategyStatus, *, close_positions: bool
    ) -> StrategyStatus:
        with self._controls:
            worker = self._live_worker(strategy_id)
            if worker is not None:
                status = worker.ask_to_end(final, close_positions)
                if status is not None:
                    return status
                worker.thread.join(2.0)  # it has just written its last status
            status = self._status(strategy_id)
            if status in _ENDED:
                return status
            if close_positions:  # a worker whose only cycle closes every position
                worker = self._spawn(strategy_id, "Stop and close positions")
                worker.stop.set()
                worker.final, worker.close_positions = "stopped", True
                self._set_status(strategy_id, "stopping")
                self._launch(worker)
                return "stopping"
            with self._keeper(strategy_id, "Pause" if final == "paused" else "Stop"):
                self._set_status(strategy_id, final)  # refused above if someone runs it
            return final

    def _settle_leftover(self, strategy_id: str, final: StrategyStatus) -> None:
        with self._keeper(strategy_id, "resume"):  # a live owner may still be finishing it
            self._set_status(strategy_id, final)

    def _wait_to_resume(self, strategy_id: str) -> None:
        with self._lock:
            self._waiting.add(strategy_id)
            if self._resumer is None:
                self._resumer = threading.Thread(
                    target=self._resume_later, name="strategy-resumer", daemon=True
                )
                self._resumer.start()

    def _resume_later(self) -> None:
        from strategy_agent.trading_history.leases import LeaseHeld

        while not self._closed.wait(self.heartbeat_s):
            with self._lock:
                if not self._waiting:
                    self._resumer = None
                    return
                waiting = sorted(self._waiting)
            for sid in waiting:
                try:
                    if self._status(sid) == "running":
                        self.start(sid)
                except LeaseHeld:
                    continue  # still alive, or not stale yet
                except StrategyAgentError as error:
                    log.warning("could not resume %s: %s", sid, error)
                with self._lock:
                    self._waiting.discard(sid)
