"""The user message, with every shortcut, is byte for byte what the plain code writes.

``plain_context`` below is the renderer as it was written before the speed work
(one number at a time, with the plain formulas of ``test_prompt_speed``); the
drawn contexts cover what a replay sends and what it never does: missing and
non-finite features, features out of column order, 0.0 and -0.0, huge and tiny
values, odd symbols, longs and shorts, digests whose entries are kept or replaced.
The response cache keys hash these bytes, so any difference is a bug.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strategy_agent.decision import prompt_context, prompt_market
from strategy_agent.decision.prompt_context import render_context
from strategy_agent.decision.system_prompt import format_duration
from strategy_agent.features.technical_indicators import FEATURE_NAMES
from strategy_agent.models import (
    ComposeContext,
    ComposeFeedback,
    FeatureVector,
    GuardrailOutcome,
    InstrumentRef,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradeDigestEntry,
)
from tests.decision.test_prompt_speed import EDGES, _result, plain_fixed, plain_num, plain_series

# --- the plain renderer --------------------------------------------------------------------------

PERCENT = {"ret_1", "ret_4", "ret_24", "realized_vol_24"}


def plain_ts(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def plain_cell(name: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if name in PERCENT:
        return plain_fixed(value * 100, 2)
    if name == "rsi_14":
        return plain_fixed(value, 1)
    if name in ("bb_pct_b", "volume_z_20"):
        return plain_fixed(value, 2)
    return plain_num(value, 3 if name.startswith(("macd", "atr")) else 5)


def plain_equity(view: PortfolioView, sizes: dict[str, float]) -> float:
    if view.total_value is not None:
        return view.total_value
    if view.net_exposure is not None:
        return view.cash + view.net_exposure
    return view.cash + sum(plain_notional(p, sizes) for p in view.positions.values())


def plain_notional(p: PositionSnapshot, sizes: dict[str, float]) -> float:
    if p.notional is not None:
        return p.notional
    price = p.mark_price or p.avg_price or 0.0
    return p.quantity * (price * sizes.get(p.instrument.symbol, 1.0))


def plain_account(view: PortfolioView, sizes: dict[str, float]) -> str:
    equity = plain_equity(view, sizes)
    parts = [f"equity {plain_fixed(equity, 2)}", f"cash {plain_fixed(view.cash, 2)}"]
    if view.initial_capital:
        parts.append(f"return {plain_fixed((equity / view.initial_capital - 1) * 100, 2, '+')}%")
    parts.append(f"realized {plain_fixed(view.realized_pnl, 2, '+')}")
    if view.total_unrealized_pnl is not None:
        parts.append(f"unrealized {plain_fixed(view.total_unrealized_pnl, 2, '+')}")
    parts.append(f"fees {plain_fixed(view.fees_paid, 2)}")
    if view.funding_paid:
        paid = "paid" if view.funding_paid > 0 else "earned"
        parts.append(f"funding {paid} {plain_fixed(abs(view.funding_paid), 2)}")
    gross = view.gross_exposure
    if gross is None:
        gross = sum(abs(plain_notional(p, sizes)) for p in view.positions.values())
    net = view.net_exposure
    if net is None:
        net = sum(plain_notional(p, sizes) for p in view.positions.values())

    def ratio(amount: float) -> str:
        return plain_fixed(amount / equity, 2) + "x" if equity > 0 else "n/a"

    parts.append(f"gross {plain_fixed(gross, 2)} ({ratio(gross)})")
    parts.append(f"net {plain_fixed(net, 2, '+')} ({ratio(net)})")
    return "account: " + ", ".join(parts)


def plain_market(context: ComposeContext, features: list[FeatureVector], limits: Any) -> str:
    if not features:
        return "market: no features this cycle (data missing): prefer noop"
    present = {name for vector in features for name in vector.values}
    names = [n for n in FEATURE_NAMES if n in present] + sorted(present - set(FEATURE_NAMES))
    lines = ["|".join(["sym", *names, "max_qty"])]
    equity = plain_equity(context.portfolio, limits.contract_sizes)
    for vector in features:
        symbol = vector.instrument.symbol
        cells = [plain_cell(name, vector.values.get(name)) for name in names]
        price = context.market_snapshot.get(symbol) or vector.values.get("close")
        caps = []
        if limits.max_position_pct is not None and price and price > 0 and equity > 0:
            unit_value = 1.0 * (price * limits.contract_sizes.get(symbol, 1.0))
            caps.append(limits.max_position_pct * equity / unit_value)
        if symbol in limits.max_position_qty:
            caps.append(limits.max_position_qty[symbol])
        lines.append("|".join([symbol, *cells, plain_num(min(caps), 4) if caps else "-"]))
    times = set()
    for vector in features:
        ts = (vector.meta or {}).get("candle_ts")
        if isinstance(ts, int) and not isinstance(ts, bool):
            times.add(ts)
    as_of = ""
    if len(times) == 1:
        opened = plain_ts(min(times))
        if opened[:10] == plain_ts(context.ts)[:10]:
            opened = opened[11:16]
        as_of = f" (candle open {opened})"
    return f"market{as_of}:\n" + "\n".join(lines)


def plain_positions(view: PortfolioView, now_ms: int, sizes: dict[str, float]) -> str:
    held = sorted(
        (p for p in view.positions.values() if p.quantity != 0), key=lambda p: p.instrument.symbol
    )
    if not held:
        return "positions: none (all flat)"
    rows = ["sym|qty|entry|mark|upnl|upnl%|held"]
    for p in held:
        entry, mark, size = p.avg_price, p.mark_price, sizes.get(p.instrument.symbol, 1.0)
        upnl = p.unrealized_pnl
        if upnl is None and entry is not None and mark is not None:
            upnl = p.quantity * ((mark - entry) * size)
        pct = p.pnl_pct
        if pct is None and upnl is not None and entry:
            pct = upnl / (abs(p.quantity) * (entry * size)) * 100
        cells = [
            p.instrument.symbol,
            plain_num(p.quantity, 8),
            plain_num(entry, 5) if entry is not None else "-",
            plain_num(mark, 5) if mark is not None else "-",
            plain_fixed(upnl, 2, "+") if upnl is not None else "-",
            plain_fixed(pct, 2, "+") + "%" if pct is not None else "-",
            format_duration(now_ms - p.entry_ts) if p.entry_ts else "-",
        ]
        rows.append("|".join(cells))
    return "positions:\n" + "\n".join(rows)


def plain_digest(digest: TradeDigest, now_ms: int) -> str:
    entries = [e for e in digest.by_instrument.values() if e.trade_count > 0 or e.last_loss_ts]
    if not entries:
        return "digest: no closed trades yet"

    def ago(ts: int | None) -> str:
        return format_duration(max(now_ms - ts, 0)) if ts else "-"

    rows = ["sym|trades|win%|net_pnl|avg_hold|score|last_trade_ago|last_loss_ago"]
    for e in sorted(entries, key=lambda e: e.instrument.symbol):
        score = e.recent_performance_score
        cells = [
            e.instrument.symbol,
            str(e.trade_count),
            f"{e.win_rate * 100:.0f}" if e.win_rate is not None else "-",
            plain_fixed(e.realized_pnl, 2, "+"),
            format_duration(e.avg_holding_ms) if e.avg_holding_ms else "-",
            plain_num(score, 3) if score is not None else "-",
            ago(e.last_trade_ts),
            ago(e.last_loss_ts),
        ]
        rows.append("|".join(cells))
    return "digest (closed trades):\n" + "\n".join(rows)


def plain_feedback_line(outcome: GuardrailOutcome) -> str:
    parts = [outcome.symbol, outcome.action]
    if outcome.requested_qty is not None and outcome.action not in ("flat", "noop"):
        parts.append(plain_num(outcome.requested_qty, 6))
    parts.append(outcome.status)
    if outcome.status == "clamped" and outcome.final_target_qty is not None:
        parts.append(f"to {plain_num(outcome.final_target_qty, 6)}")
    reasons = "; ".join(re.sub(r"^[a-z]+ item: ", "", r) for r in outcome.reasons)
    return " ".join(parts) + ": " + prompt_context._cut(reasons or "no reason given", 80)


def plain_feedback(feedback: ComposeFeedback | None) -> str:
    if feedback is None:
        return ""
    lines = []
    if feedback.reply_problem:
        lines.append("reply: " + prompt_context._cut(feedback.reply_problem, 160))
    items = [o for o in feedback.outcomes if o.status != "accepted"]
    lines.extend(plain_feedback_line(o) for o in items[:6])
    if len(items) > 6:
        lines.append(f"(+{len(items) - 6} more)")
    return "last plan, not done as asked:\n" + "\n".join(lines) if lines else ""


def plain_context(context: ComposeContext) -> str:
    limits = prompt_context.PromptLimits.from_constraints(context.constraints)
    sizes = limits.contract_sizes
    features = sorted(context.features, key=lambda f: f.instrument.symbol)
    sections = [
        f"time: {plain_ts(context.ts)} (interval {context.interval})",
        plain_account(context.portfolio, sizes),
        plain_market(context, features, limits),
        plain_series(features),
        plain_positions(context.portfolio, context.ts, sizes),
        plain_digest(context.digest, context.ts),
        plain_feedback(context.feedback),
        "strategy:\n" + (context.prompt_text.strip() or "(no instructions: keep risk low)"),
    ]
    return "\n\n".join(section for section in sections if section)


# --- drawn contexts ------------------------------------------------------------------------------

HOUR = 3_600_000
NOW = 1_745_125_200_000  # 2025-04-20 05:00 UTC
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "X~0|Y"]  # marks and separators in a symbol too
MONEY = st.one_of(
    st.sampled_from([0.0, -0.0, 0.004, -0.004, 0.005, -0.005, 1e-9, 1e15, -1e15, 7014.57]),
    st.floats(min_value=-1e7, max_value=1e7),
)
FEATURE_VALUE = st.one_of(
    st.sampled_from([*EDGES, math.nan, math.inf, -math.inf, 1e300, -1e-300, 99999.5, True]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e5, max_value=1e5),
    st.floats(min_value=-0.2, max_value=0.2),
    st.integers(min_value=-(10**6), max_value=10**6),
)
SERIES = st.lists(st.one_of(st.floats(min_value=0, max_value=1e5), FEATURE_VALUE), max_size=12)


@st.composite
def vectors(draw: st.DrawFn, symbol: str) -> FeatureVector:
    names = [n for n in FEATURE_NAMES if draw(st.integers(0, 9))]  # mostly all present
    names += draw(st.lists(st.sampled_from(["atr_7", "macd_fast", "zeta", "funding"]), max_size=2))
    if draw(st.booleans()):
        names = draw(st.permutations(names))
    values = {name: draw(FEATURE_VALUE) for name in names}
    meta: dict[str, Any] = {"candle_ts": draw(st.sampled_from([NOW - HOUR, NOW - 30 * HOUR, True]))}
    if draw(st.booleans()):
        meta["series"] = {"close": draw(SERIES), "rsi_14": draw(SERIES)}
    # model_construct: a replay's vectors are built so, and NaN must reach the renderer
    return FeatureVector.model_construct(
        ts=NOW, instrument=InstrumentRef(symbol=symbol), values=values, meta=meta
    )


@st.composite
def positions(draw: st.DrawFn, symbols: list[str]) -> dict[str, PositionSnapshot]:
    held = {}
    for symbol in draw(st.lists(st.sampled_from(symbols), unique=True)):
        optional = st.one_of(st.none(), MONEY)
        held[symbol] = PositionSnapshot(
            instrument=InstrumentRef(symbol=symbol),
            quantity=draw(st.sampled_from([0.0, 0.04604, -1.5, 17.675, -1e-7, 12345678.9])),
            avg_price=draw(st.one_of(st.none(), st.sampled_from([0.0, 31927.65, 2.2793, 1e6]))),
            mark_price=draw(st.one_of(st.none(), st.sampled_from([0.0, 99999.7, 2.206, 8e-6]))),
            unrealized_pnl=draw(optional),
            notional=draw(optional),
            entry_ts=draw(st.sampled_from([None, 0, NOW - 5 * HOUR, NOW - 90 * HOUR])),
            pnl_pct=draw(optional),
        )
    return held


@st.composite
def digests(draw: st.DrawFn, symbols: list[str]) -> TradeDigest:
    entries = {}
    for symbol in draw(st.lists(st.sampled_from(symbols), unique=True)):
        entries[symbol] = TradeDigestEntry(
            instrument=InstrumentRef(symbol=symbol),
            trade_count=draw(st.integers(0, 40)),
            realized_pnl=draw(MONEY),
            win_rate=draw(st.one_of(st.none(), st.floats(0, 1))),
            avg_holding_ms=draw(st.sampled_from([None, 0.0, 5_400_000.0, 97_200_000.5])),
            last_trade_ts=draw(st.sampled_from([None, NOW - HOUR, NOW + HOUR])),
            recent_performance_score=draw(st.one_of(st.none(), MONEY)),
            last_loss_ts=draw(st.sampled_from([None, 0, NOW - 20 * HOUR])),
        )
    return TradeDigest(ts=NOW, by_instrument=entries)


@st.composite
def contexts(draw: st.DrawFn) -> ComposeContext:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=0, max_size=4, unique=True))
    cash = draw(MONEY)
    view = PortfolioView(
        ts=NOW,
        cash=cash,
        positions=draw(positions(symbols or SYMBOLS[:1])),
        gross_exposure=draw(st.one_of(st.none(), st.floats(0, 1e6))),
        net_exposure=draw(st.one_of(st.none(), MONEY)),
        total_value=draw(st.one_of(st.none(), MONEY)),
        total_unrealized_pnl=draw(st.one_of(st.none(), MONEY)),
        realized_pnl=draw(MONEY),
        fees_paid=draw(st.floats(0, 1e4)),
        initial_capital=draw(st.sampled_from([None, 0.0, 10_000.0])),
        funding_paid=draw(st.sampled_from([0.0, 1.5, -2.25])),
    )
    outcome = GuardrailOutcome(
        symbol="BTC/USDT",
        action=draw(st.sampled_from(["buy", "flat"])),
        status=draw(st.sampled_from(["rejected", "clamped"])),
        requested_qty=draw(st.one_of(st.none(), MONEY)),
        final_target_qty=0.25,
        reasons=["unparseable item: qty", "order 5e-06 BTC/USDT is smaller than one lot"],
    )
    feedback = ComposeFeedback(
        outcomes=[outcome] * draw(st.integers(0, 8)),
        reply_problem=draw(st.sampled_from([None, "no JSON object in the reply"])),
    )
    return ComposeContext.model_validate(
        {
            "ts": NOW,
            "compose_id": "c",
            "features": [draw(vectors(symbol)) for symbol in symbols],
            "portfolio": view,
            "digest": draw(digests(symbols or SYMBOLS[:1])),
            "prompt_text": draw(st.sampled_from(["", "  Buy dips.\n"])),
            "market_snapshot": {s: draw(st.sampled_from([0.0, 80.05, 31226.9])) for s in symbols},
            "constraints": {
                "max_position_pct": draw(st.sampled_from([None, 0.4, 1e-9])),
                "max_position_qty": draw(st.sampled_from([{}, {"BTC/USDT": 0.05}])),
                "contract_sizes": draw(st.sampled_from([{}, {"ETH/USDT": 0.1}])),
            },
            "feedback": draw(st.sampled_from([None, feedback])),
        }
    )


@settings(max_examples=300, deadline=None)
@given(context=contexts())
def test_the_prompt_is_what_the_plain_renderer_writes(context: ComposeContext) -> None:
    # (a value near the top of the float range overflows when rounded, with or without
    # the shortcuts: then both raise the same error)
    plain = _result(plain_context, context)
    assert _result(render_context, context) == plain
    assert _result(render_context, context) == plain  # again, from what the memos kept


@settings(max_examples=100, deadline=None)
@given(first=contexts(), second=contexts())
def test_a_kept_digest_entry_is_written_for_the_new_time(
    first: ComposeContext, second: ComposeContext
) -> None:
    """The next cycle keeps the digest's entries (the same objects) at a later time, or
    replaces some: either way the rows are what the plain code writes then."""
    later = second.model_copy(update={"ts": NOW + 7 * HOUR, "digest": first.digest})
    for context in (first, later, second):
        assert _result(render_context, context) == _result(plain_context, context)


def test_the_market_row_shortcut_falls_back_to_the_cell_writers() -> None:
    """In column order, finite: one format; a %g cell past its digits, a NaN or a None
    (a vector built without validation) goes cell by cell, as before."""
    names = tuple(FEATURE_NAMES)
    columns, _ = prompt_market._market_columns(
        [FeatureVector.model_construct(ts=0, instrument=None, values=dict.fromkeys(names, 1.0))]
    )
    for odd in [123456.7, math.nan, None, -0.0, -0.004, 1e-7]:
        values = dict.fromkeys(names, 2.5) | {"macd": odd, "close": odd, "ret_1": odd}
        expected = "".join("|" + plain_cell(name, values[name]) for name in names)
        assert prompt_market.row_cells(values, columns, True) == expected
        assert prompt_market.row_cells(values, columns, False) == expected


def test_a_position_the_format_cannot_write_goes_cell_by_cell() -> None:
    """A position built without validation may hold an infinity: the plain writers
    raise on it as before, a NaN is written as before."""
    for odd in [math.inf, math.nan]:
        position = PositionSnapshot.model_construct(
            instrument=InstrumentRef(symbol="BTC/USDT"),
            quantity=0.5,
            avg_price=100.0,
            mark_price=odd,
            unrealized_pnl=1.0,
            pnl_pct=2.0,
            entry_ts=None,
        )
        view = PortfolioView(ts=NOW, cash=1.0, positions={"BTC/USDT": position})
        assert _result(prompt_context.render_positions, view, NOW) == _result(
            plain_positions, view, NOW, {}
        )
