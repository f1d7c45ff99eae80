"""DecisionCoordinator: one decision cycle, step by step, as the design's minimal contract.

A cycle is: candles (only those closed at the clock's now) -> mark the book ->
view -> features -> compose (policy + guardrails) -> execute -> apply fills to
the ledger -> digest -> write the four checkpoints (and an ``alert`` on the
``fallback_alert_after``-th fallback in a row), the fills, closed trades and
the equity point in ONE transaction (the records: ``cycle_records``).

On a real market the exchange's snapshot (``quotes``: last, bid, ask, 24h
change, mark price and funding rate) goes into the context, and a paper swap
position settles the funding that fell due since the last cycle (``funding``),
applied to the ledger with the fills and recorded as a ``funding`` checkpoint.

The previous composed cycle's rejected and clamped items and reply problem go
into the next context as ``feedback`` (kept in memory; after a restart, read
back from the last ``compose`` record).

A failure inside a cycle (data, features, policy, execution) is recorded as an
``error`` checkpoint with its reason and the next cycle still runs. Errors the
user must fix (a refused key, an unknown model, a bad config) and a cycle that
could not be written to the database raise ``StrategyHalted`` after being
recorded (as far as possible), so the runner stops the strategy with a visible
reason and a restart resumes from what is stored.

This module imports no adapter: the concrete classes arrive through the ports
and a few small protocols below, wired by ``strategy_agent.factory``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from strategy_agent.clock import Clock
from strategy_agent.cycle_ports import Book, CycleStore, Digest, Funding, QuoteSource
from strategy_agent.cycle_records import (
    closed_candles,
    cycle_records,
    fallback_alert,
    feedback_from_compose,
    funding_record,
    last_candles,
    latest_closes,
    prompt_hash,
    read_fallback_streak,
    read_feedback,
)
from strategy_agent.data.interfaces import MarketDataSource
from strategy_agent.decision.interfaces import Composer
from strategy_agent.errors import (
    AuthenticationError,
    ConfigurationError,
    StrategyAgentError,
)
from strategy_agent.execution.fills import fill_from_result
from strategy_agent.execution.interfaces import ExecutionGateway
from strategy_agent.features.interfaces import FeatureComputer
from strategy_agent.models import (
    ComposeContext,
    ComposeFeedback,
    ComposeResult,
    ExecutionResult,
    FeatureVector,
    Fill,
    HistoryRecord,
    TradeHistoryEntry,
    TradingConfig,
)
from strategy_agent.portfolio.funding import FundingPayment


class StrategyHalted(StrategyAgentError):
    """The strategy cannot go on until the user fixes something (reason in the message)."""


@dataclass
class CycleReport:
    """What one cycle did, for the CLI line and the UI."""

    cycle: int
    compose_id: str
    ts: int
    ok: bool
    equity: float | None = None
    actions: list[str] = field(default_factory=list)
    error: str | None = None
    stage: str | None = None
    result: ComposeResult | None = None
    executions: list[ExecutionResult] = field(default_factory=list)
    context: ComposeContext | None = None
    overhead_ms: float = 0.0
    fallback_reason: str | None = None
    alert: str | None = None  # the alert this cycle recorded (K fallbacks in a row)
    prompt_version: int | None = None
    prompt_hash: str | None = None


class CycleFailed(Exception):
    """Internal: a stage of the cycle failed; carries the stage name."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error


class DecisionCoordinator:
    """Runs decision cycles of one strategy and records everything they do."""

    def __init__(
        self,
        *,
        strategy_id: str,
        trading: TradingConfig,
        prompt_text: str,
        data: MarketDataSource,
        features: FeatureComputer,
        composer: Composer,
        gateway: ExecutionGateway,
        book: Book,
        digest: Digest,
        store: CycleStore,
        clock: Clock,
        constraints: dict[str, Any] | None = None,
        cycles_done: int = 0,
        prompt_version: int | None = None,
        quotes: QuoteSource | None = None,
        funding: Funding | None = None,
    ) -> None:
        self.strategy_id = strategy_id
        self.trading = trading
        self.prompt_text = prompt_text
        self.prompt_version = prompt_version
        self._data = data
        self._features = features
        self._composer = composer
        self._gateway = gateway
        self._book = book
        self._digest = digest
        self._store = store
        self._clock = clock
        self._quotes = quotes
        self._funding = funding
        # This cycle's latest closes (the marks) and funding payments due.
        self._closes: dict[str, float] = {}
        self._due: list[FundingPayment] = []
        self._constraints = constraints
        self.cycles_done = cycles_done
        # The last closed candle per symbol of the latest cycle, recorded for the pages.
        self._last_candles: dict[str, dict[str, float]] = {}
        # What became of the last composed plan (read from the store on a resume).
        self._feedback: ComposeFeedback | None = None
        self._feedback_known = cycles_done == 0
        # Composed cycles in a row that fell back (None: read from the store on a resume).
        self._fallback_streak: int | None = 0 if cycles_done == 0 else None

    # -- public -------------------------------------------------------------------

    def set_prompt(self, prompt_text: str, prompt_version: int | None) -> None:
        """Use ``prompt_text`` from the next cycle on (``prompt_version``: its saved number)."""
        self.prompt_text = prompt_text
        self.prompt_version = prompt_version

    def run_once(self, composer: Composer | None = None) -> CycleReport:
        """Run one cycle; never raises for expected failures (see module doc).

        ``composer`` replaces the strategy's own for this cycle only (the
        "close positions" cycle injects a flattening plan this way).
        """
        cycle = self.cycles_done + 1
        ts = self._clock.now_ms()
        compose_id = f"{self.strategy_id}-{cycle:06d}"
        started = time.perf_counter()
        try:
            report = self._cycle(cycle, ts, compose_id, started, composer or self._composer)
        except CycleFailed as failure:
            report = self._record_failure(cycle, ts, compose_id, failure)
            if isinstance(failure.error, AuthenticationError | ConfigurationError):
                raise StrategyHalted(str(failure.error)) from failure.error
            if failure.stage == "storage":
                # The book moved but the database did not: stop here, so a restart
                # resumes from what is stored instead of trading on unrecorded state.
                raise StrategyHalted(
                    f"the cycle could not be recorded ({report.error}); the strategy stopped "
                    f"so nothing is lost: fix the database (disk space, permissions) and "
                    f"start it again"
                ) from failure.error
        self.cycles_done = cycle
        return report

    def preview(self) -> tuple[ComposeContext, ComposeResult]:
        """Compose on the current market without executing or recording (dry run)."""
        ts = self._clock.now_ms()
        context, _ = self._context(ts, f"{self.strategy_id}-preview")
        return context, self._composer.compose(context)

    # -- the cycle --------------------------------------------------------------------

    def _cycle(
        self, cycle: int, ts: int, compose_id: str, started: float, composer: Composer
    ) -> CycleReport:
        context, features = self._context(ts, compose_id)
        llm_started = time.perf_counter()
        result = _stage("compose", composer.compose, context)
        llm_ms = (time.perf_counter() - llm_started) * 1000.0
        executions = _stage("execution", self._gateway.execute, result.instructions)
        # every result is checked before the book moves: a malformed one fails the stage
        new_fills = _stage("execution", _fills_of, executions, self.strategy_id)
        fills, trades = self._apply(new_fills)
        self._book.mark(self._closes, ts)
        equity = self._book.equity_point(ts)
        records = cycle_records(
            strategy_id=self.strategy_id,
            cycle=cycle,
            ts=ts,
            compose_id=compose_id,
            features=features,
            candles=self._last_candles,
            context=context,
            result=result,
            executions=executions,
            prompt_version=self.prompt_version,
        )
        compose = next(r for r in records if r.kind == "compose")
        streak, alert = self._fallback_alert(compose)
        records += [alert] if alert is not None else []
        if self._due:
            records.append(funding_record(compose, self._due, self._book.funding_paid))
        _stage(
            "storage",
            self._store.write_cycle,
            self.strategy_id,
            records,
            fills,
            trades,
            equity,
        )
        self._fallback_streak = streak
        if self._funding is not None:
            self._funding.commit(context.market_quotes, ts)
        self._feedback = feedback_from_compose(compose.payload)
        overhead_ms = (time.perf_counter() - started) * 1000.0 - llm_ms
        return CycleReport(
            cycle=cycle,
            compose_id=compose_id,
            ts=ts,
            ok=True,
            equity=equity.equity,
            actions=[_describe(r) for r in executions],
            result=result,
            executions=executions,
            context=context,
            overhead_ms=overhead_ms,
            fallback_reason=result.audit.get("fallback_reason") if result.audit else None,
            alert=alert.payload["message"] if alert is not None else None,
            prompt_version=self.prompt_version,
            prompt_hash=prompt_hash(context.prompt_text),
        )

    def _context(self, ts: int, compose_id: str) -> tuple[ComposeContext, list[FeatureVector]]:
        fetched = _stage(
            "data",
            self._data.get_recent_candles,
            self.trading.symbols,
            self.trading.interval,
            self.trading.lookback,
        )
        # A source may return the still-forming bar (ccxt's fetch_ohlcv does): its close
        # is not known yet, so features, prices and fills must not see it.
        candles = closed_candles(fetched, ts)
        self._last_candles = last_candles(candles)
        latest = latest_closes(candles)
        if not latest:
            raise CycleFailed("data", StrategyAgentError("no closed candle yet for any symbol"))
        self._closes = latest
        quotes = _stage("data", self._snapshot) if self._quotes is not None else {}
        self._book.mark(latest, ts)
        self._due = self._funding_due(ts, quotes, latest)
        view = self._book.get_view(ts)
        features = _stage("features", self._features.compute_features, candles)
        context = ComposeContext(
            ts=ts,
            compose_id=compose_id,
            strategy_id=self.strategy_id,
            features=features,
            portfolio=view,
            digest=self._digest.digest(ts),
            prompt_text=self.prompt_text,
            market_snapshot=dict(latest),
            market_quotes=quotes,
            constraints=self._constraints,
            interval=self.trading.interval,
            feedback=self._previous_feedback(),
        )
        return context, features

    def _previous_feedback(self) -> ComposeFeedback | None:
        """The last composed plan's feedback; on a resume, read once from the store."""
        if not self._feedback_known:
            self._feedback = read_feedback(self._store, self.strategy_id)
            self._feedback_known = True
        return self._feedback

    def _fallback_alert(self, compose: HistoryRecord) -> tuple[int, HistoryRecord | None]:
        """The fallback run after this cycle, and its alert when it reaches the threshold."""
        alert_after = self.trading.fallback_alert_after
        if self._fallback_streak is None:
            self._fallback_streak = read_fallback_streak(self._store, self.strategy_id, alert_after)
        return fallback_alert(compose, self._fallback_streak, alert_after)

    def _snapshot(self) -> dict[str, dict[str, float]]:
        assert self._quotes is not None
        return self._quotes.snapshot(list(self.trading.symbols))

    def _funding_due(
        self, ts: int, quotes: dict[str, dict[str, float]], closes: dict[str, float]
    ) -> list[FundingPayment]:
        """Funding payments due on the positions held since the last cycle (paper swaps)."""
        if self._funding is None:
            return []
        book = self._book
        held = {s: (book.quantity(s), book.contract_size(s)) for s in self.trading.symbols}
        return self._funding.due(ts, quotes, held, closes)

    def _apply(self, new_fills: list[Fill]) -> tuple[list[Fill], list[TradeHistoryEntry]]:
        """Settle the funding due, then apply the fills to the ledger (the path a real
        exchange's reports take); funding first, as ``Ledger.replay`` does."""
        for payment in self._due:
            self._book.apply_funding(payment)
        fills: list[Fill] = []
        trades: list[TradeHistoryEntry] = []
        for fill in new_fills:
            applied = self._book.apply(fill, enforce=False)
            fills.append(applied.fill)
            trades.extend(applied.closed_trades)
            self._digest.update(applied.fill, applied.closed_trades)
        return fills, trades

    # -- failures --------------------------------------------------------------------------

    def _record_failure(
        self, cycle: int, ts: int, compose_id: str, failure: CycleFailed
    ) -> CycleReport:
        message = _message(failure.error)
        record = HistoryRecord(
            ts=ts,
            kind="error",
            reference_id=compose_id,
            payload={"cycle": cycle, "stage": failure.stage, "error": message},
            strategy_id=self.strategy_id,
        )
        try:
            self._store.write_cycle(self.strategy_id, [record], [], [], None)
        except Exception as store_error:  # the database itself is failing: say so, keep going
            message = f"{message} (and it could not be recorded: {_message(store_error)})"
        return CycleReport(
            cycle=cycle,
            compose_id=compose_id,
            ts=ts,
            ok=False,
            error=message,
            stage=failure.stage,
        )


def _stage(name: str, func: Any, *args: Any) -> Any:
    """Run one stage; any exception becomes ``CycleFailed(name, error)``."""
    try:
        return func(*args)
    except CycleFailed:
        raise
    except Exception as error:
        raise CycleFailed(name, error) from error


def _fills_of(executions: list[ExecutionResult], strategy_id: str) -> list[Fill]:
    return [fill_from_result(r, strategy_id) for r in executions if r.status == "filled"]


def _message(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if isinstance(error, StrategyAgentError) else f"{type(error).__name__}: {text}"


def _describe(result: ExecutionResult) -> str:
    if result.status == "filled":
        return f"{result.side} {result.filled_qty:g} {result.symbol} @ {result.avg_price:,.2f}"
    return f"{result.status} {result.side} {result.symbol}: {result.reason}"
