from __future__ import annotations

from strategy_agent.decision.prompt_context import FEATURE_ORDER, format_ts, render_context
from strategy_agent.models import (
    ComposeContext,
    FeatureVector,
    InstrumentRef,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradeDigestEntry,
)

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
    assert row["ret_1"] == "1.23" and row["ret_24"] == "-5.00" and row["realized_vol_24"] == "0.87"
    assert row["bb_pct_b"] == "0.46" and row["volume_z_20"] == "1.23"
    assert row["funding"] == "0.0001"
    # max_qty: min(0.5 * 9650 / 60000 = 0.0804, cap 0.05)
    assert row["max_qty"] == "0.05"
    assert dict(zip(columns, eth, strict=True))["funding"] == "-"
    assert dict(zip(columns, eth, strict=True))["max_qty"] == "1.556"


def test_series_positions_account_and_digest_are_rendered() -> None:
    text = render_context(_context())
    assert "ETH/USDT: close 100 101 102" in text and "| rsi 40 41 42" in text
    assert "ETH/USDT|-1.5|3000|3100|-150.00|-3.33%|5h30m" in text
    assert "equity 9650.00" in text and "cash 5000.00" in text and "return -3.50%" in text
    assert "gross 4650.00 (0.48x)" in text and "net -4650.00 (-0.48x)" in text
    assert "open positions 1" in text
    assert "ETH/USDT|4|25|-42.00|3h|-0.8|2h|2h" in text


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
