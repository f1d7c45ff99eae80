"""The user message: every section, and every portfolio number checked against a real ledger."""

from __future__ import annotations

import re

import pytest

from strategy_agent.decision.prompt_context import (
    FEATURE_ORDER,
    MAX_FEEDBACK_CHARS,
    MAX_FEEDBACK_ITEMS,
    format_ts,
    render_context,
    render_feedback,
)
from strategy_agent.models import (
    ComposeContext,
    ComposeFeedback,
    FeatureVector,
    Fill,
    GuardrailOutcome,
    InstrumentRef,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradeDigestEntry,
)
from strategy_agent.portfolio.ledger import Ledger

TS = 1_736_168_400_000  # 2025-01-06 13:00 UTC
HOUR = 3_600_000
CLOSES = [100.0 + i for i in range(12)]
RSI = [40.0 + i for i in range(12)]


def _vector(symbol: str, close: float, **extra: float) -> FeatureVector:
    values = {name: close * 1.01 for name in FEATURE_ORDER}
    values.update(
        close=close,
        rsi_14=61.234,
        ret_1=0.0123,
        ret_24=-0.05,
        realized_vol_24=0.0087,
        bb_pct_b=0.456,
        volume_z_20=1.234,
        **extra,
    )
    del values["ret_4"]  # warm-up values are omitted
    meta = {"interval": "1h", "candle_ts": TS - HOUR, "series": {"close": CLOSES, "rsi_14": RSI}}
    return FeatureVector(ts=TS, instrument=InstrumentRef(symbol=symbol), values=values, meta=meta)


def _context(**overrides: object) -> ComposeContext:
    portfolio = PortfolioView(
        ts=TS,
        cash=5_000.0,
        positions={
            "ETH/USDT": PositionSnapshot(
                instrument=InstrumentRef(symbol="ETH/USDT"),
                quantity=-1.5,
                avg_price=3_000.0,
                mark_price=3_100.0,
                entry_ts=TS - 5 * HOUR - 30 * 60_000,
            )
        },
        total_value=9_650.0,
        initial_capital=10_000.0,
        realized_pnl=12.5,
        fees_paid=3.25,
    )
    digest = TradeDigest(
        ts=TS,
        by_instrument={
            "ETH/USDT": TradeDigestEntry(
                instrument=InstrumentRef(symbol="ETH/USDT"),
                trade_count=4,
                realized_pnl=-42.0,
                win_rate=0.25,
                avg_holding_ms=3 * HOUR,
                last_trade_ts=TS - 2 * HOUR,
                recent_performance_score=-0.8,
                last_loss_ts=TS - 2 * HOUR,
            )
        },
    )
    fields: dict[str, object] = {
        "ts": TS,
        "compose_id": "unique-compose-id-123",
        "strategy_id": "strategy-xyz",
        "features": [_vector("ETH/USDT", 3_100.0), _vector("BTC/USDT", 60_000.0, funding=0.0001)],
        "portfolio": portfolio,
        "digest": digest,
        "prompt_text": "Buy dips in ETH.",
        "market_snapshot": {"BTC/USDT": 60_000.0, "ETH/USDT": 3_100.0},
        "constraints": {
            "symbols": ["BTC/USDT", "ETH/USDT"],
            "max_position_pct": 0.5,
            "max_position_qty": {"BTC/USDT": 0.05},
        },
    }
    fields.update(overrides)
    return ComposeContext.model_validate(fields)


def test_sections_appear_in_order_with_time_and_strategy_last() -> None:
    text = render_context(_context())
    order = [
        "time: 2025-01-06 13:00 UTC",
        "account:",
        "market",
        "series",
        "positions:",
        "digest",
        "strategy:\nBuy dips in ETH.",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert text.rstrip().endswith("Buy dips in ETH.")


def test_market_table_has_every_feature_one_row_per_symbol_sorted() -> None:
    text = render_context(_context())
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("sym|close|"))
    columns = header.split("|")
    assert columns[-1] == "max_qty" and "funding" in columns and "ret_4" not in columns
    btc = next(line for line in lines if line.startswith("BTC/USDT|60000|")).split("|")
    eth = next(line for line in lines if line.startswith("ETH/USDT|3100|")).split("|")
    assert lines.index("|".join(btc)) < lines.index("|".join(eth))
    row = dict(zip(columns, btc, strict=True))
    assert row["rsi_14"] == "61.2"
    assert row["ret_1"] == "1.23" and row["ret_24"] == "-5" and row["realized_vol_24"] == "0.87"
    assert row["bb_pct_b"] == "0.46" and row["volume_z_20"] == "1.23"
    assert row["funding"] == "0.0001"
    # max_qty: min(0.5 * 9650 / 60000 = 0.0804, cap 0.05)
    assert row["max_qty"] == "0.05"
    assert dict(zip(columns, eth, strict=True))["funding"] == "-"
    assert dict(zip(columns, eth, strict=True))["max_qty"] == "1.556"


def test_series_positions_account_and_digest_are_rendered() -> None:
    text = render_context(_context())
    assert "ETH/USDT: close 100 101 102" in text and "| rsi 40 41 42" in text
    assert "ETH/USDT|-1.5|3000|3100|-150|-3.33%|5h30m" in text
    assert "equity 9650, cash 5000, return -3.5%, realized +12.5, fees 3.25" in text
    assert "gross 4650 (0.48x)" in text and "net -4650 (-0.48x)" in text
    assert "ETH/USDT|4|25|-42|3h|-0.8|2h|2h" in text


def test_nothing_cycle_unique_is_written() -> None:
    text = render_context(_context())
    assert "unique-compose-id-123" not in text and "strategy-xyz" not in text
    again = render_context(_context(compose_id="another-id", strategy_id="other"))
    assert again == text


def test_empty_portfolio_digest_and_features() -> None:
    empty = PortfolioView(ts=TS, cash=1_000.0)
    text = render_context(
        _context(features=[], portfolio=empty, digest=TradeDigest(ts=TS), prompt_text="  ")
    )
    assert "market: no features this cycle" in text
    assert "positions: none (all flat)" in text
    assert "digest: no closed trades yet" in text
    assert "(no instructions" in text
    assert "series" not in text


def test_format_ts() -> None:
    assert format_ts(TS) == "2025-01-06 13:00 UTC"


# --- every portfolio number against the ledger ---------------------------------------------

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
_ACCOUNT_PART = re.compile(
    r"^(?P<label>[a-z ]+?) (?P<value>[-+]?\d+(?:\.\d+)?)(?P<pct>%)?"
    r"(?: \((?P<ratio>[-+]?\d+\.\d+)x\))?$"
)


def _known_book() -> Ledger:
    """A margin book: a closed SOL trade, a BTC long up 0.91 %, an ETH short down 1.67 %."""
    ledger = Ledger(initial_capital=10_000.0, market_type="margin", max_leverage=10.0)
    fills = [
        Fill(ts=TS - 9 * HOUR, symbol=SOL, side="buy", quantity=100, price=150, fee=1.5),
        Fill(ts=TS - 8 * HOUR, symbol=SOL, side="sell", quantity=100, price=155, fee=1.55),
        Fill(ts=TS - 5 * HOUR, symbol=BTC, side="buy", quantity=0.5, price=60_000, fee=3.0),
        Fill(ts=TS - 195 * 60_000, symbol=ETH, side="sell", quantity=10, price=3_000, fee=1.5),
    ]
    for fill in fills:
        ledger.apply(fill)
    ledger.mark({BTC: 60_546.0, ETH: 3_050.0, SOL: 155.0}, TS)
    return ledger


def _section(text: str, title: str) -> list[str]:
    lines = text.split("\n\n")
    block = next(part for part in lines if part.startswith(title))
    return block.splitlines()


def _close(rendered: str, expected: float, decimals: int) -> bool:
    return abs(float(rendered) - expected) <= 0.5 * 10**-decimals + 1e-9 * abs(expected)


def test_every_portfolio_number_matches_the_ledger() -> None:
    ledger = _known_book()
    view = ledger.get_view(TS)
    text = render_context(_context(portfolio=view, features=[], digest=TradeDigest(ts=TS)))
    equity = ledger.equity
    # The ledger's own numbers, cross-checked by hand once.
    assert equity == pytest.approx(10_000 + 500 + 273 - 500 - 1.5 - 1.55 - 3.0 - 1.5)
    [account_line] = _section(text, "account:")
    parts = account_line.removeprefix("account: ").split(", ")
    rendered = {}
    for part in parts:
        match = _ACCOUNT_PART.match(part)
        assert match, part
        rendered[match["label"]] = match
    expected = {
        "equity": (equity, 2),
        "cash": (view.cash, 2),
        "return": ((equity / 10_000.0 - 1) * 100, 2),
        "realized": (ledger.get_view(TS).realized_pnl, 2),
        "unrealized": (ledger.unrealized_pnl, 2),
        "fees": (7.55, 2),
        "gross": (ledger.gross_exposure, 2),
        "net": (ledger.net_exposure, 2),
    }
    assert set(rendered) == set(expected)  # no number goes unchecked
    for label, (value, decimals) in expected.items():
        assert _close(rendered[label]["value"], value, decimals), (label, rendered[label][0])
    assert rendered["return"]["pct"] == "%"
    assert _close(rendered["gross"]["ratio"], ledger.gross_exposure / equity, 2)
    assert _close(rendered["net"]["ratio"], ledger.net_exposure / equity, 2)
    assert [m["ratio"] for label, m in rendered.items() if label not in ("gross", "net")] == [
        None
    ] * 6

    header, *rows = _section(text, "positions:")[1:]
    assert header == "sym|qty|entry|mark|upnl|upnl%|held"
    table = {
        row.split("|")[0]: dict(zip(header.split("|"), row.split("|"), strict=True)) for row in rows
    }
    assert set(table) == {BTC, ETH}
    held = {BTC: "5h", ETH: "3h15m"}
    hand_pct = {BTC: 273 / 30_000 * 100, ETH: -500 / 30_000 * 100}  # +0.91 %, -1.67 %
    for symbol, row in table.items():
        position = view.positions[symbol]
        assert float(row["qty"]) == position.quantity
        assert float(row["entry"]) == position.avg_price
        assert float(row["mark"]) == position.mark_price
        assert row["upnl"][0] in "+-"
        assert _close(row["upnl"], position.unrealized_pnl or 0.0, 2)
        assert row["upnl%"].endswith("%")
        assert _close(row["upnl%"].removesuffix("%"), position.pnl_pct or 0.0, 2)
        assert _close(row["upnl%"].removesuffix("%"), hand_pct[symbol], 2), row
        assert row["held"] == held[symbol]


# --- what became of the last plan -------------------------------------------------------------


def _outcome(
    symbol: str, action: str, status: str, *reasons: str, **extra: object
) -> GuardrailOutcome:
    return GuardrailOutcome.model_validate(
        {"symbol": symbol, "action": action, "status": status, "reasons": list(reasons), **extra}
    )


def test_feedback_sits_before_the_strategy_one_line_per_item() -> None:
    feedback = ComposeFeedback(
        outcomes=[
            _outcome("BTC/USDT", "buy", "accepted", requested_qty=0.01),
            _outcome(
                "ETH/USDT",
                "buy",
                "clamped",
                "max_position_pct 50% of equity 9,650.00 is 4,825.00: target 3 -> 1.556",
                requested_qty=3,
                final_target_qty=1.556,
            ),
            _outcome(
                "?",
                "liquidate",
                "rejected",
                'unparseable item: action "liquidate" is not accepted; use buy, sell, flat or noop '
                "(also understood: close_long, ...)",
            ),
        ],
        reply_problem="no JSON object in the reply",
    )
    text = render_context(_context(feedback=feedback))
    section = text.split("\n\n")[-2]
    assert section.splitlines() == [
        "last plan, not done as asked:",
        "reply: no JSON object in the reply",
        "ETH/USDT buy 3 clamped to 1.556: max_position_pct 50% of equity 9,650.00 is 4,825.00:"
        " target 3 -> 1.556",
        '? liquidate rejected: action "liquidate" is not accepted; use buy, sell, flat or noop',
    ]
    assert text.index("digest") < text.index("last plan") < text.index("strategy:")


def test_no_feedback_no_section() -> None:
    assert "last plan" not in render_context(_context())
    accepted = ComposeFeedback(outcomes=[_outcome("BTC/USDT", "buy", "accepted")])
    assert render_feedback(accepted) == "" and render_feedback(None) == ""


def test_feedback_is_compact_whatever_the_reasons() -> None:
    long_reason = "word " * 100 + "\nsecond line"
    many = [
        _outcome(f"S{i}/USDT", "sell", "rejected", long_reason, requested_qty=-1.0)
        for i in range(MAX_FEEDBACK_ITEMS + 3)
    ]
    lines = render_feedback(ComposeFeedback(outcomes=many)).splitlines()
    assert len(lines) == 1 + MAX_FEEDBACK_ITEMS + 1 and lines[-1] == "(+3 more)"
    first = lines[1]
    assert first.startswith("S0/USDT sell -1 rejected: word word")
    reason = first.split(": ", 1)[1]
    assert len(reason) <= MAX_FEEDBACK_CHARS and reason.endswith("word…")
    flat = _outcome("ETH/USDT", "flat", "rejected", "no price", requested_qty=0.0)
    assert render_feedback(ComposeFeedback(outcomes=[flat])).splitlines()[1] == (
        "ETH/USDT flat rejected: no price"
    )
