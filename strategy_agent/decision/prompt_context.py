"""Render a ``ComposeContext`` as the user message: compact, complete, deterministic.

Dense ``|``-separated tables (one header, one row per instrument) cost far fewer
tokens than a JSON dump of the same numbers. Nothing cycle-unique (compose_id,
strategy_id) is written, so a replay of the same data gives the same prompt and
the response cache can answer it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from math import isfinite as _isfinite
from typing import Any

from strategy_agent.data.market_rules import notional
from strategy_agent.decision.prompt_numbers import (
    MISSING,
    finite_list,
    fixed_writer,
    format_ts,
    money,
    num,
    num_writer,
    ratio,
    remember,
    signed_money,
    signed_pct,
    signed_percent,
    table,
)
from strategy_agent.decision.system_prompt import PromptLimits, format_duration
from strategy_agent.features.technical_indicators import FEATURE_NAMES
from strategy_agent.models import (
    ComposeContext,
    ComposeFeedback,
    FeatureVector,
    GuardrailOutcome,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
)

# Known features in reading order; returns and volatility are fractions, shown in %.
# Unknown features follow in name order. Column names are the feature names.
FEATURE_ORDER: tuple[str, ...] = FEATURE_NAMES
_PERCENT_FEATURES = frozenset({"ret_1", "ret_4", "ret_24", "realized_vol_24"})
_TWO_DECIMALS = frozenset({"bb_pct_b", "volume_z_20"})
_PRICE_DIGITS = 5
_OSCILLATOR_DIGITS = 3
_SERIES_DIGITS = 4  # the series shows the shape; the table has the exact latest values
# The previous plan's feedback: at most this many item lines, each reason cut to this length.
MAX_FEEDBACK_ITEMS = 6
MAX_FEEDBACK_CHARS = 80
_ITEM_PREFIX = re.compile(r"^[a-z]+ item: ")  # the parser's "unparseable item: ", "unclear item: "
# The series closes as written: a close stays in the window for many cycles (0.0 is
# never stored: -0.0 is the same key but is written "-0").
_CLOSE_MEMO: dict[float, str] = {}
# _market_columns's answers, by the features' names (a tuple of each vector's keys)
_COLUMNS_MEMO: dict[tuple[tuple[str, ...], ...], tuple[str, Any]] = {}


def render_context(context: ComposeContext) -> str:
    """The user message for one decision."""
    from strategy_agent.decision.prompt_quotes import render_quotes

    limits = PromptLimits.from_constraints(context.constraints)
    features = sorted(context.features, key=lambda f: f.instrument.symbol)
    sections = [
        f"time: {format_ts(context.ts)} (interval {context.interval})",
        render_account(context.portfolio, limits),
        render_market(features, context.market_snapshot, context.portfolio, limits, context.ts),
        render_quotes(context.market_quotes, context.ts),
        render_series(features),
        render_positions(context.portfolio, context.ts, limits),
        render_digest(context.digest, context.ts),
        render_feedback(context.feedback),
        "strategy:\n" + (context.prompt_text.strip() or "(no instructions: keep risk low)"),
    ]
    return "\n\n".join(section for section in sections if section)


# --- sections -------------------------------------------------------------------------


def render_account(view: PortfolioView, limits: PromptLimits | None = None) -> str:
    """Money in the quote currency, as the ledger counts it (``contracts x contract size x price``)."""
    sizes = limits.contract_sizes if limits is not None else {}
    equity = _equity(view, sizes)
    parts = [f"equity {money(equity)}", f"cash {money(view.cash)}"]
    if view.initial_capital:
        parts.append(f"return {signed_pct(equity / view.initial_capital - 1)}")
    parts.append(f"realized {signed_money(view.realized_pnl)}")
    if view.total_unrealized_pnl is not None:
        parts.append(f"unrealized {signed_money(view.total_unrealized_pnl)}")
    parts.append(f"fees {money(view.fees_paid)}")
    if view.funding_paid:  # perpetual swaps: net funding so far
        paid = "paid" if view.funding_paid > 0 else "earned"
        parts.append(f"funding {paid} {money(abs(view.funding_paid))}")
    gross = view.gross_exposure
    if gross is None:
        gross = sum(abs(_notional(p, sizes)) for p in view.positions.values())
    net = view.net_exposure
    if net is None:
        net = sum(_notional(p, sizes) for p in view.positions.values())
    parts.append(f"gross {money(gross)} ({ratio(gross, equity)})")
    parts.append(f"net {signed_money(net)} ({ratio(net, equity)})")
    return "account: " + ", ".join(parts)


def render_market(
    features: Sequence[FeatureVector],
    prices: Mapping[str, float],
    view: PortfolioView,
    limits: PromptLimits,
    now_ms: int | None = None,
) -> str:
    """One row per instrument: its features and ``max_qty`` (contracts).

    The candle's open time is written as ``HH:MM`` when it is on ``now_ms``'s day.
    """
    if not features:
        return "market: no features this cycle (data missing): prefer noop"
    header, formats = _market_columns(features)
    lines = [header]
    equity = _equity(view, limits.contract_sizes)
    for vector in features:
        symbol = vector.instrument.symbol
        values = vector.values
        cells = [
            MISSING if (value := values.get(name)) is None or not _isfinite(value) else fmt(value)
            for name, fmt in formats
        ]
        price = prices.get(symbol) or values.get("close")
        max_qty = _max_qty_cell(symbol, price, equity, limits)
        lines.append("|".join([symbol, *cells, max_qty]))
    candle_times = {ts for ts in (_candle_ts(vector) for vector in features) if ts is not None}
    as_of = ""
    if len(candle_times) == 1:
        opened = format_ts(min(candle_times))
        if now_ms is not None and opened[:10] == format_ts(now_ms)[:10]:
            opened = opened[11:16]
        as_of = f" (candle open {opened})"
    return f"market{as_of}:\n" + "\n".join(lines)


def _market_columns(
    features: Sequence[FeatureVector],
) -> tuple[str, tuple[tuple[str, Callable[[float], str]], ...]]:
    """The market table's header line and each feature column's writer (remembered by
    the features' names: they are the same every cycle)."""
    key = tuple(tuple(vector.values) for vector in features)
    columns = _COLUMNS_MEMO.get(key)
    if columns is None:
        names = _feature_names(features)
        header = "|".join(["sym", *names, "max_qty"])
        columns = header, tuple((name, _cell_format(name)) for name in names)
        if len(_COLUMNS_MEMO) >= 64:
            _COLUMNS_MEMO.clear()
        _COLUMNS_MEMO[key] = columns
    return columns


def render_series(features: Sequence[FeatureVector]) -> str:
    lines = []
    for vector in features:
        series = (vector.meta or {}).get("series")
        if not isinstance(series, Mapping):
            continue
        parts = []
        closes = finite_list(series.get("close"))
        if closes:  # each close stays in the window for many cycles: remembered
            memo = _CLOSE_MEMO
            texts = [memo.get(v) or _close_num(v) for v in closes]
            parts.append("close " + " ".join(texts))
        rsi = finite_list(series.get("rsi_14"))
        if rsi:  # recomputed in each window: new values every cycle
            # 10 <= v < 100 has 2 digits before the point: num(v, 2) is format(v, ".0f"),
            # the same digits as round(v) (both round the exact value half to even)
            texts = [str(round(v)) if 10.0 <= v < 100.0 else _rsi_point(v) for v in rsi]
            parts.append("rsi " + " ".join(texts))
        if parts:
            lines.append(f"{vector.instrument.symbol}: " + " | ".join(parts))
    return "series (oldest first):\n" + "\n".join(lines) if lines else ""


def render_positions(view: PortfolioView, now_ms: int, limits: PromptLimits | None = None) -> str:
    """Open positions: quantity in contracts, prices per base unit, P&L in the quote currency."""
    sizes = limits.contract_sizes if limits is not None else {}
    open_positions = [p for p in view.positions.values() if p.quantity != 0]
    if not open_positions:
        return "positions: none (all flat)"
    header = ["sym", "qty", "entry", "mark", "upnl", "upnl%", "held"]
    rows = []
    for position in sorted(open_positions, key=lambda p: p.instrument.symbol):
        entry, mark = position.avg_price, position.mark_price
        size = sizes.get(position.instrument.symbol, 1.0)
        upnl = position.unrealized_pnl
        if upnl is None and entry is not None and mark is not None:
            upnl = notional(position.quantity, mark - entry, size)
        upnl_pct = position.pnl_pct  # already in percent (the ledger's)
        if upnl_pct is None and upnl is not None and entry:
            upnl_pct = upnl / notional(abs(position.quantity), entry, size) * 100
        held = format_duration(now_ms - position.entry_ts) if position.entry_ts else MISSING
        rows.append(
            [
                position.instrument.symbol,
                num(position.quantity, 8),
                _opt(entry),
                _opt(mark),
                signed_money(upnl) if upnl is not None else MISSING,
                signed_percent(upnl_pct) if upnl_pct is not None else MISSING,
                held,
            ]
        )
    return "positions:\n" + table(header, rows)


def render_digest(digest: TradeDigest, now_ms: int) -> str:
    entries = [e for e in digest.by_instrument.values() if e.trade_count > 0 or e.last_loss_ts]
    if not entries:
        return "digest: no closed trades yet"
    header = [
        "sym",
        "trades",
        "win%",
        "net_pnl",
        "avg_hold",
        "score",
        "last_trade_ago",
        "last_loss_ago",
    ]
    rows = []
    for entry in sorted(entries, key=lambda e: e.instrument.symbol):
        rows.append(
            [
                entry.instrument.symbol,
                str(entry.trade_count),
                f"{entry.win_rate * 100:.0f}" if entry.win_rate is not None else MISSING,
                signed_money(entry.realized_pnl),
                format_duration(entry.avg_holding_ms) if entry.avg_holding_ms else MISSING,
                num(entry.recent_performance_score, 3)
                if entry.recent_performance_score is not None
                else MISSING,
                _ago(entry.last_trade_ts, now_ms),
                _ago(entry.last_loss_ts, now_ms),
            ]
        )
    return "digest (closed trades):\n" + table(header, rows)


def render_feedback(feedback: ComposeFeedback | None) -> str:
    """What became of the previous plan: one line per rejected or clamped item, reasons cut short.

    ``"BTC/USDT liquidate rejected: unparseable item: action "liquidate" is not…"``,
    ``"SOL/USDT buy 40 clamped to 24.8: max_position_pct 40% of equity…"``; a reply
    that could not be used as written gets a ``reply:`` line first.
    """
    if feedback is None:
        return ""
    lines = []
    if feedback.reply_problem:
        lines.append("reply: " + _cut(feedback.reply_problem, 2 * MAX_FEEDBACK_CHARS))
    items = [o for o in feedback.outcomes if o.status != "accepted"]
    lines.extend(_feedback_line(outcome) for outcome in items[:MAX_FEEDBACK_ITEMS])
    if len(items) > MAX_FEEDBACK_ITEMS:
        lines.append(f"(+{len(items) - MAX_FEEDBACK_ITEMS} more)")
    if not lines:
        return ""
    return "last plan, not done as asked:\n" + "\n".join(lines)


def _feedback_line(outcome: GuardrailOutcome) -> str:
    """``symbol action requested status: reasons`` (the requested quantity when there was one)."""
    parts = [outcome.symbol, outcome.action]
    if outcome.requested_qty is not None and outcome.action not in ("flat", "noop"):
        parts.append(num(outcome.requested_qty, 6))
    parts.append(outcome.status)
    if outcome.status == "clamped" and outcome.final_target_qty is not None:
        parts.append(f"to {num(outcome.final_target_qty, 6)}")
    # "rejected" already says what "unparseable item: " says
    reasons = "; ".join(_ITEM_PREFIX.sub("", r) for r in outcome.reasons) or "no reason given"
    return " ".join(parts) + ": " + _cut(reasons, MAX_FEEDBACK_CHARS)


def _cut(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut).

    The cut falls after a whole clause (``;`` or `` (``: no ellipsis) when one
    ends past half the limit, else after a whole word.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: limit - 1]
    clause = max(head.rfind("; "), head.rfind(" ("))
    if clause >= limit // 2:
        return head[:clause]
    if " " in head:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(" ;,:(") + "…"


# --- helpers ---------------------------------------------------------------------------


def _feature_names(features: Iterable[FeatureVector]) -> list[str]:
    present: set[str] = set()
    for vector in features:
        present.update(vector.values)
    known = [name for name in FEATURE_ORDER if name in present]
    extra = sorted(present - set(FEATURE_ORDER))
    return known + extra


def _cell_format(name: str) -> Callable[[float], str]:
    """How the market table writes a finite value of feature ``name``."""
    if name in _PERCENT_FEATURES:
        return _percent_cell
    if name == "rsi_14":
        return _rsi_cell
    if name in _TWO_DECIMALS:
        return _two_decimals_cell
    if name.startswith(("macd", "atr")):
        return _oscillator_cell
    return _price_cell


def _max_qty_cell(symbol: str, price: float | None, equity: float, limits: PromptLimits) -> str:
    """The largest |target_qty| (contracts) the per-instrument caps allow at ``price``."""
    caps = []
    if limits.max_position_pct is not None and price and price > 0 and equity > 0:
        unit_value = notional(1.0, price, limits.contract_sizes.get(symbol, 1.0))
        caps.append(limits.max_position_pct * equity / unit_value)
    if symbol in limits.max_position_qty:
        caps.append(limits.max_position_qty[symbol])
    return num(min(caps), 4) if caps else MISSING


def _candle_ts(vector: FeatureVector) -> int | None:
    value = (vector.meta or {}).get("candle_ts")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _equity(view: PortfolioView, sizes: Mapping[str, float]) -> float:
    """The ledger's equity; for a view without it, cash + the positions' notional."""
    if view.total_value is not None:
        return view.total_value
    if view.net_exposure is not None:
        return view.cash + view.net_exposure
    return view.cash + sum(_notional(p, sizes) for p in view.positions.values())


def _notional(position: PositionSnapshot, sizes: Mapping[str, float]) -> float:
    """The position's signed notional as the ledger gave it, else ``market_rules.notional``."""
    if position.notional is not None:
        return position.notional
    price = position.mark_price or position.avg_price or 0.0
    return notional(position.quantity, price, sizes.get(position.instrument.symbol, 1.0))


def _ago(ts_ms: int | None, now_ms: int) -> str:
    if not ts_ms:
        return MISSING
    return format_duration(max(now_ms - ts_ms, 0))


def _close_num(value: float) -> str:
    """A series close as written, remembered in ``_CLOSE_MEMO``."""
    text = num(value, _SERIES_DIGITS)
    if value:  # 0.0 and -0.0 are one key but are written "0" and "-0": never stored
        remember(_CLOSE_MEMO, value, text)
    return text


def _opt(value: float | None) -> str:
    return num(value, _PRICE_DIGITS) if value is not None else MISSING


# How the market table writes each kind of feature (a finite value).
_percent_cell = fixed_writer(2, scale=100)
_rsi_cell = fixed_writer(1)
_two_decimals_cell = fixed_writer(2)
_oscillator_cell = num_writer(_OSCILLATOR_DIGITS)
_price_cell = num_writer(_PRICE_DIGITS)
_rsi_point = num_writer(2)  # a point of the RSI series
