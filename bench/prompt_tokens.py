"""Prompt tokens per decision for 1, 3 and 10 symbols, against a naive JSON dump.

Builds realistic contexts (the simulated market and the technical features when
they are available, hand-made features otherwise), renders the exact messages
``LlmPolicy`` would send, and counts them with litellm's offline token counter.
Each context carries the feedback on a previous plan with three rejected items,
produced by the real parser and guardrails. The baseline is the same system
prompt plus ``json.dumps`` of the same context.

    python bench/prompt_tokens.py [--model openai/gpt-4o-mini] [--show 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strategy_agent.clock import ManualClock
from strategy_agent.cycle_records import FEEDBACK_STATUSES
from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.data.simulated_market import (
    DEFAULT_ORIGIN_MS,
    DEFAULT_SYMBOLS,
    SimulatedMarketDataSource,
)
from strategy_agent.decision.guardrails import GuardrailLimits, apply_guardrails
from strategy_agent.decision.llm_policy import load_litellm
from strategy_agent.decision.plan_parser import parse_plan
from strategy_agent.decision.prompt_context import render_context
from strategy_agent.decision.prompt_library import load_template
from strategy_agent.decision.system_prompt import build_system_prompt
from strategy_agent.features.technical_indicators import TechnicalFeatureComputer
from strategy_agent.models import (
    ComposeContext,
    ComposeFeedback,
    FeatureVector,
    InstrumentRef,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradeDigestEntry,
)

TARGET_TOKENS_3_SYMBOLS = 1_500
ORIGIN_MS = DEFAULT_ORIGIN_MS
HOUR_MS = 3_600_000
SYMBOLS = DEFAULT_SYMBOLS
PROMPT_TEXT = load_template("balanced_trend")


def features_for(symbols: list[str], now_ms: int) -> tuple[list[FeatureVector], str]:
    """Features computed from the simulated market, as a real cycle would."""
    clock = ManualClock(now_ms)
    source = SimulatedMarketDataSource(symbols, seed=42, clock=clock, origin_ms=ORIGIN_MS)
    candles = source.get_recent_candles(symbols, "1h", 120)
    return TechnicalFeatureComputer(clock).compute_features(candles), "simulated market"


def constraints_for(symbols: list[str]) -> dict[str, Any]:
    """The limits as ``GuardrailLimits.model_dump()`` gives them (built by hand if absent)."""
    return {
        "symbols": symbols,
        "market_type": "swap",
        "allow_short": True,
        "max_leverage": 2.0,
        "max_positions": 3,
        "max_position_pct": 0.4,
        "max_position_qty": {symbols[0]: 0.5},
        "max_gross_exposure": 1.5,
        "max_net_exposure": 1.0,
        "min_confidence": 0.55,
        "cooldown_ms": 4 * HOUR_MS,
        "fee_bps": 10.0,
        "slippage_bps": 5.0,
    }


def feedback_for(context: ComposeContext) -> ComposeFeedback:
    """A previous plan with three rejected items, as the parser and guardrails reject them.

    An action word nobody accepts, a decimal comma, and a buy below min_confidence
    (on the first, second and last symbol; one symbol gets them all).
    """
    symbols = sorted(context.market_snapshot)
    first, second, last = symbols[0], symbols[min(1, len(symbols) - 1)], symbols[-1]
    reply = json.dumps(
        {
            "items": [
                {"instrument": first, "action": "liquidate", "confidence": 0.8},
                {"instrument": second, "action": "sell", "target_qty": "0,5", "confidence": 0.7},
                {"instrument": last, "action": "buy", "target_qty": 1, "confidence": 0.4},
            ],
            "notes": "take profit, trim, probe",
        }
    )
    positions = {s: p.quantity for s, p in context.portfolio.positions.items()}
    parsed = parse_plan(reply, context.ts, symbols, positions)
    _, outcomes = apply_guardrails(
        parsed.proposal.items,
        context.portfolio,
        context.market_snapshot,
        context.digest,
        GuardrailLimits.model_validate(context.constraints),
        SimulatedMarketRules(),
        context.compose_id,
        context.ts,
    )
    told = [o for o in [*outcomes, *parsed.rejected] if o.status in FEEDBACK_STATUSES]
    return ComposeFeedback(outcomes=told)


def context_for(count: int) -> tuple[ComposeContext, str]:
    symbols = list(SYMBOLS[:count])
    now_ms = ORIGIN_MS + 200 * HOUR_MS
    features, source = features_for(symbols, now_ms)
    prices = {f.instrument.symbol: f.values["close"] for f in features}
    positions = {}
    for symbol in symbols[:2]:
        mark = prices[symbol]
        qty = round(2_000 / mark, 6) * (1 if symbol == symbols[0] else -1)
        positions[symbol] = PositionSnapshot(
            instrument=InstrumentRef(symbol=symbol),
            quantity=qty,
            avg_price=mark * 0.985,
            mark_price=mark,
            unrealized_pnl=(mark - mark * 0.985) * qty,
            entry_ts=now_ms - 7 * HOUR_MS,
        )
    net = sum(p.quantity * (p.mark_price or 0.0) for p in positions.values())
    gross = sum(abs(p.quantity * (p.mark_price or 0.0)) for p in positions.values())
    portfolio = PortfolioView(
        ts=now_ms,
        cash=10_000.0 - net,
        positions=positions,
        gross_exposure=gross,
        net_exposure=net,
        total_value=10_030.0,
        total_unrealized_pnl=30.0,
        realized_pnl=41.5,
        fees_paid=8.2,
        initial_capital=10_000.0,
    )
    digest = TradeDigest(
        ts=now_ms,
        by_instrument={
            symbol: TradeDigestEntry(
                instrument=InstrumentRef(symbol=symbol),
                trade_count=3 + i,
                realized_pnl=25.0 - 20 * i,
                win_rate=0.6 - 0.1 * i,
                avg_holding_ms=9 * HOUR_MS,
                last_trade_ts=now_ms - 20 * HOUR_MS,
                recent_performance_score=0.4 - 0.3 * i,
                last_loss_ts=now_ms - 30 * HOUR_MS if i else None,
            )
            for i, symbol in enumerate(symbols[:3])
        },
    )
    context = ComposeContext(
        ts=now_ms,
        compose_id="bench",
        strategy_id="bench",
        features=features,
        portfolio=portfolio,
        digest=digest,
        prompt_text=PROMPT_TEXT,
        market_snapshot=prices,
        constraints=constraints_for(symbols),
    )
    context = context.model_copy(update={"feedback": feedback_for(context)})
    return context, source


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="openai/gpt-4o-mini", help="tokenizer to count with")
    parser.add_argument("--show", type=int, default=0, help="print the prompt for N symbols")
    args = parser.parse_args()
    litellm = load_litellm()

    print(f"prompt tokens per decision ({args.model} tokenizer)")
    print(
        f"{'symbols':>7} {'system':>7} {'user':>6} {'total':>6} {'naive':>6} {'ratio':>6}  features"
    )
    totals: dict[int, int] = {}
    for count in (1, 3, 10):
        context, source = context_for(count)
        system = build_system_prompt(context.constraints)
        user = render_context(context)
        naive_user = json.dumps(context.model_dump(mode="json"))
        system_tokens = litellm.token_counter(model=args.model, text=system)
        user_tokens = litellm.token_counter(model=args.model, text=user)
        total = litellm.token_counter(
            model=args.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        )
        naive = litellm.token_counter(
            model=args.model,
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": naive_user},
            ],
        )
        totals[count] = total
        print(
            f"{count:>7} {system_tokens:>7} {user_tokens:>6} {total:>6} {naive:>6} "
            f"{total / naive:>6.2f}  {source}"
        )
        if args.show == count:
            print(f"\n--- system ---\n{system}\n--- user ---\n{user}\n")
    verdict = "ok" if totals[3] <= TARGET_TOKENS_3_SYMBOLS else "OVER"
    print(f"3 symbols: {totals[3]} tokens (target <= {TARGET_TOKENS_3_SYMBOLS}): {verdict}")
    return 0 if totals[3] <= TARGET_TOKENS_3_SYMBOLS else 1


if __name__ == "__main__":
    raise SystemExit(main())
