"""Queries of the Portfolio page: metrics, equity curve, positions and candles with fills.

Positions come from the ledger (the one owner of positions), rebuilt from the
strategy's fills and marked at the prices of its last cycle. Candles are the
ones its cycles recorded (``trading_history.page_queries.recorded_candles``):
the page never rebuilds a market. Fills shown on a chart are read for the
charted window only. Return and exposure come from ``trading_history.metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from strategy_agent.data.market_rules import RecordedContractSizes
from strategy_agent.models import UserRequest, interval_ms
from strategy_agent.trading_history import metrics, page_queries
from strategy_agent.views.leaderboard import benchmark

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

EQUITY_POINTS = 1500
CHART_CANDLES = 200


@dataclass
class PortfolioOverview:
    """Everything the top of the Portfolio page shows."""

    strategy_id: str
    name: str
    request: UserRequest
    status: str
    status_reason: str | None
    initial_capital: float
    cash: float
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float
    gross_exposure: float
    net_exposure: float
    return_pct: float | None
    last_ts: int | None
    equity_curve: pd.DataFrame
    positions: pd.DataFrame = field(default_factory=pd.DataFrame)
    benchmark: pd.DataFrame | None = None  # buy-and-hold of its symbols (ts, value: start 100)

    @property
    def started(self) -> bool:
        return self.last_ts is not None

    @property
    def exposure_pct(self) -> float | None:
        """Gross exposure in percent of equity; ``None`` when equity <= 0 (undefined)."""
        return metrics.exposure_pct(self.gross_exposure, self.equity)

    @property
    def blown_up(self) -> bool:
        """Equity at or below zero: the account lost all of its capital (or more)."""
        return self.started and self.equity <= 0


def overview(store: SqliteStore, strategy_id: str) -> PortfolioOverview:
    """Metrics, thinned equity curve and marked positions of one strategy."""
    row = store.get_strategy(strategy_id)
    request = row.request
    capital = request.trading.initial_capital
    latest = store.latest_equity(strategy_id)
    curve = pd.DataFrame(
        [
            {"ts": p.ts, "equity": p.equity}
            for p in store.equity_series(strategy_id, max_points=EQUITY_POINTS)
        ],
        columns=["ts", "equity"],
    )
    return PortfolioOverview(
        strategy_id=strategy_id,
        name=row.name,
        request=request,
        status=row.status,
        status_reason=row.status_reason,
        initial_capital=capital,
        cash=latest.cash if latest else capital,
        equity=latest.equity if latest else capital,
        realized_pnl=latest.realized_pnl if latest else 0.0,
        unrealized_pnl=latest.unrealized_pnl if latest else 0.0,
        fees_paid=latest.fees_paid if latest else 0.0,
        gross_exposure=latest.gross_exposure if latest else 0.0,
        net_exposure=latest.net_exposure if latest else 0.0,
        return_pct=metrics.return_pct(latest.equity if latest else capital, capital),
        last_ts=latest.ts if latest else None,
        equity_curve=curve,
        positions=positions_table(store, strategy_id, request, latest.ts if latest else None),
        benchmark=benchmark(store, row),
    )


def last_prices(store: SqliteStore, strategy_id: str) -> dict[str, float]:
    """Prices of the last composed cycle (the marks the ledger used)."""
    records = store.records(strategy_id, kind="compose", limit=1)
    if not records:
        return {}
    prices = records[0].payload.get("prices") or {}
    return {str(k): float(v) for k, v in prices.items()}


def recorded_contract_sizes(store: SqliteStore, strategy_id: str) -> dict[str, float]:
    """Contract sizes other than 1 the last composed cycle recorded (``{symbol: size}``)."""
    records = store.records(strategy_id, kind="compose", limit=1)
    sizes = records[0].payload.get("contract_sizes") if records else None
    return {str(k): float(v) for k, v in (sizes or {}).items()}


def dust_symbols(store: SqliteStore, strategy_id: str) -> set[str]:
    """Symbols the last composed cycle saw as dust (below the exchange's minimum order size)."""
    records = store.records(strategy_id, kind="compose", limit=1)
    return {str(s) for s in records[0].payload.get("dust") or []} if records else set()


POSITION_COLUMNS = [
    "Symbol",
    "Side",
    "Quantity",
    "Entry (USDT)",
    "Mark (USDT)",
    "Notional (USDT)",
    "Unrealized P&L (USDT)",
    "Unrealized P&L (%)",
    "Holding time",
    "Note",
]
DUST_NOTE = "dust: below the minimum order size"


def positions_table(
    store: SqliteStore, strategy_id: str, request: UserRequest, now_ts: int | None
) -> pd.DataFrame:
    """Open positions from the replayed ledger, marked at the last cycle's prices.

    ``Note`` says "dust" for a leftover below the exchange's minimum order size
    (testnet and live: its close is not proposed again).
    """
    from strategy_agent.portfolio.ledger import Ledger
    from strategy_agent.views.format import duration

    if now_ts is None:
        return pd.DataFrame(columns=POSITION_COLUMNS)
    ledger = Ledger.replay(
        store.load_fills(strategy_id),
        initial_capital=request.trading.initial_capital,
        market_type=request.exchange.market_type,
        max_leverage=request.trading.max_leverage,
        strategy_id=strategy_id,
        rules=RecordedContractSizes(recorded_contract_sizes(store, strategy_id)),
    )
    prices = last_prices(store, strategy_id)
    if prices:
        ledger.mark({s: p for s, p in prices.items() if s in ledger.positions}, now_ts)
    snapshots = ledger.get_view(now_ts).positions  # the ledger's own P&L % (one owner)
    dust = dust_symbols(store, strategy_id)
    rows: list[dict[str, Any]] = []
    for symbol, position in sorted(ledger.positions.items()):
        rows.append(
            {
                "Symbol": symbol,
                "Side": position.trade_type,
                "Quantity": abs(position.quantity),
                "Entry (USDT)": position.avg_price,
                "Mark (USDT)": position.mark_price,
                "Notional (USDT)": abs(position.notional),
                "Unrealized P&L (USDT)": position.unrealized_pnl,
                "Unrealized P&L (%)": snapshots[symbol].pnl_pct,
                "Holding time": duration(now_ts - position.entry_ts),
                "Note": DUST_NOTE if symbol in dust else None,
            }
        )
    return pd.DataFrame(rows, columns=POSITION_COLUMNS)


FILL_COLUMNS = ["ts", "side", "price", "quantity"]


@dataclass
class SymbolChart:
    symbol: str
    candles: pd.DataFrame
    fills: pd.DataFrame
    interval_ms: int


def symbol_chart(
    store: SqliteStore, strategy_id: str, symbol: str, bars: int = CHART_CANDLES
) -> SymbolChart:
    """The last ``bars`` candles the strategy's cycles recorded, with its fills in that window.

    ``candles``: ts (open time, epoch ms), open, high, low, close, volume;
    ``fills``: ts, side, price, quantity. Empty before the first recorded candle.
    """
    request = store.get_strategy(strategy_id).request
    step = interval_ms(request.trading.interval)
    candles = pd.DataFrame(
        page_queries.recorded_candles(store, strategy_id, symbol, bars),
        columns=list(page_queries.CANDLE_FIELDS),
    )
    if candles.empty:
        return SymbolChart(symbol, candles, pd.DataFrame(columns=FILL_COLUMNS), step)
    candles["ts"] = candles["ts"].astype("int64")
    first_ts = int(candles["ts"].iloc[0])
    fills = pd.DataFrame(
        page_queries.fills_after(store, strategy_id, symbol, first_ts), columns=FILL_COLUMNS
    )
    return SymbolChart(symbol, candles, fills, step)
