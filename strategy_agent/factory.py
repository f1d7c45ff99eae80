"""Wires concrete adapters into a runnable strategy (with ``strategy_agent.wiring``, which
chooses the market, clock, scheduler, rules and gateway from the config).

``open_runtime(store, strategy_id)`` rebuilds everything from the database:
the ledger by replaying stored fills and funding payments, the digest from
fills and closed trades, the cycle count and the market clock from the last
cycle. So a restart resumes exactly where the strategy stopped. On testnet and
live it also reconciles the orders a crash left open, and each cycle's
portfolio view is read from the exchange account (``wiring.build_portfolio``).

The simulated market and replays are stepped: each cycle moves their clock one
candle forward (deterministic, as fast as the machine allows, the pace set by
the runner). A cycle that fails moves nothing: the next one decides on the
same candle again, as a resume would (``last_cycle_ts`` is the last
*successful* cycle's). A live market runs on the wall clock: its scheduler
decides once per closed candle.

Edits reach a running strategy: before each step the runtime reads the stored
request; a new prompt applies from that cycle, any other edited setting
rebuilds the strategy from the database exactly as a resume does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from pydantic import SecretStr

from strategy_agent.clock import Clock
from strategy_agent.core import CycleReport, DecisionCoordinator
from strategy_agent.cycle_records import read_funding, read_last_quotes
from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.decision.builtin_policies import builtin_policy
from strategy_agent.decision.composer import GuardedComposer
from strategy_agent.decision.flatten_policy import FlattenPolicy
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.interfaces import Policy
from strategy_agent.features.interfaces import FeatureComputer
from strategy_agent.features.technical_indicators import TechnicalFeatureComputer
from strategy_agent.models import ComposeContext, ComposeResult, UserRequest, interval_ms
from strategy_agent.portfolio.ledger import Ledger
from strategy_agent.replay_speed import fast_market
from strategy_agent.scheduling import Scheduler
from strategy_agent.trading_history.cycle_batch import DEFAULT_BATCH_CYCLES, BatchedCycleStore
from strategy_agent.trading_history.digest import IncrementalDigest
from strategy_agent.trading_history.prompt_versions import list_prompt_versions
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.wiring import (
    SIMULATED,
    MarketPorts,
    build_funding,
    build_gateway,
    build_portfolio,
    build_scheduler,
    unsupported,
)
from strategy_agent.wiring import build_market as build_market_ports

__all__ = ["SIMULATED", "StrategyRuntime", "build_market", "open_runtime", "unsupported"]
DEFAULT_DB = Path("data/strategy_agent.db")


@dataclass
class StrategyRuntime:
    """A strategy ready to run: its coordinator, the market's clock and ports, its parts.

    ``store`` is where the runtime was opened from; each step first picks up
    the request stored there (see ``refresh``). ``updated_ts`` is the stored
    row's ``updated_ts`` (epoch ms) this runtime last read. ``ports``: the
    market side (``wiring.MarketPorts``); ``live_confirmed`` and
    ``clock_override`` are kept for a rebuild. ``pinned``: a backtest run,
    whose settings are the run's own: stored edits are not picked up.
    ``fast_replay``: the replay's fast paths (``replay_speed``); ``batch`` holds
    the cycles not written yet (``flush``). ``stamp``: the stored row's
    ``strategy_stamp`` when it was last found equal to this runtime's request.
    """

    strategy_id: str
    request: UserRequest
    coordinator: DecisionCoordinator
    clock: Clock
    ledger: Ledger
    limits: GuardrailLimits
    rules: MarketRulesProvider
    policy: Policy
    store: SqliteStore | None = None
    api_key: SecretStr | None = None
    updated_ts: int | None = None
    ports: MarketPorts | None = None
    live_confirmed: bool = False
    clock_override: Clock | None = None
    pinned: bool = False
    fast_replay: bool = False
    batch: BatchedCycleStore | None = None
    stamp: tuple[int, str] | None = None

    def scheduler(self, step_delay_s: float) -> Scheduler:
        """When the background loop runs the next cycle: ``step_delay_s`` apart on a stepped
        market, once per closed candle on a live one."""
        assert self.ports is not None
        last = self.store.last_cycle_ts(self.strategy_id) if self.store is not None else None
        return build_scheduler(self.ports, self.request, step_delay_s, last)

    def exhausted(self) -> bool:
        """True when a replay has no candle left to decide on (never on other markets)."""
        if self.ports is None or self.ports.end_ms is None:
            return False
        return self.clock.now_ms() + interval_ms(self.request.trading.interval) > self.ports.end_ms

    def step(self) -> CycleReport:
        """Pick up edits, move the market one candle on, run one cycle.

        A failed cycle (``report.ok`` False, or ``StrategyHalted``) puts the
        clock back, so the next cycle decides on the same candle again.
        """
        self.refresh()
        return self._on_next_candle(self.coordinator.run_once)

    def flush(self) -> None:
        """Write the cycles a fast replay holds (at the end of a run, before a pause or stop)."""
        if self.batch is not None:
            self.batch.flush()

    def close_positions(self) -> CycleReport:
        """One recorded cycle whose plan closes every open position ("Stop and close").

        The plan (``FlattenPolicy``, notes "closed by user on stop") replaces the
        strategy's policy for this cycle only and goes through the guardrails
        (an exit is always allowed), the gateway, the ledger and the history like
        any cycle, on the next candle. With no open position the cycle records
        an empty plan.
        """
        composer = GuardedComposer(FlattenPolicy(), self.limits, self.rules)
        return self._on_next_candle(lambda: self.coordinator.run_once(composer))

    def preview(self) -> tuple[ComposeContext, ComposeResult]:
        """Compose on the next candle (on a live market: now) without executing or recording."""
        self.refresh()
        stepped = self.ports.stepped if self.ports is not None else None
        if stepped is not None:
            stepped.advance(interval_ms(self.request.trading.interval))
        return self.coordinator.preview()

    def refresh(self) -> bool:
        """Use the request stored now; True when something changed.

        A new prompt (custom text or template) applies from the next cycle, with
        its saved version number; any other edited setting rebuilds the whole
        runtime from the database, exactly as a resume does. A pinned runtime (a
        backtest) keeps its settings.
        """
        if self.store is None or self.pinned:
            return False
        stamp = self.store.strategy_stamp(self.strategy_id)
        if stamp is not None and stamp == self.stamp:
            return False  # the very row read last time: nothing to parse
        row = self.store.get_strategy(self.strategy_id)
        if row.updated_ts == self.updated_ts and row.request == self.request:
            self.stamp = stamp
            return False
        if _settings(row.request) != _settings(self.request):
            self.flush()
            fresh = open_runtime(
                self.store,
                self.strategy_id,
                api_key=self.api_key,
                live_confirmed=self.live_confirmed,
                clock=self.clock_override,
                fast_replay=self.fast_replay,
                batch_cycles=self.batch.size if self.batch is not None else DEFAULT_BATCH_CYCLES,
            )
            for part in fields(self):
                setattr(self, part.name, getattr(fresh, part.name))
            return True
        self.request, self.updated_ts, self.stamp = row.request, row.updated_ts, stamp
        text = prompt_text_for(row.request, self.policy)
        self.coordinator.set_prompt(text, prompt_version_of(self.store, self.strategy_id, text))
        return True

    def _on_next_candle(self, run_cycle: Callable[[], CycleReport]) -> CycleReport:
        """A stepped clock moves one candle on (back again if the cycle fails); a live one
        is the wall clock."""
        stepped = self.ports.stepped if self.ports is not None else None
        if stepped is None:
            return run_cycle()
        before = stepped.now_ms()
        stepped.advance(interval_ms(self.request.trading.interval))
        try:
            report = run_cycle()
        except BaseException:
            stepped.set(before)
            raise
        if not report.ok:
            stepped.set(before)
        return report


def _settings(request: UserRequest) -> UserRequest:
    """``request`` without what a prompt edit changes (the prompt, the name)."""
    trading = request.trading.model_copy(
        update={"custom_prompt": None, "template_id": None, "strategy_name": ""}
    )
    return request.model_copy(update={"trading": trading})


def prompt_version_of(store: SqliteStore, strategy_id: str, prompt_text: str) -> int | None:
    """Number of the newest saved version of the strategy's prompt equal to ``prompt_text``.

    ``None`` when the text was never saved as a version (a template, a prompt
    from the config file).
    """
    for version in list_prompt_versions(store, strategy_id):
        if version.text == prompt_text.strip():
            return version.version
    return None


def prompt_text_for(request: UserRequest, policy: Policy) -> str:
    """The strategy's prompt: custom text, else its template (an LLM's default: ``prompt_choice``).

    A built-in rule with neither reads no prompt: its description is recorded instead.
    """
    from strategy_agent.decision.prompt_choice import prompt_choice

    choice = prompt_choice(request.trading, uses_prompt=not request.llm.is_builtin)
    if choice.text:
        return choice.text
    doc = (type(policy).__doc__ or policy.name).strip()
    return f"Built-in rule {policy.name}: {doc}"


def build_policy(
    request: UserRequest,
    limits: GuardrailLimits,
    api_key: SecretStr | None,
    db_path: Path,
    rules: MarketRulesProvider | None = None,
) -> Policy:
    """A built-in rule (sized with ``rules``' contract sizes), or the LLM (imported lazily).

    The LLM's response cache (in ``db_path``) is on when ``llm.cache`` says so; unset, it
    is on for the simulated market and replays (backtests included), off on live markets.
    """
    if request.llm.is_builtin:
        return builtin_policy(request.llm.model_id, rules)
    from strategy_agent.decision.llm_policy import build_llm_policy

    use_cache = request.llm.cache
    if use_cache is None:
        use_cache = request.replay is not None or request.exchange.exchange_id == SIMULATED
    return build_llm_policy(request, limits, api_key=api_key, db_path=db_path, use_cache=use_cache)


def build_market(
    request: UserRequest,
    *,
    last_cycle_ts: int | None = None,
    store: SqliteStore | None = None,
    clock: Clock | None = None,
) -> MarketPorts:
    """The market ports of ``request`` (``wiring.build_market``; the one call that opens them)."""
    return build_market_ports(request, last_cycle_ts=last_cycle_ts, store=store, clock=clock)


def open_runtime(
    store: SqliteStore,
    strategy_id: str,
    *,
    api_key: SecretStr | None = None,
    live_confirmed: bool = False,
    clock: Clock | None = None,
    ports: MarketPorts | None = None,
    cache_db: Path | None = None,
    fast_replay: bool = False,
    batch_cycles: int = DEFAULT_BATCH_CYCLES,
) -> StrategyRuntime:
    """Build a runnable strategy from what the database holds (resume included).

    ``live_confirmed``: the explicit confirmation live trading needs (the CLI's
    ``--i-understand-live-trading``, the form's typed confirmation). ``clock``
    replaces the wall clock of a live market (tests, demos). A live market
    loads the exchange's markets here: ``DataUnavailableError`` when it cannot
    be reached. ``ports``: market ports built by the caller (a backtest's, on
    the candles of its batch: ``wiring.replay_ports``); the runtime is then
    pinned to them. ``cache_db``: where the LLM's response cache lives (default:
    ``store``'s file). ``fast_replay``: on a stepped market, candles and
    indicators computed once per chunk and ``batch_cycles`` cycles written per
    transaction (``replay_speed``; the same results; ``flush`` at the end).
    """
    row = store.get_strategy(strategy_id)
    request = row.request
    trading = request.trading
    pinned = ports is not None
    if ports is None:
        ports = build_market(
            request, last_cycle_ts=store.last_cycle_ts(strategy_id), store=store, clock=clock
        )
    features: FeatureComputer = TechnicalFeatureComputer()
    fast = fast_replay and ports.stepped is not None
    batch = BatchedCycleStore(store, batch_cycles) if fast else None
    if batch is not None:
        ports, features = fast_market(ports, trading.interval)
    rules = ports.rules
    fills = store.load_fills(strategy_id)
    ledger = Ledger.replay(
        fills,
        initial_capital=trading.initial_capital,
        market_type=request.exchange.market_type,
        max_leverage=trading.max_leverage,
        strategy_id=strategy_id,
        rules=rules,
        funding=read_funding(store, strategy_id),
    )
    digest = IncrementalDigest.from_history(fills, store.load_trades(strategy_id))
    limits = GuardrailLimits.from_config(trading, request.exchange, rules)
    policy = build_policy(request, limits, api_key, cache_db or Path(store.path), rules)
    fallback = builtin_policy(request.llm.fallback, rules)
    composer = GuardedComposer(policy, limits, rules, fallback=fallback)
    gateway = build_gateway(
        request,
        ports,
        ledger,
        store=store,
        strategy_id=strategy_id,
        live_confirmed=live_confirmed,
    )
    prompt_text = prompt_text_for(request, policy)
    coordinator = DecisionCoordinator(
        strategy_id=strategy_id,
        trading=trading,
        prompt_text=prompt_text,
        prompt_version=prompt_version_of(store, strategy_id, prompt_text),
        data=ports.data,
        features=features,
        composer=composer,
        gateway=gateway,
        book=ledger,
        digest=digest,
        store=batch or store,
        clock=ports.clock,
        constraints=limits.model_dump(mode="json"),
        cycles_done=store.cycle_count(strategy_id),
        quotes=ports.quotes,
        funding=build_funding(ports, request, lambda: read_last_quotes(store, strategy_id)),
        portfolio=build_portfolio(request, ledger, gateway, strategy_id),
    )
    return StrategyRuntime(
        strategy_id,
        request,
        coordinator,
        ports.clock,
        ledger,
        limits=limits,
        rules=rules,
        policy=policy,
        store=store,
        api_key=api_key,
        updated_ts=row.updated_ts,
        ports=ports,
        live_confirmed=live_confirmed,
        clock_override=clock,
        pinned=pinned,
        fast_replay=fast_replay,
        batch=batch,
    )
