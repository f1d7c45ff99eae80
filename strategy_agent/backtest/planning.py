"""A backtest's plan: the configs, each run's window, sample and request, the cost estimate.

``plan_backtest`` loads the batch's candles once (``window.load_batch``), fixes
one window for every config (the latest start and the earliest end any allows),
each config's samples (``ModelConfig.sample_index``, which keys the response
cache), the cost estimate and the in-sample marks; nothing is stored or spent.
``driver.run_backtest`` then runs the plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr

from strategy_agent.backtest.cost import ConfigEstimate, CostEstimate, estimate_config
from strategy_agent.backtest.cutoffs import in_sample
from strategy_agent.backtest.run_notes import sample_notes, window_notes
from strategy_agent.backtest.window import (
    BatchData,
    DataSpec,
    RunWindow,
    default_spec,
    load_batch,
    replay_of,
)
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.runs import Run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.wiring import SIMULATED, load_markets, unsupported

NAME_CHARS = 80  # a run's strategy name, " · backtest #i/n" included


@dataclass(frozen=True)
class ConfigEntry:
    """One config of the command line: its label in the comparison and its request.

    ``api_key``: a key typed in the app for this session (the Backtest page passes
    the one its strategy runs with); used by the runs, never stored. ``None``: the
    usual sources (environment, ``.streamlit/secrets.toml``).
    """

    label: str
    request: UserRequest
    api_key: SecretStr | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PlannedRun:
    """One run of the batch: the request its strategy row stores (name, sample, replay)."""

    label: str
    request: UserRequest
    window: RunWindow
    sample_index: int
    in_sample: str | None
    api_key: SecretStr | None = field(default=None, repr=False)  # the entry's session key


@dataclass
class BacktestPlan:
    """What a backtest will do, before anything is stored or spent."""

    data: BatchData
    runs: list[PlannedRun]
    estimate: CostEstimate
    samples: int
    data_hash: str
    notes: list[str] = field(default_factory=list)
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def cycles_total(self) -> int:
        return sum(run.window.cycles for run in self.runs)

    @property
    def uses_llm(self) -> bool:
        return any(not run.request.llm.is_builtin for run in self.runs)


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended: its stored run row and cycles.

    ``cycles``: cycles run; ``window_cycles``: cycles its window holds (``None``
    when not known, e.g. a run read back from the database); ``fallback_cycles``:
    cycles decided by the fallback policy ``fallback`` instead of the model.
    """

    label: str
    run: Run
    cycles: int
    failed_cycles: int
    window_cycles: int | None = None
    fallback_cycles: int = 0
    fallback: str | None = None


def plan_backtest(
    configs: Sequence[ConfigEntry],
    *,
    from_ms: int,
    to_ms: int,
    spec: DataSpec | None = None,
    samples: int = 1,
    store: SqliteStore | None = None,
) -> BacktestPlan:
    """Load the candles, fix the windows, estimate the cost; ``ConfigurationError`` says
    what cannot run (unknown rule or exchange, missing candles, an empty window)."""
    if not configs:
        raise ConfigurationError("a backtest needs at least one --config")
    if samples < 1:
        raise ConfigurationError(f"--samples must be at least 1, got {samples}")
    if to_ms < from_ms:
        raise ConfigurationError("--to is before --from")
    for entry in configs:
        problem = unsupported(entry.request.model_copy(update={"replay": None}))
        if problem is not None:
            raise ConfigurationError(f"{entry.label}: {problem[0]}: {problem[1]}")
        if not entry.request.llm.is_builtin:  # a missing key is said now, not in every run
            from strategy_agent.secrets import resolve_api_key

            session = entry.api_key.get_secret_value() if entry.api_key else None
            resolve_api_key(entry.request.llm, session_key=session)
    spec = spec or _common_spec(configs)
    data = load_batch(spec, [c.request for c in configs], to_ms, store)

    def windows(first_ms: int, last_ms: int) -> list[RunWindow]:
        return [
            data.window(
                c.request.trading.symbols,
                c.request.trading.interval,
                c.request.trading.lookback,
                first_ms,
                last_ms,
            )
            for c in configs
        ]

    own = windows(from_ms, to_ms)
    # one window for all: the latest start and the earliest end any config allows
    common = windows(max(w.first_ms for w in own), min(w.last_ms for w in own))
    notes = window_notes(from_ms, to_ms, common[0]) + sample_notes(
        [(c.label, c.request.llm) for c in configs], samples
    )
    runs: list[PlannedRun] = []
    estimates: list[ConfigEstimate] = []
    for entry, window in zip(configs, common, strict=True):
        count = 1 if entry.request.llm.is_builtin else samples
        if entry.request.exchange.exchange_id != SIMULATED:  # the rules, loaded once
            load_markets(entry.request.exchange.exchange_id, entry.request.exchange.api_url)
        estimates.append(estimate_config(entry.request, window.cycles, count, label=entry.label))
        leak = in_sample(entry.request.llm, window.first_ms)
        for sample in range(count):
            runs.append(
                PlannedRun(
                    entry.label,
                    _run_request(entry, spec, window, sample, count),
                    window,
                    sample,
                    leak,
                    entry.api_key,
                )
            )
    needs = [
        (c.request.trading.symbols, w, c.request.trading.lookback)
        for c, w in zip(configs, common, strict=True)
    ]
    estimate = CostEstimate(max(w.cycles for w in common), samples, estimates)
    return BacktestPlan(data, runs, estimate, samples, data.data_hash(needs), notes)


def _run_request(
    entry: ConfigEntry, spec: DataSpec, window: RunWindow, sample: int, samples: int
) -> UserRequest:
    """The request a run's strategy row stores: the config as written, named for the
    backtest, with its sample index and the replay that describes its data."""
    suffix = " · backtest" + (f" #{sample + 1}/{samples}" if samples > 1 else "")
    name = entry.label[: NAME_CHARS - len(suffix)] + suffix
    request = entry.request
    trading = request.trading.model_copy(update={"strategy_name": name})
    llm = request.llm.model_copy(update={"sample_index": sample})
    replay = replay_of(spec, request, window.first_ms + window.step_ms)
    return request.model_copy(update={"trading": trading, "llm": llm, "replay": replay})


def _common_spec(configs: Sequence[ConfigEntry]) -> DataSpec:
    specs = {default_spec(c.request) for c in configs}
    if len(specs) > 1:
        names = ", ".join(sorted(s.label for s in specs))
        raise ConfigurationError(
            f"the configs name different data ({names}): give --data to replay them all on the "
            f"same candles"
        )
    return specs.pop()
