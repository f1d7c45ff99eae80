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
reason and a restart resumes from what is stored. A key the exchange refuses
raises ``StrategyPaused`` (stored ``paused`` with the key to check); the orders
done before it in the cycle are recorded with it.

On testnet and live the portfolio view comes from the exchange account
(``portfolio``, a ``PortfolioSource``): before the view, the account's sync
returns the fills of orders a crash left unrecorded and adjustments to what
the account holds; they are applied to the ledger and written with the cycle,
a failed one too, and the differences go into an ``account`` record.

This module imports no adapter: the concrete classes arrive through the ports
and a few small protocols below, wired by ``strategy_agent.factory``.
"""

from __future__ import annotations

import time
from typing import Any

from strategy_agent.clock import Clock
from strategy_agent.cycle_ports import (
    AccountSync,
    Book,
    CycleStore,
    Digest,
    Funding,
    PortfolioSource,
    QuoteSource,
)
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
from strategy_agent.cycle_report import (
    CycleFailed,
    CycleReport,
    StrategyHalted,
    StrategyPaused,
    describe_result,
    error_message,
    error_record,
    fills_of,
    run_stage,
)
from strategy_agent.data.interfaces import MarketDataSource
from strategy_agent.decision.interfaces import Composer
from strategy_agent.errors import (
    AuthenticationError,
    ConfigurationError,
    ExchangeKeyRefused,
    StrategyAgentError,
)
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
    PortfolioView,
    TradeHistoryEntry,
    TradingConfig,
)
from strategy_agent.portfolio.funding import FundingPayment


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
        portfolio: PortfolioSource | None = None,
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
        self._portfolio = portfolio
        # What the account's sync applied to the book this cycle, written with the cycle
        # (even a failed one, so nothing applied is applied twice).
        self._synced: tuple[list[Fill], list[TradeHistoryEntry]] = ([], [])
        self._account: HistoryRecord | None = None
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
        if self._portfolio is not None:  # an attempt interrupted after sending orders: a new id
            compose_id = self._portfolio.cycle_id(compose_id)
        started = time.perf_counter()
        self._synced, self._account = ([], []), None
        try:
            report = self._cycle(cycle, ts, compose_id, started, composer or self._composer)
        except CycleFailed as failure:
            report = self._record_failure(cycle, ts, compose_id, failure)
            if isinstance(failure.error, ExchangeKeyRefused):
                self.cycles_done = cycle
                raise StrategyPaused(str(failure.error)) from failure.error
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
        if report.stage == "execution" and report.halted_by is not None:
            raise StrategyPaused(report.halted_by)  # the results done before it are recorded
        return report

    def preview(self) -> tuple[ComposeContext, ComposeResult]:
        """Compose on the current market without executing or recording (dry run)."""
        ts = self._clock.now_ms()
        context, _ = self._context(ts, f"{self.strategy_id}-preview", None)
        return context, self._composer.compose(context)

    # -- the cycle --------------------------------------------------------------------

    def _cycle(
        self, cycle: int, ts: int, compose_id: str, started: float, composer: Composer
    ) -> CycleReport:
        context, features = self._context(ts, compose_id, cycle)
        llm_started = time.perf_counter()
        result = run_stage("compose", composer.compose, context)
        llm_ms = (time.perf_counter() - llm_started) * 1000.0
        executions, halted_by = self._execute(result)
        # every result is checked before the book moves: a malformed one fails the stage
        new_fills = run_stage("execution", fills_of, executions, self.strategy_id)
        fills, trades = self._apply(new_fills)
        fills, trades = self._synced[0] + fills, self._synced[1] + trades
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
        records += [self._account] if self._account is not None else []
        if halted_by is not None:
            records.append(
                error_record(self.strategy_id, cycle, ts, compose_id, "execution", halted_by)
            )
        if self._due:
            records.append(funding_record(compose, self._due, self._book.funding_paid))
        run_stage(
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
            ok=halted_by is None,
            error=halted_by,
            stage="execution" if halted_by is not None else None,
            halted_by=halted_by,
            equity=equity.equity,
            actions=[describe_result(r) for r in executions],
            result=result,
            executions=executions,
            context=context,
            overhead_ms=overhead_ms,
            fallback_reason=result.audit.get("fallback_reason") if result.audit else None,
            alert=alert.payload["message"] if alert is not None else None,
            prompt_version=self.prompt_version,
            prompt_hash=prompt_hash(context.prompt_text),
        )

    def _context(
        self, ts: int, compose_id: str, cycle: int | None
    ) -> tuple[ComposeContext, list[FeatureVector]]:
        """The cycle's context; ``cycle`` ``None`` (a preview) syncs nothing with the account."""
        fetched = run_stage(
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
        quotes = run_stage("data", self._snapshot) if self._quotes is not None else {}
        self._book.mark(latest, ts)
        self._due = self._funding_due(ts, quotes, latest)
        view = self._view(ts, compose_id, cycle, latest)
        features = run_stage("features", self._features.compute_features, candles)
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

    def _view(
        self, ts: int, compose_id: str, cycle: int | None, closes: dict[str, float]
    ) -> PortfolioView:
        """The ledger's view; on a real account, first apply what the account's sync says."""
        if self._portfolio is None:
            return self._book.get_view(ts)
        if cycle is not None:
            sync: AccountSync = run_stage("account", self._portfolio.sync, ts, closes, compose_id)
            for fill in sync.fills:
                applied = self._book.apply(fill, enforce=False)
                self._synced[0].append(applied.fill)
                self._synced[1].extend(applied.closed_trades)
                self._digest.update(applied.fill, applied.closed_trades)
            if sync.payload is not None:
                payload = {"cycle": cycle, **sync.payload}
                self._account = HistoryRecord(
                    ts=ts,
                    kind="account",
                    reference_id=compose_id,
                    payload=payload,
                    strategy_id=self.strategy_id,
                )
        view: PortfolioView = run_stage("account", self._portfolio.view, ts)
        return view

    def _execute(self, result: ComposeResult) -> tuple[list[ExecutionResult], str | None]:
        """The gateway's results, and the refused key's message when it stopped the batch
        (the results of the instructions done before it are kept and recorded)."""
        try:
            executions: list[ExecutionResult] = run_stage(
                "execution", self._gateway.execute, result.instructions
            )
        except CycleFailed as failure:
            done = getattr(failure.error, "results", None)
            if not isinstance(failure.error, ExchangeKeyRefused) or done is None:
                raise
            return list(done), error_message(failure.error)
        return executions, None

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
        message = error_message(failure.error)
        record = error_record(self.strategy_id, cycle, ts, compose_id, failure.stage, message)
        account = [self._account] if self._account is not None else []
        fills, trades = self._synced  # applied to the book already: written once, now
        try:
            self._store.write_cycle(self.strategy_id, [record, *account], fills, trades, None)
        except Exception as store_error:  # the database itself is failing: say so, keep going
            message = f"{message} (and it could not be recorded: {error_message(store_error)})"
        return CycleReport(
            cycle=cycle,
            compose_id=compose_id,
            ts=ts,
            ok=False,
            error=message,
            stage=failure.stage,
        )
