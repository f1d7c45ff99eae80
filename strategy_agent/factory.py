"""Wires concrete adapters into a runnable strategy (the one place that does).

``open_runtime(store, strategy_id)`` rebuilds everything from the database:
the ledger by replaying stored fills, the digest from fills and closed trades,
the cycle count and the market clock from the last cycle. So a restart resumes
exactly where the strategy stopped.

The simulated market is stepped: each cycle moves its clock one candle forward
(deterministic, as fast as the machine allows, the pace set by the runner). A
cycle that fails moves nothing: the next one decides on the same candle again,
as a resume would (``last_cycle_ts`` is the last *successful* cycle's).

Edits reach a running strategy: before each step the runtime reads the stored
request; a new prompt applies from that cycle, any other edited setting
rebuilds the strategy from the database exactly as a resume does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from pydantic import SecretStr

from strategy_agent.clock import Clock, ManualClock
from strategy_agent.core import CycleReport, DecisionCoordinator
from strategy_agent.data.interfaces import MarketDataSource, MarketRulesProvider
from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.decision.builtin_policies import BUILTIN_POLICIES, builtin_policy
from strategy_agent.decision.composer import GuardedComposer
from strategy_agent.decision.flatten_policy import FlattenPolicy
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.interfaces import Policy
from strategy_agent.errors import ConfigurationError
from strategy_agent.execution.paper_trading import PaperExecutionGateway
from strategy_agent.features.technical_indicators import TechnicalFeatureComputer
from strategy_agent.models import ComposeContext, ComposeResult, UserRequest, interval_ms
from strategy_agent.portfolio.ledger import Ledger
from strategy_agent.trading_history.digest import IncrementalDigest
from strategy_agent.trading_history.prompt_versions import list_prompt_versions
from strategy_agent.trading_history.store import SqliteStore

SIMULATED = "simulated"
DEFAULT_DB = Path("data/strategy_agent.db")


@dataclass
class StrategyRuntime:
    """A strategy ready to run: its coordinator, the stepped market clock and its parts.

    ``store`` is where the runtime was opened from; each step first picks up
    the request stored there (see ``refresh``). ``updated_ts`` is the stored
    row's ``updated_ts`` (epoch ms) this runtime last read.
    """

    strategy_id: str
    request: UserRequest
    coordinator: DecisionCoordinator
    clock: ManualClock
    ledger: Ledger
    limits: GuardrailLimits
    rules: MarketRulesProvider
    policy: Policy
    store: SqliteStore | None = None
    api_key: SecretStr | None = None
    updated_ts: int | None = None

    def step(self) -> CycleReport:
        """Pick up edits, move the market one candle on, run one cycle.

        A failed cycle (``report.ok`` False, or ``StrategyHalted``) puts the
        clock back, so the next cycle decides on the same candle again.
        """
        self.refresh()
        return self._on_next_candle(self.coordinator.run_once)

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
        """Compose on the next candle without executing or recording (dry run)."""
        self.refresh()
        self.clock.advance(interval_ms(self.request.trading.interval))
        return self.coordinator.preview()

    def refresh(self) -> bool:
        """Use the request stored now; True when something changed.

        A new prompt (custom text or template) applies from the next cycle, with
        its saved version number; any other edited setting rebuilds the whole
        runtime from the database, exactly as a resume does.
        """
        if self.store is None:
            return False
        row = self.store.get_strategy(self.strategy_id)
        if row.updated_ts == self.updated_ts and row.request == self.request:
            return False
        if _settings(row.request) != _settings(self.request):
            fresh = open_runtime(self.store, self.strategy_id, api_key=self.api_key)
            for part in fields(self):
                setattr(self, part.name, getattr(fresh, part.name))
            return True
        self.request, self.updated_ts = row.request, row.updated_ts
        text = prompt_text_for(row.request, self.policy)
        self.coordinator.set_prompt(text, prompt_version_of(self.store, self.strategy_id, text))
        return True

    def _on_next_candle(self, run_cycle: Callable[[], CycleReport]) -> CycleReport:
        before = self.clock.now_ms()
        self.clock.advance(interval_ms(self.request.trading.interval))
        try:
            report = run_cycle()
        except BaseException:
            self.clock.set(before)
            raise
        if not report.ok:
            self.clock.set(before)
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
    """A built-in rule (sized with ``rules``' contract sizes), or the LLM (imported lazily)."""
    if request.llm.is_builtin:
        return builtin_policy(request.llm.model_id, rules)
    from strategy_agent.decision.llm_policy import build_llm_policy

    return build_llm_policy(
        request, limits, api_key=api_key, db_path=db_path, use_cache=request.llm.cache
    )


def unsupported(request: UserRequest) -> tuple[str, str] | None:
    """``(field, message)`` when this build cannot run ``request``, else ``None``.

    Checked before a strategy is stored (form, CLI) and again when it starts.
    """
    if request.llm.is_builtin and request.llm.model_id not in BUILTIN_POLICIES:
        known = ", ".join(sorted(BUILTIN_POLICIES))
        return ("llm.model_id", f"unknown built-in rule {request.llm.model_id!r}; use {known}")
    exchange = request.exchange
    if exchange.exchange_id != SIMULATED:
        return (
            "exchange.exchange_id",
            f"exchange {exchange.exchange_id!r} is not available yet: real markets arrive "
            f'with ccxt support; use exchange_id = "simulated" for now',
        )
    if exchange.trading_mode != "paper":
        return (
            "exchange.trading_mode",
            'the simulated market trades on paper only (trading_mode = "paper")',
        )
    return None


def build_market(
    request: UserRequest, clock: Clock
) -> tuple[MarketDataSource, MarketRulesProvider]:
    problem = unsupported(request)
    if problem is not None:
        raise ConfigurationError(problem[1])
    source = SimulatedMarketDataSource(
        symbols=request.trading.symbols,
        seed=request.trading.seed,
        clock=clock,
        origin_ms=DEFAULT_ORIGIN_MS,
    )
    return source, SimulatedMarketRules()


def open_runtime(
    store: SqliteStore,
    strategy_id: str,
    *,
    api_key: SecretStr | None = None,
) -> StrategyRuntime:
    """Build a runnable strategy from what the database holds (resume included)."""
    row = store.get_strategy(strategy_id)
    request = row.request
    trading = request.trading
    step_ms = interval_ms(trading.interval)
    last_ts = store.last_cycle_ts(strategy_id)
    clock = ManualClock(
        last_ts if last_ts is not None else DEFAULT_ORIGIN_MS + trading.lookback * step_ms
    )
    data, rules = build_market(request, clock)

    fills = store.load_fills(strategy_id)
    ledger = Ledger.replay(
        fills,
        initial_capital=trading.initial_capital,
        market_type=request.exchange.market_type,
        max_leverage=trading.max_leverage,
        strategy_id=strategy_id,
        rules=rules,
    )
    digest = IncrementalDigest.from_history(fills, store.load_trades(strategy_id))
    limits = GuardrailLimits.from_config(trading, request.exchange, rules)
    policy = build_policy(request, limits, api_key, Path(store.path), rules)
    fallback = builtin_policy(request.llm.fallback, rules)
    composer = GuardedComposer(policy, limits, rules, fallback=fallback)
    prices: dict[str, float] = {}
    gateway = PaperExecutionGateway(
        ledger,
        prices.get,
        clock,
        fee_bps=request.exchange.fee_bps,
        slippage_bps=request.exchange.slippage_bps,
    )
    prompt_text = prompt_text_for(request, policy)
    coordinator = DecisionCoordinator(
        strategy_id=strategy_id,
        trading=trading,
        prompt_text=prompt_text,
        prompt_version=prompt_version_of(store, strategy_id, prompt_text),
        data=data,
        features=TechnicalFeatureComputer(),
        composer=composer,
        gateway=gateway,
        book=ledger,
        digest=digest,
        store=store,
        clock=clock,
        prices=prices,
        constraints=limits.model_dump(mode="json"),
        cycles_done=store.cycle_count(strategy_id),
    )
    return StrategyRuntime(
        strategy_id,
        request,
        coordinator,
        clock,
        ledger,
        limits=limits,
        rules=rules,
        policy=policy,
        store=store,
        api_key=api_key,
        updated_ts=row.updated_ts,
    )
