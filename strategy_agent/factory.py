"""Wires concrete adapters into a runnable strategy (the one place that does).

``open_runtime(store, strategy_id)`` rebuilds everything from the database:
the ledger by replaying stored fills, the digest from fills and closed trades,
the cycle count and the market clock from the last cycle. So a restart resumes
exactly where the strategy stopped.

The simulated market is stepped: each cycle moves its clock one candle forward
(deterministic, as fast as the machine allows, the pace set by the runner).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from strategy_agent.clock import Clock, ManualClock
from strategy_agent.core import CycleReport, DecisionCoordinator
from strategy_agent.data.interfaces import MarketDataSource, MarketRulesProvider
from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.decision.builtin_policies import BUILTIN_POLICIES, builtin_policy
from strategy_agent.decision.composer import GuardedComposer
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.interfaces import Policy
from strategy_agent.errors import ConfigurationError
from strategy_agent.execution.paper_trading import PaperExecutionGateway
from strategy_agent.features.technical_indicators import TechnicalFeatureComputer
from strategy_agent.models import ComposeContext, ComposeResult, UserRequest, interval_ms
from strategy_agent.portfolio.ledger import Ledger
from strategy_agent.trading_history.digest import IncrementalDigest
from strategy_agent.trading_history.store import SqliteStore

SIMULATED = "simulated"
DEFAULT_DB = Path("data/strategy_agent.db")


@dataclass
class StrategyRuntime:
    """A strategy ready to run: its coordinator and the stepped market clock."""

    strategy_id: str
    request: UserRequest
    coordinator: DecisionCoordinator
    clock: ManualClock
    ledger: Ledger

    def step(self) -> CycleReport:
        """Move the market one candle on, then run one cycle."""
        self.clock.advance(interval_ms(self.request.trading.interval))
        return self.coordinator.run_once()

    def preview(self) -> tuple[ComposeContext, ComposeResult]:
        """Compose on the next candle without executing or recording (dry run)."""
        self.clock.advance(interval_ms(self.request.trading.interval))
        return self.coordinator.preview()


def prompt_text_for(request: UserRequest, policy: Policy) -> str:
    """The strategy's prompt: custom text, else its template, else the rule's description."""
    trading = request.trading
    if trading.custom_prompt and trading.custom_prompt.strip():
        return trading.custom_prompt.strip()
    if trading.template_id:
        from strategy_agent.decision.prompt_library import load_template

        return load_template(trading.template_id)
    doc = (type(policy).__doc__ or policy.name).strip()
    return f"Built-in rule {policy.name}: {doc}"


def build_policy(
    request: UserRequest, limits: GuardrailLimits, api_key: SecretStr | None, db_path: Path
) -> Policy:
    """A built-in rule, or the LLM (imported lazily so the app starts fast)."""
    if request.llm.is_builtin:
        return builtin_policy(request.llm.model_id)
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
    )
    digest = IncrementalDigest.from_history(fills, store.load_trades(strategy_id))
    limits = GuardrailLimits.from_config(trading, request.exchange)
    policy = build_policy(request, limits, api_key, Path(store.path))
    fallback = builtin_policy(request.llm.fallback)
    composer = GuardedComposer(policy, limits, rules, fallback=fallback)
    prices: dict[str, float] = {}
    gateway = PaperExecutionGateway(
        ledger,
        prices.get,
        clock,
        fee_bps=request.exchange.fee_bps,
        slippage_bps=request.exchange.slippage_bps,
    )
    coordinator = DecisionCoordinator(
        strategy_id=strategy_id,
        trading=trading,
        prompt_text=prompt_text_for(request, policy),
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
    return StrategyRuntime(strategy_id, request, coordinator, clock, ledger)
