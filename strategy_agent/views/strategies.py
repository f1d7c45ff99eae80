"""Queries and actions of the Strategies page: cards, create, duplicate, choices.

Controls (start, pause, stop, delete) go through the ``StrategyRunner``.

Every read is bounded: index lookups per card (latest equity point, cycle,
failed-cycle and trade counts) and a thinned equity series for its sparkline,
all through the history package (``trading_history.page_queries``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import SecretStr

from strategy_agent.factory import SIMULATED
from strategy_agent.models import UserRequest
from strategy_agent.trading_history import metrics, page_queries

if TYPE_CHECKING:
    from strategy_agent.runner import StrategyRunner
    from strategy_agent.trading_history.store import SqliteStore, StrategyRow

SPARKLINE_POINTS = 60


def now_ms() -> int:
    return int(time.time() * 1000)


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


def model_label(provider: str | None, model_id: str | None) -> str:
    """``builtin/ema_crossover``, ``openai/gpt-4o-mini``."""
    return f"{provider or '?'}/{model_id or '?'}"


def strategy_cards(store: SqliteStore, running: set[str] | None = None) -> list[StrategyCard]:
    """One card per strategy, newest first, each with a short equity sparkline.

    Per strategy: its latest equity point, cycle and trade counts and a sampled
    curve, all index lookups (no scan of the whole equity table).
    """
    running = running or set()
    return [_card(store, row, row.id in running) for row in reversed(store.list_strategies())]


def _card(store: SqliteStore, row: StrategyRow, running: bool) -> StrategyCard:
    request = row.request
    capital = request.trading.initial_capital
    latest = store.latest_equity(row.id)
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
    )


def cycles_text(card: StrategyCard) -> str:
    """``12 cycles, 2 failed`` (``12 cycles`` when none failed): failed cycles count apart."""
    text = f"{card.cycles:,} cycle{'' if card.cycles == 1 else 's'}"
    return f"{text}, {card.failed_cycles:,} failed" if card.failed_cycles else text


def strategy_options(store: SqliteStore) -> list[tuple[str, str]]:
    """(id, "name · status") for pickers, newest first (one small query)."""
    return [
        (sid, f"{name} · {status} · {sid}")
        for sid, name, status in page_queries.strategy_choices(store)
    ]


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
