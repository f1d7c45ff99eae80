"""Runs: one row per live, paper or backtest run of a strategy, in table ``runs``.

A run says over which window and on which data a strategy ran, with which
config, how it ended and what it spent, so every page can put a backtest next
to live strategies and a user can check that two runs saw the same candles.

- ``kind``: ``live``, ``paper`` or ``backtest``.
- A backtest runs as its own strategy row (``strategy_id``), so its cycles,
  fills, trades and equity are ordinary history that every page reads; deleting
  that strategy deletes its runs (``ON DELETE CASCADE``).
- ``batch_id`` groups the runs one command started side by side (several
  configs, several samples) for the comparison.
- ``window_from_ms``/``window_to_ms``: epoch ms UTC, the first and last candle
  open time of the window (``None`` while unknown, e.g. a live run still going).
- ``data_source``: ``simulated``, ``store:<exchange>`` or ``csv:<file>``;
  ``data_hash``: sha256 of the candles served (``candles_sha256``) or of the
  CSV file (``file_sha256``).
- ``config``: the ``UserRequest`` as the store serialises it (secrets refused).
- ``status``: ``running``, then ``done``, ``stopped`` (asked to, or the budget
  was reached) or ``failed``, with ``status_reason``.
- ``sample_index``: which of N samples of one config this run is (0 for one).
- ``tokens``/``cost_usd``: what the run paid for, in tokens and US dollars
  (cache hits excluded; ``cost_usd`` ``None`` when the model has no known price).
- ``in_sample``: why the window is "in-sample for this model" (it starts
  before the model's training cutoff, ``backtest.cutoffs``), ``None`` when not.
- ``run_metrics``: the run's figures, curve and benchmark as JSON, stored by
  ``finish_run`` (``run_figures``); read with ``run_figures.stored_figures``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import ValidationError

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import Candle, UserRequest
from strategy_agent.trading_history.store import SqliteStore, _config_json

RunKind = Literal["live", "paper", "backtest"]
RunStatus = Literal["running", "done", "stopped", "failed"]
RUN_KINDS: tuple[str, ...] = get_args(RunKind)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
FINAL_STATUSES = ("done", "stopped", "failed")

logger = logging.getLogger(__name__)

_COLUMNS = (
    "id, kind, strategy_id, batch_id, window_from_ms, window_to_ms, data_source, data_hash, "
    "config, status, status_reason, sample_index, tokens, cost_usd, created_ts, finished_ts, "
    "in_sample"
)


@dataclass(frozen=True)
class Run:
    """One stored run; times in epoch ms UTC, ``cost_usd`` in US dollars (see module doc)."""

    id: str
    kind: RunKind
    strategy_id: str
    batch_id: str | None
    window_from_ms: int | None
    window_to_ms: int | None
    data_source: str
    data_hash: str | None
    request: UserRequest
    status: RunStatus
    status_reason: str | None
    sample_index: int
    tokens: int
    cost_usd: float | None
    created_ts: int
    finished_ts: int | None
    in_sample: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


def create_run(
    store: SqliteStore,
    *,
    kind: RunKind,
    strategy_id: str,
    request: UserRequest,
    data_source: str,
    now_ms: int,
    data_hash: str | None = None,
    window_from_ms: int | None = None,
    window_to_ms: int | None = None,
    sample_index: int = 0,
    batch_id: str | None = None,
    run_id: str | None = None,
    in_sample: str | None = None,
) -> Run:
    """Store a new run with status ``running``; returns it.

    Raises ``ConfigurationError`` for an unknown kind or strategy, a window that
    ends before it starts, a negative sample index, an existing ``run_id``, or a
    config holding a secret's value.
    """
    if kind not in RUN_KINDS:
        raise ConfigurationError(f"unknown run kind {kind!r}; use one of {', '.join(RUN_KINDS)}")
    if sample_index < 0:
        raise ConfigurationError(f"sample_index must be >= 0, got {sample_index}")
    if window_from_ms is not None and window_to_ms is not None and window_to_ms < window_from_ms:
        raise ConfigurationError(
            f"the run's window ends ({window_to_ms}) before it starts ({window_from_ms})"
        )
    if not data_source.strip():
        raise ConfigurationError("a run needs its data source (simulated, store:<exchange>, csv:F)")
    store.get_strategy(strategy_id)  # a clear error for an unknown strategy
    new_id = run_id or uuid.uuid4().hex[:12]
    config = _config_json(request)
    with store.write():
        if store.scalar("SELECT 1 FROM runs WHERE id = ?", [new_id]) is not None:
            raise ConfigurationError(f"a run with id {new_id!r} already exists: choose another id")
        store.db.execute(
            f"INSERT INTO runs ({_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', NULL, ?, 0, NULL, ?, NULL, ?)",
            [
                new_id,
                kind,
                strategy_id,
                batch_id,
                window_from_ms,
                window_to_ms,
                data_source,
                data_hash,
                config,
                sample_index,
                now_ms,
                in_sample,
            ],
        )
    return get_run(store, new_id)


def record_spend(store: SqliteStore, run_id: str, tokens: int, cost_usd: float | None) -> None:
    """Set what a running run has spent so far (totals, not increments).

    ``ConfigurationError`` for an unknown or finished run, or negative figures.
    """
    _check_spend(tokens, cost_usd)
    with store.write():
        _require_running(store, run_id)
        store.db.execute(
            "UPDATE runs SET tokens = ?, cost_usd = ? WHERE id = ?", [tokens, cost_usd, run_id]
        )


def finish_run(
    store: SqliteStore,
    run_id: str,
    status: RunStatus,
    *,
    now_ms: int,
    reason: str | None = None,
    tokens: int | None = None,
    cost_usd: float | None = None,
    window_to_ms: int | None = None,
) -> Run:
    """End a running run as ``done``, ``stopped`` or ``failed``, with its reason and spend.

    ``tokens``/``cost_usd`` (totals) and ``window_to_ms`` replace the stored
    values when given. A run ends once: finishing a finished run raises
    ``ConfigurationError`` and changes nothing.
    """
    if status not in FINAL_STATUSES:
        raise ConfigurationError(
            f"a run ends as one of {', '.join(FINAL_STATUSES)}, not {status!r}"
        )
    if tokens is not None or cost_usd is not None:
        _check_spend(tokens or 0, cost_usd)
    with store.write():
        _require_running(store, run_id)
        store.db.execute(
            "UPDATE runs SET status = ?, status_reason = ?, finished_ts = ?, "
            "tokens = COALESCE(?, tokens), cost_usd = COALESCE(?, cost_usd), "
            "window_to_ms = COALESCE(?, window_to_ms) WHERE id = ?",
            [status, reason, now_ms, tokens, cost_usd, window_to_ms, run_id],
        )
    _store_figures(store, run_id)
    return get_run(store, run_id)


def _store_figures(store: SqliteStore, run_id: str) -> None:
    """Store the ended run's figures (``run_figures``); a failure leaves them to the pages."""
    from strategy_agent.trading_history.run_figures import store_run_figures

    try:
        store_run_figures(store, run_id)
    except Exception:  # the run has ended either way; pages compute what is not stored
        logger.warning("could not store the figures of run %s", run_id, exc_info=True)


def get_run(store: SqliteStore, run_id: str) -> Run:
    """The stored run; ``ConfigurationError`` when there is none with that id."""
    found = _select(store, "WHERE id = ?", run_id)
    if not found:
        raise ConfigurationError(f"no run with id {run_id!r} in {store.path}")
    return found[0]


def list_runs(
    store: SqliteStore,
    *,
    kind: RunKind | None = None,
    batch_id: str | None = None,
    limit: int = 500,
) -> list[Run]:
    """Runs newest first, optionally of one kind or one batch, at most ``limit``."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    clauses: list[str] = []
    params: list[object] = []
    if kind is not None:
        if kind not in RUN_KINDS:
            raise ValueError(f"unknown run kind {kind!r}; use one of {', '.join(RUN_KINDS)}")
        clauses.append("kind = ?")
        params.append(kind)
    if batch_id is not None:
        clauses.append("batch_id = ?")
        params.append(batch_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return _select(store, f"{where} ORDER BY created_ts DESC, rowid DESC LIMIT ?", *params, limit)


@dataclass(frozen=True)
class BatchSummary:
    """One batch of runs: id, when it started (epoch ms), its runs, data and window.

    ``running`` counts its runs not ended yet; ``window_from_ms``/``window_to_ms``
    span every run's window.
    """

    batch_id: str
    created_ts: int
    runs: int
    running: int
    data_source: str
    window_from_ms: int | None
    window_to_ms: int | None


def list_batches(store: SqliteStore, limit: int = 50) -> list[BatchSummary]:
    """Batches of backtest runs, newest first, at most ``limit`` (one query)."""
    rows = store.db.execute(
        "SELECT batch_id, MIN(created_ts), COUNT(*), SUM(status = 'running'), "
        "MIN(data_source), MIN(window_from_ms), MAX(window_to_ms) FROM runs "
        "WHERE kind = 'backtest' AND batch_id IS NOT NULL GROUP BY batch_id "
        "ORDER BY MIN(created_ts) DESC, batch_id LIMIT ?",
        [limit],
    ).fetchall()
    return [
        BatchSummary(str(b), int(ts), int(n), int(running or 0), str(src), first, last)
        for b, ts, n, running, src, first, last in rows
    ]


def run_marks(store: SqliteStore) -> dict[str, RunMark]:
    """Per strategy id, what the Leaderboard groups and marks its latest run by (one query,
    no config parsed)."""
    rows = store.db.execute(
        "SELECT strategy_id, kind, batch_id, window_from_ms, window_to_ms, data_source, "
        "data_hash, status, in_sample, status_reason FROM runs ORDER BY created_ts, rowid"
    ).fetchall()
    return {str(row[0]): RunMark(*row[1:]) for row in rows}


@dataclass(frozen=True)
class RunMark:
    """A run's kind, batch, window (epoch ms), data source and hash, status, in-sample mark
    and why it ended so (``status_reason``, ``None`` when it gave none)."""

    kind: RunKind
    batch_id: str | None
    window_from_ms: int | None
    window_to_ms: int | None
    data_source: str
    data_hash: str | None
    status: RunStatus
    in_sample: str | None
    status_reason: str | None = None


def run_mark(store: SqliteStore, strategy_id: str) -> RunMark | None:
    """The mark of the strategy's latest run, ``None`` when it never ran as a run (one index
    lookup, no config parsed)."""
    row = store.db.execute(
        "SELECT kind, batch_id, window_from_ms, window_to_ms, data_source, data_hash, status, "
        "in_sample, status_reason FROM runs WHERE strategy_id = ? "
        "ORDER BY created_ts DESC, rowid DESC LIMIT 1",
        [strategy_id],
    ).fetchone()
    return None if row is None else RunMark(*row)


def runs_of_strategy(store: SqliteStore, strategy_id: str) -> list[Run]:
    """Every run the strategy row ran as, newest first."""
    return _select(store, "WHERE strategy_id = ? ORDER BY created_ts DESC, rowid DESC", strategy_id)


# -- data identity -----------------------------------------------------------------------------


def candles_sha256(candles: Iterable[Candle]) -> str:
    """sha256 (hex) of the candles served, in the order given.

    Each candle contributes ``symbol,interval,ts,open,high,low,close,volume``
    (floats in ``repr``, so any change of a price or volume changes the hash).
    """
    digest = hashlib.sha256()
    for candle in candles:
        fields = (
            candle.instrument.symbol,
            candle.interval,
            str(candle.ts),
            *(repr(float(v)) for v in (candle.open, candle.high, candle.low, candle.close)),
            repr(float(candle.volume)),
        )
        digest.update((",".join(fields) + "\n").encode("utf-8"))
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes (a CSV of candles); ``ConfigurationError`` if unreadable."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise ConfigurationError(f"cannot read {path} to hash it: {error.strerror}") from error
    return digest.hexdigest()


# -- helpers -----------------------------------------------------------------------------------


def _check_spend(tokens: int, cost_usd: float | None) -> None:
    if tokens < 0 or (cost_usd is not None and not cost_usd >= 0):
        raise ConfigurationError(
            f"spend must be >= 0 tokens and dollars, got {tokens} tokens, {cost_usd} USD"
        )


def _require_running(store: SqliteStore, run_id: str) -> None:
    status = store.scalar("SELECT status FROM runs WHERE id = ?", [run_id])
    if status is None:
        raise ConfigurationError(f"no run with id {run_id!r} in {store.path}")
    if status != "running":
        raise ConfigurationError(f"run {run_id} has already ended ({status}); nothing was changed")


def _select(store: SqliteStore, where: str, *params: object) -> list[Run]:
    rows = store.rows(f"SELECT {_COLUMNS} FROM runs {where}", list(params))
    return [_run(row) for row in rows]


def _run(row: dict[str, object]) -> Run:
    try:
        request = UserRequest.model_validate_json(str(row.pop("config")))
    except ValidationError as error:
        raise ConfigurationError(
            f"stored configuration of run {row['id']!r} is no longer valid ({error})"
        ) from error
    return Run(request=request, **row)  # type: ignore[arg-type]
