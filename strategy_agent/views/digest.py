"""Queries of the Digest page: the per-instrument ``TradeDigest`` and closed trades, paged.

The digest is rebuilt by ``trading_history.digest`` (its one owner) from the
strategy's fills and closed trades; the trades list is paged in SQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from strategy_agent.trading_history import page_queries
from strategy_agent.trading_history.digest import rebuild_digest
from strategy_agent.trading_history.metrics import net_pnl

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

DIGEST_COLUMNS = [
    "Symbol",
    "Closed trades",
    "Net realized P&L (USDT)",
    "Win rate (%)",
    "Avg holding (h)",
    "Avg entry (USDT)",
    "Max drawdown (USDT)",
    "Recent score (%)",
    "Last trade",
]
TRADE_COLUMNS = [
    "Symbol",
    "Type",
    "Quantity",
    "Entry",
    "Exit",
    "Entry (USDT)",
    "Exit (USDT)",
    "Net P&L (USDT)",
    "Net P&L (%)",
    "Fees (USDT)",
    "Holding (h)",
]


def digest_table(store: SqliteStore, strategy_id: str) -> pd.DataFrame:
    """One row per instrument the strategy traded."""
    last_ts = store.last_cycle_ts(strategy_id)
    if last_ts is None:
        return pd.DataFrame(columns=DIGEST_COLUMNS)
    digest = rebuild_digest(store.load_fills(strategy_id), store.load_trades(strategy_id), last_ts)
    rows = []
    for symbol, entry in sorted(digest.by_instrument.items()):
        rows.append(
            {
                "Symbol": symbol,
                "Closed trades": entry.trade_count,
                "Net realized P&L (USDT)": entry.realized_pnl,
                "Win rate (%)": None if entry.win_rate is None else entry.win_rate * 100.0,
                "Avg holding (h)": None
                if entry.avg_holding_ms is None
                else entry.avg_holding_ms / 3_600_000,
                "Avg entry (USDT)": entry.avg_entry_price,
                "Max drawdown (USDT)": entry.max_drawdown,
                "Recent score (%)": entry.recent_performance_score,
                "Last trade": None
                if entry.last_trade_ts is None
                else pd.Timestamp(entry.last_trade_ts, unit="ms", tz="UTC"),
            }
        )
    return pd.DataFrame(rows, columns=DIGEST_COLUMNS)


@dataclass
class TradesPage:
    rows: pd.DataFrame
    total: int
    page: int
    pages: int


def closed_trades(
    store: SqliteStore, strategy_id: str, page: int = 1, page_size: int = 50
) -> TradesPage:
    """Closed round trips, newest exit first, one page at a time."""
    total = page_queries.trade_count(store, strategy_id)
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 1), pages)
    rows = page_queries.trades_page(store, strategy_id, page_size, (page - 1) * page_size)
    frame = pd.DataFrame(
        [
            {
                "Symbol": r["symbol"],
                "Type": r["type"],
                "Quantity": r["quantity"],
                "Entry": _time(r["entry_ts"]),
                "Exit": _time(r["exit_ts"]),
                "Entry (USDT)": r["entry_price"],
                "Exit (USDT)": r["exit_price"],
                "Net P&L (USDT)": net_pnl(r["realized_pnl"], r["fees"]),
                "Net P&L (%)": r["realized_pnl_pct"],
                "Fees (USDT)": r["fees"],
                "Holding (h)": None if r["holding_ms"] is None else r["holding_ms"] / 3_600_000,
            }
            for r in rows
        ],
        columns=TRADE_COLUMNS,
    )
    return TradesPage(rows=frame, total=total, page=page, pages=pages)


def _time(ts: int | None) -> pd.Timestamp | None:
    return None if ts is None else pd.Timestamp(ts, unit="ms", tz="UTC")
