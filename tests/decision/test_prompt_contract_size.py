"""A book in contracts of 0.01 BTC: every money figure of the prompt against the ledger.

Quantities are in contracts; money is contracts x contract size x price
(``market_rules.notional``). The prompt must say so, show the ledger's numbers
(never recompute mark x qty), and size ``max_qty`` in contracts, so that the
guardrails accept what it shows.
"""

from __future__ import annotations

import re

import pytest

from strategy_agent.data.market_rules import StaticMarketRules
from strategy_agent.decision.guardrails import GuardrailLimits, apply_guardrails
from strategy_agent.decision.prompt_context import render_context
from strategy_agent.decision.system_prompt import build_system_prompt
from strategy_agent.models import (
    ComposeContext,
    ExchangeConfig,
    FeatureVector,
    Fill,
    InstrumentRef,
    LlmDecisionItem,
    MarketRules,
    PortfolioView,
    TradeDigest,
    TradingConfig,
)
from strategy_agent.portfolio.ledger import Ledger

TS = 1_736_168_400_000  # 2025-01-06 13:00 UTC
HOUR = 3_600_000
BTC, SOL = "BTC/USDT:USDT", "SOL/USDT:USDT"
CONTRACT = 0.01  # BTC per contract
RULES = StaticMarketRules(
    {
        BTC: MarketRules(symbol=BTC, qty_step=1, min_qty=1, contract_size=CONTRACT),
        SOL: MarketRules(symbol=SOL, qty_step=0.1, min_qty=0.1),
    }
)
MARKS = {BTC: 60_600.0, SOL: 145.0}
_PART = re.compile(
    r"^(?P<label>[a-z ]+?) (?P<value>[-+]?\d+(?:\.\d+)?)%?(?: \((?P<ratio>[-+]?\d+\.\d+)x\))?$"
)


def _limits() -> GuardrailLimits:
    trading = TradingConfig(
        symbols=[BTC, SOL], max_position_pct=0.4, max_leverage=3.0, allow_short=True
    )
    return GuardrailLimits.from_config(trading, ExchangeConfig(market_type="swap"), RULES)


def _ledger() -> Ledger:
    """10 contracts of BTC long (0.1 BTC, about 6,000 USDT) and 20 SOL short."""
    ledger = Ledger(10_000.0, market_type="swap", max_leverage=3.0, rules=RULES)
    ledger.apply(Fill(ts=TS - 5 * HOUR, symbol=BTC, side="buy", quantity=10, price=60_000, fee=3.6))
    ledger.apply(Fill(ts=TS - 3 * HOUR, symbol=SOL, side="sell", quantity=20, price=150, fee=1.8))
    ledger.mark(MARKS, TS)
    return ledger


def _vector(symbol: str) -> FeatureVector:
    close = MARKS[symbol]
    return FeatureVector(
        ts=TS,
        instrument=InstrumentRef(symbol=symbol),
        values={"close": close, "rsi_14": 50.0},
        meta={"candle_ts": TS - HOUR},
    )


def _context(view: PortfolioView) -> ComposeContext:
    return ComposeContext(
        ts=TS,
        compose_id="c",
        features=[_vector(BTC), _vector(SOL)],
        portfolio=view,
        digest=TradeDigest(ts=TS),
        prompt_text="trade",
        market_snapshot=dict(MARKS),
        constraints=_limits().model_dump(mode="json"),
    )


def _close(rendered: str, expected: float, decimals: int = 2) -> bool:
    return abs(float(rendered) - expected) <= 0.5 * 10**-decimals + 1e-9 * abs(expected)


def _section(text: str, title: str) -> list[str]:
    return next(part for part in text.split("\n\n") if part.startswith(title)).splitlines()


def _stripped(view: PortfolioView, keep_notional: bool) -> PortfolioView:
    """The view without its derived totals, as a source that only lists positions gives it."""
    positions = {
        symbol: p.model_copy(
            update={
                "unrealized_pnl": None,
                "pnl_pct": None,
                "notional": p.notional if keep_notional else None,
            }
        )
        for symbol, p in view.positions.items()
    }
    return view.model_copy(
        update={
            "positions": positions,
            "total_value": None,
            "gross_exposure": None,
            "net_exposure": None,
        }
    )


def _check_money(text: str, ledger: Ledger) -> None:
    equity = ledger.equity
    [account] = _section(text, "account:")
    parts = {m["label"]: m for m in map(_PART.match, account.removeprefix("account: ").split(", "))}
    assert _close(parts["equity"]["value"], equity)
    assert _close(parts["cash"]["value"], ledger.cash)
    assert _close(parts["return"]["value"], (equity / 10_000 - 1) * 100)
    assert _close(parts["gross"]["value"], ledger.gross_exposure)
    assert _close(parts["net"]["value"], ledger.net_exposure)
    assert _close(parts["gross"]["ratio"], ledger.gross_exposure / equity)
    assert _close(parts["net"]["ratio"], ledger.net_exposure / equity)
    header, *rows = _section(text, "positions:")[1:]
    table = {r.split("|")[0]: dict(zip(header.split("|"), r.split("|"), strict=True)) for r in rows}
    for symbol, position in ledger.positions.items():
        row = table[symbol]
        assert float(row["qty"]) == position.quantity
        assert _close(row["upnl"], position.unrealized_pnl)
        basis = abs(position.quantity) * position.contract_size * position.avg_price
        assert _close(row["upnl%"].removesuffix("%"), position.unrealized_pnl / basis * 100)
    header, *rows = _section(text, "market")[1:]
    market = {
        r.split("|")[0]: dict(zip(header.split("|"), r.split("|"), strict=True)) for r in rows
    }
    for symbol, size in ((BTC, CONTRACT), (SOL, 1.0)):
        expected = 0.4 * equity / (MARKS[symbol] * size)
        assert float(market[symbol]["max_qty"]) == pytest.approx(expected, rel=1e-3), symbol


def test_the_ledger_fixture_is_what_the_test_says() -> None:
    ledger = _ledger()
    # 10 contracts x 0.01 BTC x 60,600 = 6,060 long; 20 SOL x 145 = 2,900 short
    assert ledger.gross_exposure == pytest.approx(6_060 + 2_900)
    assert ledger.unrealized_pnl == pytest.approx(10 * 0.01 * 600 + 20 * 5)
    assert ledger.equity == pytest.approx(10_000 + 60 + 100 - 3.6 - 1.8)


def test_every_money_figure_matches_the_ledger_in_contracts() -> None:
    ledger = _ledger()
    _check_money(render_context(_context(ledger.get_view(TS))), ledger)


@pytest.mark.parametrize("keep_notional", [True, False], ids=["notional", "no-notional"])
def test_a_view_without_totals_gives_the_same_figures(keep_notional: bool) -> None:
    """Without the ledger's totals the prompt still counts the contract size (never mark x qty)."""
    ledger = _ledger()
    view = _stripped(ledger.get_view(TS), keep_notional)
    _check_money(render_context(_context(view)), ledger)


def test_max_qty_is_what_the_guardrails_allow() -> None:
    """The model asking for the max_qty shown is not cut by the per-instrument cap; 5 % more is."""
    ledger = Ledger(10_000.0, market_type="swap", max_leverage=3.0, rules=RULES)
    view = ledger.get_view(TS)  # flat: the whole cap is free
    text = render_context(_context(view))
    header, *rows = _section(text, "market")[1:]
    btc = dict(
        zip(header.split("|"), next(r for r in rows if r.startswith(BTC)).split("|"), strict=True)
    )
    shown = float(btc["max_qty"])
    limits = _limits()
    for factor, clamped in ((0.999, False), (1.05, True)):
        item = LlmDecisionItem(
            instrument=InstrumentRef(symbol=BTC), action="buy", target_qty=shown * factor
        )
        _, [outcome] = apply_guardrails(
            [item], view, dict(MARKS), TradeDigest(ts=TS), limits, RULES, "c", TS
        )
        cut = any("max_position_pct" in reason for reason in outcome.reasons)
        assert cut is clamped, (factor, outcome)


def test_the_system_prompt_tells_the_contract_size_only_when_not_one() -> None:
    prompt = build_system_prompt(_limits().model_dump(mode="json"))
    assert f"base units per contract: {BTC} 0.01 (others 1)" in prompt
    assert SOL + " 1" not in prompt
    assert "|target_qty| x contract size x price" in prompt
    assert "in contracts" in prompt
    spot = GuardrailLimits.from_config(TradingConfig(symbols=["BTC/USDT"]), ExchangeConfig(), RULES)
    plain = build_system_prompt(spot.model_dump(mode="json"))
    assert spot.contract_sizes == {}
    assert "contract" not in plain and "|target_qty| x price" in plain and "in base units" in plain
