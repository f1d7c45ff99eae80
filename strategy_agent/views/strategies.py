"""Queries and actions of the Strategies page: cards, create, duplicate, choices.

Controls (start, pause, stop, delete) go through the ``StrategyRunner``.

Every read is bounded: index lookups per card (latest equity point, cycle,
failed-cycle and trade counts, the last ``FALLBACK_WINDOW`` composed cycles'
fallbacks and the latest alert, its lease) and a thinned equity series for its
sparkline, all through the history package (``trading_history.page_queries``,
``.fallbacks``, ``.leases``).

A strategy whose live lease belongs to another process (the command line,
another app process) has ``run_by`` set: the card says who runs it and the page
disables the controls that would be refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import SecretStr

from strategy_agent.factory import SIMULATED
from strategy_agent.leasing import lease_stale_s, parse_owner, since_text
from strategy_agent.models import UserRequest
from strategy_agent.trading_history import metrics, page_queries
from strategy_agent.trading_history.fallbacks import (
    FallbackAlert,
    FallbackStats,
    fallback_stats,
    recent_alerts,
)
from strategy_agent.trading_history.leases import lease_holder, lease_is_live
from strategy_agent.trading_history.runs import run_marks
from strategy_agent.views.backtest_runs import backtest_ids, run_option_label

if TYPE_CHECKING:
    from strategy_agent.runner import StrategyRunner
    from strategy_agent.trading_history.store import SqliteStore, StrategyRow

SPARKLINE_POINTS = 60
FALLBACK_WINDOW = 10  # the card counts fallbacks among this many last composed cycles
REASON_CHARS = 300
MARKDOWN_SPECIAL = frozenset("\\`*_[]<>$|~#")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class RunBy:
    """Who runs a strategy from elsewhere, for its card.

    ``text``: ``Run by the command line (pid 1234 on vm) · since 14:03 UTC``, or
    for a short activity ``A cycle of this strategy is running right now (Step
    in another app process, pid 1234 on vm)``; ``advice``: what to do instead,
    ``pause or stop it where it runs (Ctrl+C in its terminal)``; ``short``: it
    ends on its own within a cycle.
    """

    text: str
    advice: str
    short: bool


@dataclass
class StrategyCard:
    """What one row of the Strategies page shows."""

    strategy_id: str
    name: str
    status: str
    status_reason: str | None
    mode: str
    model: str
    exchange: str
    market_type: str
    symbols: list[str]
    interval: str
    initial_capital: float
    equity: float | None
    pnl_pct: float | None
    cycles: int  # every cycle run, failed ones included
    trades: int
    failed_cycles: int = 0
    sparkline: list[float] = field(default_factory=list)
    running: bool = False
    fallback: FallbackStats | None = None
    alert: FallbackAlert | None = None  # the latest alert, when it falls in the window
    api_base: str | None = None
    run_by: RunBy | None = None  # a live lease of another process


def model_label(provider: str | None, model_id: str | None) -> str:
    """``builtin/ema_crossover``, ``openai/gpt-4o-mini``."""
    return f"{provider or '?'}/{model_id or '?'}"


def strategy_cards(store: SqliteStore, running: set[str] | None = None) -> list[StrategyCard]:
    """One card per strategy of the trader, newest first, each with a short equity sparkline.

    Backtest runs have no card (``views.backtest_runs`` lists them). Per
    strategy: its latest equity point, cycle and trade counts and a sampled
    curve, all index lookups (no scan of the whole equity table).
    """
    running = running or set()
    runs = backtest_ids(store)
    return [
        _card(store, row, row.id in running)
        for row in reversed(store.list_strategies())
        if row.id not in runs
    ]


def _card(store: SqliteStore, row: StrategyRow, running: bool) -> StrategyCard:
    request = row.request
    capital = request.trading.initial_capital
    latest = store.latest_equity(row.id)
    alert_after = request.trading.fallback_alert_after
    fallback = fallback_stats(store, row.id, FALLBACK_WINDOW, streak_window=alert_after)
    alerts = recent_alerts(store, row.id, limit=1) if fallback.fallbacks else []
    return StrategyCard(
        strategy_id=row.id,
        name=request.trading.strategy_name,
        status=row.status,
        status_reason=row.status_reason,
        mode=request.exchange.trading_mode,
        model=model_label(request.llm.provider, request.llm.model_id),
        exchange=request.exchange.exchange_id,
        market_type=request.exchange.market_type,
        symbols=list(request.trading.symbols),
        interval=request.trading.interval,
        initial_capital=capital,
        equity=latest.equity if latest else capital,
        pnl_pct=metrics.return_pct(latest.equity, capital) if latest else None,
        cycles=store.cycle_count(row.id),
        trades=page_queries.trade_count(store, row.id),
        failed_cycles=store.failed_cycle_count(row.id),
        sparkline=[
            equity for _, equity in page_queries.sampled_equity(store, row.id, SPARKLINE_POINTS)
        ],
        running=running,
        fallback=fallback if fallback.fallbacks else None,
        alert=next((a for a in alerts if _shown(a, fallback, alert_after)), None),
        api_base=request.llm.api_base,
        run_by=run_by(store, row.id, now_ms()),
    )


def run_by(store: SqliteStore, strategy_id: str, now: int) -> RunBy | None:
    """Who runs ``strategy_id`` from another process now (its live lease); None when
    nobody does, or when it is this app's own runner (its card shows that already)."""
    lease = lease_holder(store, strategy_id)
    if lease is None or not lease_is_live(lease, now, int(lease_stale_s() * 1000)):
        return None
    owner = parse_owner(lease.owner, lease.pid, lease.host)
    if owner.is_this_process:
        return None
    where = f"pid {owner.pid} on {owner.host}" if owner.role is not None else None
    if owner.short:
        doing = owner.doing
        context = f"{owner.activity} in {owner.who()}" + (f", {where}" if where else "")
        return RunBy(
            text=f"{doing[:1].upper()}{doing[1:]} ({context})",
            advice="it ends on its own: try again in a few seconds",
            short=True,
        )
    process = f" ({where})" if where else ""
    hint = {"cli": " (Ctrl+C in its terminal)", "app": " (on that app's Strategies page)"}
    return RunBy(
        text=f"Run by {owner.who()}{process} · since {since_text(lease.acquired_ts, now)}",
        advice=f"pause or stop it where it runs{hint.get(owner.role or '', '')}",
        short=False,
    )


def _shown(alert: FallbackAlert, stats: FallbackStats, alert_after: int) -> bool:
    """The latest alert is shown while it is in the window, or while the run of
    fallbacks that raised it goes on (a run that reached the threshold has one)."""
    if stats.ongoing and stats.streak >= alert_after:
        return True
    oldest = stats.oldest_cycle
    return alert.cycle is not None and oldest is not None and alert.cycle >= oldest


def cycles_text(card: StrategyCard) -> str:
    """``12 cycles, 2 failed`` (``12 cycles`` when none failed): failed cycles count apart."""
    text = f"{card.cycles:,} cycle{'' if card.cycles == 1 else 's'}"
    return f"{text}, {card.failed_cycles:,} failed" if card.failed_cycles else text


def fallback_headline(stats: FallbackStats) -> str:
    """``LLM unreachable`` (no reply came) or ``LLM replies unusable``."""
    return "LLM unreachable" if stats.no_reply else "LLM replies unusable"


@dataclass(frozen=True)
class FallbackNote:
    """What a card says about its recent fallbacks: ``headline: summary (reason)``.

    ``headline`` is ``LLM unreachable`` / ``LLM replies unusable`` while the
    latest cycle fell back (``ongoing``), ``LLM answering again since cycle #8``
    after; ``reason`` is the latest fallback's (cut to ``REASON_CHARS``);
    ``api_base`` where the app tried to reach the model, when no reply came.
    """

    headline: str
    summary: str
    reason: str
    ongoing: bool
    api_base: str | None = None

    @property
    def text(self) -> str:
        where = f"; api_base {self.api_base}" if self.api_base else ""
        last = "" if self.ongoing else "last reason: "
        return f"{self.headline}: {self.summary} ({last}{self.reason}{where})"


def fallback_note(card: StrategyCard) -> FallbackNote | None:
    """The card's fallback note; None when its last ``FALLBACK_WINDOW`` cycles hold none."""
    stats = card.fallback
    if stats is None or not stats.fallbacks:
        return None
    rule = stats.fallback_policy or "no plan"
    summary = f"{stats.fallbacks} of the last {stats.window} cycles fell back to {rule}"
    if stats.fallbacks == stats.window > 1:
        summary = f"all of the last {stats.window} cycles fell back to {rule}"
    elif stats.ongoing and 1 < stats.streak < stats.fallbacks:
        summary += f", the last {stats.streak} in a row"
    elif stats.ongoing and stats.streak == stats.fallbacks > 1:
        summary += ", all in a row"
    headline = (
        fallback_headline(stats)
        if stats.ongoing
        else f"LLM answering again since cycle #{stats.recovered_cycle}"
    )
    return FallbackNote(
        headline=headline,
        summary=summary,
        reason=_short(stats.last_reason or "the policy failed"),
        ongoing=stats.ongoing,
        api_base=card.api_base if stats.no_reply else None,
    )


def fallback_text(card: StrategyCard) -> str | None:
    """The fallback note as one line: ``LLM unreachable: 5 of the last 10 cycles fell
    back to noop, the last 3 in a row (<reason>; api_base http://...)``."""
    note = fallback_note(card)
    return None if note is None else note.text


def fallback_summary(stats: FallbackStats) -> str:
    """The ongoing run of fallbacks: ``the last 3 cycles fell back to noop (5 of the last
    10)``, or ``all of the last 10 cycles fell back to noop``."""
    rule = stats.fallback_policy or "no plan"
    if stats.streak >= stats.window > 1:
        return f"all of the last {stats.window} cycles fell back to {rule}"
    run = "the last cycle" if stats.streak == 1 else f"the last {stats.streak} cycles"
    return f"{run} fell back to {rule} ({stats.fallbacks} of the last {stats.window})"


def alert_text(alert: FallbackAlert) -> str:
    """``Alert at cycle #5: 3 cycles in a row fell back (#3 to #5)``."""
    span = ""
    if (
        alert.since_cycle is not None
        and alert.cycle is not None
        and alert.cycle > alert.since_cycle
    ):
        span = f" (#{alert.since_cycle} to #{alert.cycle})"
    return (
        f"Alert at cycle #{alert.cycle if alert.cycle is not None else '?'}: "
        f"{alert.consecutive_fallbacks} cycles in a row fell back{span}"
    )


def escape_markdown(text: str) -> str:
    """``text`` to show as written in markdown (an error message's ``$`` is no LaTeX)."""
    return "".join(f"\\{c}" if c in MARKDOWN_SPECIAL else c for c in text)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def strategy_options(store: SqliteStore, include_runs: bool = True) -> list[tuple[str, str]]:
    """(id, label) for pickers: the trader's strategies newest first (``name · status · id``),
    then, with ``include_runs``, backtest runs (``backtest · batch … · config · status ·
    id``), the newest batch first, each batch's runs in the order stored. Two small
    queries, no config parsed."""
    marks = run_marks(store)
    mine: list[tuple[str, str]] = []
    batches: dict[str, list[tuple[str, str]]] = {}  # newest batch first, its runs newest first
    for sid, name, status in page_queries.strategy_choices(store):
        mark = marks.get(sid)
        if mark is None or mark.kind != "backtest":
            mine.append((sid, f"{name} · {status} · {sid}"))
        elif include_runs:
            batch = batches.setdefault(mark.batch_id or sid, [])
            batch.append((sid, run_option_label(sid, name, mark)))
    return mine + [option for runs in batches.values() for option in reversed(runs)]


def create_strategy(
    store: SqliteStore,
    runner: StrategyRunner,
    request: UserRequest,
    session_key: SecretStr | None = None,
) -> str:
    """Store a new strategy (status ``created``); a typed key stays in this process only."""
    strategy_id = store.create_strategy(request, now_ms())
    if session_key is not None:
        runner.set_session_key(strategy_id, session_key)
    return strategy_id


def duplicate_strategy(store: SqliteStore, strategy_id: str) -> str:
    """A new strategy with the same configuration, named "<name> (copy)", no history."""
    request = store.get_strategy(strategy_id).request
    name = f"{request.trading.strategy_name} (copy)"[:80]
    trading = request.trading.model_copy(update={"strategy_name": name})
    return store.create_strategy(request.model_copy(update={"trading": trading}), now_ms())


def symbol_choices(exchange_id: str, loaded: list[str] | None = None) -> list[str]:
    """Symbols the form offers: the exchange's markets once loaded, the simulated list else."""
    if loaded:
        return sorted(loaded)
    if exchange_id == SIMULATED:
        from strategy_agent.data.simulated_market import DEFAULT_SYMBOLS

        return list(DEFAULT_SYMBOLS)
    return []


def builtin_models() -> list[str]:
    """Names of the built-in rules (the model ids of provider ``builtin``)."""
    from strategy_agent.decision.builtin_policies import BUILTIN_POLICIES

    return sorted(BUILTIN_POLICIES)


def builtin_description(name: str) -> str:
    """The first line of a built-in rule's docstring (what it does, in one sentence)."""
    from strategy_agent.decision.builtin_policies import BUILTIN_POLICIES

    policy = BUILTIN_POLICIES.get(name)
    doc = (policy.__doc__ or "").strip() if policy else ""
    return doc.splitlines()[0] if doc else ""


def next_decision_text(due_ms: int, now: int, interval: str) -> str:
    """``next decision 11:00:05 UTC (in 42 min), after the 1h candle closes`` for a live card."""
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(due_ms / 1000, tz=UTC).strftime("%H:%M:%S UTC")
    wait_s = max(0, (due_ms - now) // 1000)
    if wait_s < 60:
        wait = "due now" if wait_s < 1 else f"in {wait_s} s"
    elif wait_s < 3600:
        wait = f"in {wait_s // 60} min"
    else:
        wait = f"in {wait_s // 3600} h {wait_s % 3600 // 60} min"
    return f"next decision {when} ({wait}), after the {interval} candle closes"
