"""Render a ``ComposeContext`` as the user message: compact, complete, deterministic.

Dense ``|``-separated tables (one header, one row per instrument) cost far fewer
tokens than a JSON dump of the same numbers. Nothing cycle-unique (compose_id,
strategy_id) is written, so a replay of the same data gives the same prompt and
the response cache can answer it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from operator import attrgetter

from strategy_agent.data.market_rules import notional

# the market table and series live in prompt_market (FEATURE_ORDER re-exported)
from strategy_agent.decision.prompt_market import FEATURE_ORDER as FEATURE_ORDER
from strategy_agent.decision.prompt_market import (
    equity_of,
    notional_of,
    render_market,
    render_series,
)
from strategy_agent.decision.prompt_numbers import (
    MISSING,
    all_finite,
    format_ts,
    num,
    num_writer,
    remember,
    signed_money,
    signed_percent,
    trim_fixed,
)
from strategy_agent.decision.prompt_quotes import render_quotes
from strategy_agent.decision.system_prompt import PromptLimits, format_duration
from strategy_agent.models import (
    ComposeContext,
    ComposeFeedback,
    GuardrailOutcome,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradeDigestEntry,
)

_PRICE_DIGITS = 5
_QUANTITY_DIGITS = 8
_SCORE_DIGITS = 3
# The previous plan's feedback: at most this many item lines, each reason cut to this length.
MAX_FEEDBACK_ITEMS = 6
MAX_FEEDBACK_CHARS = 80
_ITEM_PREFIX = re.compile(r"^[a-z]+ item: ")  # the parser's "unparseable item: ", "unclear item: "
# Each digest entry's cells that do not depend on the time (sym to score), by symbol,
# with the entry they were written from: an entry is immutable and the digest keeps
# the same entry object until the instrument's trades change.
_DIGEST_ROWS: dict[str, tuple[TradeDigestEntry, str]] = {}
_symbol_of = attrgetter("instrument.symbol")


def render_context(context: ComposeContext) -> str:
    """The user message for one decision."""
    limits = PromptLimits.from_constraints(context.constraints)
    features = sorted(context.features, key=_symbol_of)
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
    return "\n\n".join([section for section in sections if section])


# --- sections -------------------------------------------------------------------------


def render_account(view: PortfolioView, limits: PromptLimits | None = None) -> str:
    """Money in the quote currency, as the ledger counts it (``contracts x contract size x price``)."""
    sizes = limits.contract_sizes if limits is not None else {}
    equity = equity_of(view, sizes)
    # the line is one format: "%.2f~" is money, "%+.2f^" signed money (see trim_fixed)
    parts, numbers = ["account: equity %.2f~", "cash %.2f~"], [equity, view.cash]
    if view.initial_capital:
        parts.append("return %+.2f^%%")
        numbers.append((equity / view.initial_capital - 1) * 100)
    parts.append("realized %+.2f^")
    numbers.append(view.realized_pnl)
    if view.total_unrealized_pnl is not None:
        parts.append("unrealized %+.2f^")
        numbers.append(view.total_unrealized_pnl)
    parts.append("fees %.2f~")
    numbers.append(view.fees_paid)
    if view.funding_paid:  # perpetual swaps: net funding so far
        parts.append("funding paid %.2f~" if view.funding_paid > 0 else "funding earned %.2f~")
        numbers.append(abs(view.funding_paid))
    gross = view.gross_exposure
    if gross is None:
        gross = sum(abs(notional_of(p, sizes)) for p in view.positions.values())
    net = view.net_exposure
    if net is None:
        net = sum(notional_of(p, sizes) for p in view.positions.values())
    if equity > 0:  # exposure as a multiple of equity
        parts += ["gross %.2f~ (%.2f~x)", "net %+.2f^ (%.2f~x)"]
        numbers += [gross, gross / equity, net, net / equity]
    else:
        parts += ["gross %.2f~ (n/a)", "net %+.2f^ (n/a)"]
        numbers += [gross, net]
    return trim_fixed(", ".join(parts) % tuple(numbers))


def render_positions(view: PortfolioView, now_ms: int, limits: PromptLimits | None = None) -> str:
    """Open positions: quantity in contracts, prices per base unit, P&L in the quote currency."""
    sizes = limits.contract_sizes if limits is not None else {}
    open_positions = [p for p in view.positions.values() if p.quantity != 0]
    if not open_positions:
        return "positions: none (all flat)"
    rows = [_position_row(p, sizes, now_ms) for p in sorted(open_positions, key=_symbol_of)]
    return "positions:\n" + "\n".join(["sym|qty|entry|mark|upnl|upnl%|held", *rows])


def _position_row(position: PositionSnapshot, sizes: Mapping[str, float], now_ms: int) -> str:
    symbol, quantity = position.instrument.symbol, position.quantity
    entry, mark = position.avg_price, position.mark_price
    upnl = position.unrealized_pnl
    if upnl is None and entry is not None and mark is not None:
        upnl = notional(quantity, mark - entry, sizes.get(symbol, 1.0))
    upnl_pct = position.pnl_pct  # already in percent (the ledger's)
    if upnl_pct is None and upnl is not None and entry:
        upnl_pct = upnl / notional(abs(quantity), entry, sizes.get(symbol, 1.0)) * 100
    held = format_duration(now_ms - position.entry_ts) if position.entry_ts else MISSING
    numbers = (quantity, entry, mark, upnl, upnl_pct)
    if all_finite(numbers):  # the usual row: one format
        cells = _POSITION_CELLS % numbers
        if "e+" not in cells:  # a %g number past its digits: the writers' text differs
            return symbol + trim_fixed(cells) + held
    cells_one_by_one = [
        symbol,
        _quantity(quantity),
        _opt(entry),
        _opt(mark),
        signed_money(upnl) if upnl is not None else MISSING,
        signed_percent(upnl_pct) if upnl_pct is not None else MISSING,
        held,
    ]
    return "|".join(cells_one_by_one)


# A position's numbers in one format: what _quantity, _opt, signed_money and
# signed_percent write (a %g number as long as it has no exponent, see trim_fixed)
_POSITION_CELLS = "|%.8g|%.5g|%.5g|%+.2f^|%+.2f^%%|"


def render_digest(digest: TradeDigest, now_ms: int) -> str:
    """Closed trades per instrument: count, win rate, net P&L, holding time, score, and how
    long ago the last trade and the last loss were."""
    entries = [e for e in digest.by_instrument.values() if e.trade_count > 0 or e.last_loss_ts]
    if not entries:
        return "digest: no closed trades yet"
    rows = [
        f"{_digest_cells(entry)}|{_ago(entry.last_trade_ts, now_ms)}|"
        f"{_ago(entry.last_loss_ts, now_ms)}"
        for entry in sorted(entries, key=_symbol_of)
    ]
    return "digest (closed trades):\n" + "\n".join([_DIGEST_HEADER, *rows])


_DIGEST_HEADER = "sym|trades|win%|net_pnl|avg_hold|score|last_trade_ago|last_loss_ago"


def _digest_cells(entry: TradeDigestEntry) -> str:
    """The entry's cells from ``sym`` to ``score`` (remembered in ``_DIGEST_ROWS``)."""
    symbol = entry.instrument.symbol
    known = _DIGEST_ROWS.get(symbol)
    if known is not None and known[0] is entry:
        return known[1]
    score = entry.recent_performance_score
    cells = "|".join(
        [
            symbol,
            str(entry.trade_count),
            f"{entry.win_rate * 100:.0f}" if entry.win_rate is not None else MISSING,
            signed_money(entry.realized_pnl),
            format_duration(entry.avg_holding_ms) if entry.avg_holding_ms else MISSING,
            _score(score) if score is not None else MISSING,
        ]
    )
    remember(_DIGEST_ROWS, symbol, (entry, cells))
    return cells


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


def _ago(ts_ms: int | None, now_ms: int) -> str:
    if not ts_ms:
        return MISSING
    return format_duration(max(now_ms - ts_ms, 0))


def _opt(value: float | None) -> str:
    return _price(value) if value is not None else MISSING


_price = num_writer(_PRICE_DIGITS)
_quantity = num_writer(_QUANTITY_DIGITS)
_score = num_writer(_SCORE_DIGITS)
