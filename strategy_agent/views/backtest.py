"""Queries of the Backtest page: what to compare, on which data, and the estimate before a run.

Configs come from stored strategies (their stored requests, as they are),
from one strategy's saved prompt versions (its request with each version as
its prompt), or from one strategy run by several models (its request with
each model's ``[llm]``). The window is a pair of UTC dates (the last one
included, as on the command line); the data is the simulated market, a
stored candle set (``candle_store``) or uploaded CSV files. ``make_plan``
calls the engine's ``driver.plan_backtest`` (the CLI's path) and returns its
plan and the summary the page shows before anything is stored or spent.
The comparison after a run is ``views.backtest_compare``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from strategy_agent.backtest.driver import BacktestPlan, ConfigEntry, plan_backtest
from strategy_agent.backtest.window import DataSpec, utc
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import ModelConfig, UserRequest
from strategy_agent.trading_history import page_queries
from strategy_agent.trading_history.candle_store import stored_series
from strategy_agent.trading_history.prompt_versions import list_prompt_versions
from strategy_agent.trading_history.runs import run_marks

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

DAY_MS = 86_400_000
UPLOAD_DIR = "uploads"
MAX_UPLOAD_BYTES = 50_000_000
LABEL_CHARS = 60


@dataclass(frozen=True)
class ConfigSource:
    """A stored strategy whose config can be backtested: id, name and request, and the
    key typed in the app for it this session (``None``: the environment's)."""

    strategy_id: str
    name: str
    request: UserRequest
    api_key: SecretStr | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        llm = self.request.llm
        return f"{self.name} · {llm.provider}/{llm.model_id} · {self.strategy_id}"


@dataclass(frozen=True)
class ModelChoice:
    """A model the app knows (a built-in rule or another strategy's ``[llm]``), with the
    session key of the strategy it comes from."""

    label: str
    config: ModelConfig
    api_key: SecretStr | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DataChoice:
    """A data source to pick: its label and spec (``None``: uploaded CSV, given later)."""

    label: str
    spec: DataSpec | None
    detail: str = ""
    first_ms: int | None = None
    last_ms: int | None = None


@dataclass(frozen=True)
class PlanSummary:
    """What the page shows before running: the window, data, runs and cost, and warnings.

    ``estimate_rows`` per config: label, model, LLM calls, prompt and
    completion tokens (totals), dollars (``None``: unknown price).
    """

    window: str
    data: str
    runs: int
    cycles: int
    calls: int
    tokens: int
    cost_usd: float | None
    estimate_rows: list[dict[str, object]]
    in_sample: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)


# -- what to compare --------------------------------------------------------------------------


def config_sources(
    store: SqliteStore, session_keys: Mapping[str, SecretStr] | None = None
) -> list[ConfigSource]:
    """Stored strategies that are not backtest runs themselves, newest first.

    ``session_keys``: the keys typed in the app this session, by strategy id
    (``StrategyRunner.session_keys``); a backtest of that strategy uses its key.
    A strategy whose stored config cannot be read is left out.
    """
    keys = session_keys or {}
    backtests = {sid for sid, mark in run_marks(store).items() if mark.kind == "backtest"}
    sources = []
    for strategy_id, name, _ in page_queries.strategy_choices(store):
        if strategy_id in backtests:
            continue
        try:
            row = store.get_strategy(strategy_id)
        except Exception:  # an unreadable config cannot be replayed either
            continue
        sources.append(ConfigSource(strategy_id, name, row.request, keys.get(strategy_id)))
    return sources


def entries_from_strategies(sources: Sequence[ConfigSource]) -> list[ConfigEntry]:
    """One config per strategy, labelled by its name (its id added where names repeat)."""
    names = [s.name for s in sources]
    return [
        ConfigEntry(
            _short(s.name if names.count(s.name) == 1 else f"{s.name} ({s.strategy_id})"),
            s.request,
            s.api_key,
        )
        for s in sources
    ]


def prompt_version_choices(store: SqliteStore, strategy_id: str) -> list[tuple[int, str]]:
    """(version, label) of the strategy's saved prompt versions, newest first."""
    return [
        (v.version, f"v{v.version} · {_short(' '.join(v.text.split()), 50)}")
        for v in list_prompt_versions(store, strategy_id)
    ]


def entries_from_prompt_versions(
    store: SqliteStore, source: ConfigSource, versions: Sequence[int]
) -> list[ConfigEntry]:
    """One config per chosen version: the strategy's request with that version's text as
    its prompt. ``ConfigurationError`` for a built-in rule (it reads no prompt)."""
    if source.request.llm.is_builtin:
        raise ConfigurationError(
            f"{source.name} runs the built-in rule {source.request.llm.model_id}, which reads "
            f"no prompt: pick an LLM strategy to compare its prompt versions"
        )
    texts = {v.version: v.text for v in list_prompt_versions(store, source.strategy_id)}
    entries = []
    for version in versions:
        if version not in texts:
            raise ConfigurationError(f"{source.name} has no prompt version v{version}")
        trading = source.request.trading.model_copy(
            update={"custom_prompt": texts[version], "template_id": None}
        )
        entries.append(
            ConfigEntry(
                _short(f"{source.name} · prompt v{version}"),
                source.request.model_copy(update={"trading": trading}),
                source.api_key,
            )
        )
    return entries


def model_choices(sources: Sequence[ConfigSource], builtin: Sequence[str]) -> list[ModelChoice]:
    """Models to run one strategy with: every stored strategy's model, then the built-in
    rules; each once (by provider, model, server)."""
    seen: dict[tuple[str, str, str | None], ModelChoice] = {}
    for source in sources:
        llm = source.request.llm.model_copy(update={"sample_index": 0})
        key = (llm.provider, llm.model_id, llm.api_base)
        if key not in seen:
            where = f" @ {llm.api_base}" if llm.api_base else ""
            seen[key] = ModelChoice(f"{llm.provider}/{llm.model_id}{where}", llm, source.api_key)
    for name in builtin:
        key = ("builtin", name, None)
        if key not in seen:
            seen[key] = ModelChoice(
                f"builtin/{name}", ModelConfig(provider="builtin", model_id=name)
            )
    return list(seen.values())


def entries_from_models(source: ConfigSource, models: Sequence[ModelChoice]) -> list[ConfigEntry]:
    """One config per chosen model: the strategy's request with that model's ``[llm]``."""
    return [
        ConfigEntry(
            _short(f"{source.name} · {choice.label}"),
            source.request.model_copy(update={"llm": choice.config}),
            choice.api_key,
        )
        for choice in models
    ]


# -- which data ---------------------------------------------------------------------------------


def data_choices(store: SqliteStore) -> list[DataChoice]:
    """The simulated market, each exchange's stored candles (with what is stored)."""
    choices = [
        DataChoice(
            "Simulated market",
            DataSpec("simulated"),
            "the offline market paper trading sees (each config's seed; from 2025-01-01)",
        )
    ]
    by_exchange: dict[str, list[tuple[str, int, int, int]]] = {}
    for series, first, last, count in stored_series(store):
        by_exchange.setdefault(series.exchange, []).append(
            (f"{series.symbol} {series.interval}", first, last, count)
        )
    for exchange, rows in by_exchange.items():
        detail = "; ".join(
            f"{name}: {count:,} candles, {utc(first)} to {utc(last)} UTC"
            for name, first, last, count in rows
        )
        choices.append(
            DataChoice(
                f"Stored candles · {exchange}",
                DataSpec("store", exchange_id=exchange),
                detail,
                min(r[1] for r in rows),
                max(r[2] for r in rows),
            )
        )
    return choices


def save_upload(folder: Path, name: str, content: bytes) -> Path:
    """Keep an uploaded CSV under ``folder``/uploads, named by its sha256 (the same file
    uploaded twice is one file); ``ConfigurationError`` when empty or too large."""
    if not content:
        raise ConfigurationError(f"{name} is empty: upload a CSV of candles")
    if len(content) > MAX_UPLOAD_BYTES:
        raise ConfigurationError(
            f"{name} is {len(content) / 1e6:.0f} MB; upload at most {MAX_UPLOAD_BYTES // 10**6} MB"
        )
    digest = hashlib.sha256(content).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:40] or "candles"
    target = folder / UPLOAD_DIR / f"{stem}-{digest}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.write_bytes(content)
    return target


def csv_spec(files: Sequence[tuple[str, Path]]) -> DataSpec:
    """The spec of uploaded files: (symbol, path) each; one file may leave its symbol blank."""
    if not files:
        raise ConfigurationError("upload a CSV file of candles (ts,open,high,low,close,volume)")
    return DataSpec("csv", files=tuple((symbol.strip(), str(path)) for symbol, path in files))


def check_uploads(entries: Sequence[ConfigEntry], spec: DataSpec) -> None:
    """``ConfigurationError`` in the page's words when the uploaded files do not cover every
    symbol the configs trade (which symbols lack a file, and which configs trade them)."""
    named = {symbol for symbol, _ in spec.files if symbol}
    bare = sum(1 for symbol, _ in spec.files if not symbol)
    traded: dict[str, list[str]] = {}
    for entry in entries:
        for symbol in entry.request.trading.symbols:
            traded.setdefault(symbol, []).append(entry.label)
    several = any(len(set(e.request.trading.symbols)) > 1 for e in entries)
    if bare and (bare > 1 or named or several):
        raise ConfigurationError(
            f"The configs trade {', '.join(sorted(traded))}: type the symbol of each uploaded "
            f"file ({bare} file{'s' * (bare != 1)} without one)"
        )
    if bare:
        return
    missing = [symbol for symbol in sorted(traded) if symbol not in named]
    if missing:
        lacking = "; ".join(f"{symbol} ({', '.join(traded[symbol])})" for symbol in missing)
        raise ConfigurationError(
            f"No uploaded file for {lacking}: upload a CSV of each of these symbols and type "
            f"its symbol next to it, or pick configs that trade only the uploaded symbols"
        )


def guess_symbol(file_name: str, symbols: Sequence[str]) -> str:
    """The configs' symbol a file name names (``btc_1h.csv`` -> ``BTC/USDT``), else ``""``."""
    words = set(re.split(r"[^a-z0-9]+", file_name.lower()))
    for symbol in symbols:
        if symbol.split("/")[0].lower() in words:
            return symbol
    return ""


# -- the plan -----------------------------------------------------------------------------------


def day_ms(day: date) -> int:
    """Epoch ms of a UTC date's midnight."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def make_plan(
    store: SqliteStore,
    entries: Sequence[ConfigEntry],
    first_day: date,
    last_day: date,
    spec: DataSpec,
    samples: int,
) -> BacktestPlan:
    """``driver.plan_backtest`` of the configs from ``first_day`` through ``last_day``
    (included, UTC); ``ConfigurationError`` says what cannot run."""
    if last_day < first_day:
        raise ConfigurationError("the last day is before the first day")
    if spec.kind == "csv":
        check_uploads(entries, spec)
    return plan_backtest(
        entries,
        from_ms=day_ms(first_day),
        to_ms=day_ms(last_day) + DAY_MS - 1,
        spec=spec,
        samples=samples,
        store=store,
    )


def plan_summary(plan: BacktestPlan) -> PlanSummary:
    """What the page shows of ``plan`` (see ``PlanSummary``)."""
    from strategy_agent.backtest.cost import model_prices

    estimate = plan.estimate
    windows = list(dict.fromkeys((r.label, r.window.describe()) for r in plan.runs))
    texts = {text for _, text in windows}
    window = windows[0][1] if len(texts) == 1 else "; ".join(f"{a}: {b}" for a, b in windows)
    in_sample = [
        f"{label}: {why}; its results may reflect memory, not skill"
        for label, why in dict.fromkeys((r.label, r.in_sample) for r in plan.runs if r.in_sample)
    ]
    unpriced = sorted({r.label for r in plan.runs if model_prices(r.request.llm) is None})
    return PlanSummary(
        window=window,
        data=f"{plan.data.spec.label} (data sha256 {plan.data_hash[:12]})",
        runs=len(plan.runs),
        cycles=plan.cycles_total,
        calls=estimate.calls,
        tokens=estimate.tokens,
        cost_usd=estimate.cost_usd,
        estimate_rows=[
            {
                "Config": c.label,
                "Model": c.model,
                "Runs": sum(1 for r in plan.runs if r.label == c.label),
                "LLM calls": c.calls,
                "Prompt tokens": c.prompt_tokens,
                "Completion tokens": c.completion_tokens,
                "Dollars (USD)": c.cost_usd,
                "Prices": c.price_source or "unknown",
            }
            for c in estimate.configs
        ],
        in_sample=in_sample,
        notes=list(plan.notes) + [note for c in estimate.configs for note in c.notes],
        unpriced=unpriced,
    )


def _short(text: str, chars: int = LABEL_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"
