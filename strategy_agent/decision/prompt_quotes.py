"""The exchange's snapshot in the prompt: last, bid, ask, 24h change, mark price, funding.

A separate section after the market table, only on a real market (the
simulated market and replays have no snapshot, so their prompt is unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from strategy_agent.decision.prompt_numbers import MISSING, fixed, format_ts, num, table

# The exchange's snapshot: column name, key in ``market_quotes``, how a value is written.
_QUOTE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("last", "last"),
    ("bid", "bid"),
    ("ask", "ask"),
    ("24h%", "change_24h_pct"),
    ("mark", "mark_price"),
    ("funding%", "funding_rate"),
    ("next_funding", "next_funding_ts"),
)
_QUOTE_PRICE_DIGITS = 7  # enough to tell the bid from the ask at BTC prices


def render_quotes(quotes: Mapping[str, Mapping[str, float]], now_ms: int | None = None) -> str:
    """The exchange's snapshot now, one row per symbol (only the columns it gave).

    Prices in the quote currency, ``24h%`` in percent, ``funding%`` the rate per
    funding period in percent (paid by longs when positive), ``next_funding`` the
    next funding time (``HH:MM`` UTC when on ``now_ms``'s day). Empty when there
    is no snapshot (the simulated market, replays).
    """
    if not quotes:
        return ""
    present = {key for quote in quotes.values() for key in quote}
    columns = [(name, key) for name, key in _QUOTE_COLUMNS if key in present]
    if not columns:
        return ""
    rows = []
    for symbol in sorted(quotes):
        quote = quotes[symbol]
        rows.append([symbol, *(_quote_cell(key, quote.get(key), now_ms) for _, key in columns)])
    return "quotes (exchange now):\n" + table(["sym", *(name for name, _ in columns)], rows)


def _quote_cell(key: str, value: float | None, now_ms: int | None) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    if key == "change_24h_pct":
        return fixed(value, 2, "+")
    if key == "funding_rate":
        return fixed(value * 100, 4, "+")
    if key == "next_funding_ts":
        when = format_ts(int(value))
        return when[11:16] if now_ms is not None and when[:10] == format_ts(now_ms)[:10] else when
    return num(value, _QUOTE_PRICE_DIGITS)
