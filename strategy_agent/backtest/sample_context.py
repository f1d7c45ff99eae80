"""Representative decision cycles of a config, for estimating its prompt size before a run.

Built from the same parts a real cycle uses: the simulated market's closed
candles for the config's symbols, interval and lookback; the technical
features; the guardrail limits as constraints; the strategy's prompt
(``prompt_choice``); and the exact messages ``LlmPolicy.messages_for`` sends.

A backtest's cycles lie between two states, whose prompts differ by 10-15 %:
flat (no position, no closed trade: the first cycles, or a strategy that
rarely trades) and invested (positions held in half the symbols, rounded up, at
half the position cap; one closed trade per symbol in the digest). The
estimate takes the mean of the two. Neither carries feedback on a previous
plan (a few lines, only after a rejection or a clamp).
"""

from __future__ import annotations

from strategy_agent.clock import ManualClock
from strategy_agent.core import closed_candles
from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.prompt_choice import prompt_choice
from strategy_agent.features.technical_indicators import TechnicalFeatureComputer
from strategy_agent.models import (
    ComposeContext,
    InstrumentRef,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradeDigestEntry,
    UserRequest,
    interval_ms,
)

# Cycles after the lookback is full at which the sample is taken (indicators warmed up).
_SAMPLE_CYCLE = 48


def representative_contexts(request: UserRequest) -> tuple[ComposeContext, ComposeContext]:
    """The flat and the invested ``ComposeContext`` of ``request`` (see module doc)."""
    trading = request.trading
    step_ms = interval_ms(trading.interval)
    now_ms = DEFAULT_ORIGIN_MS + (trading.lookback + _SAMPLE_CYCLE) * step_ms
    clock = ManualClock(now_ms)
    source = SimulatedMarketDataSource(
        trading.symbols, seed=trading.seed, clock=clock, origin_ms=DEFAULT_ORIGIN_MS
    )
    candles = closed_candles(
        source.get_recent_candles(trading.symbols, trading.interval, trading.lookback), now_ms
    )
    features = TechnicalFeatureComputer(clock).compute_features(candles)
    prices = {f.instrument.symbol: float(f.values["close"]) for f in features}
    limits = GuardrailLimits.from_config(trading, request.exchange, SimulatedMarketRules())
    capital = trading.initial_capital
    flat = ComposeContext(
        ts=now_ms,
        compose_id="estimate",
        strategy_id="estimate",
        features=features,
        portfolio=PortfolioView(
            ts=now_ms,
            cash=capital,
            gross_exposure=0.0,
            net_exposure=0.0,
            total_value=capital,
            total_unrealized_pnl=0.0,
            available_cash=capital,
            initial_capital=capital,
        ),
        digest=TradeDigest(ts=now_ms),
        prompt_text=prompt_choice(trading, uses_prompt=not request.llm.is_builtin).text,
        market_snapshot=prices,
        constraints=limits.model_dump(mode="json"),
        interval=trading.interval,
    )
    invested = flat.model_copy(
        update={
            "portfolio": _portfolio(request, prices, now_ms, step_ms),
            "digest": _digest(list(prices), now_ms, step_ms),
        }
    )
    return flat, invested


def representative_prompts(request: UserRequest) -> list[list[dict[str, str]]]:
    """The messages ``LlmPolicy`` would send for the flat and the invested cycle."""
    from strategy_agent.decision.llm_policy import LlmPolicy
    from strategy_agent.decision.system_prompt import build_system_prompt

    contexts = representative_contexts(request)
    policy = LlmPolicy(request.llm, build_system_prompt(contexts[0].constraints), None)
    return [policy.messages_for(context) for context in contexts]


def _portfolio(
    request: UserRequest, prices: dict[str, float], now_ms: int, step_ms: int
) -> PortfolioView:
    trading = request.trading
    capital = trading.initial_capital
    held = sorted(prices)[: (len(prices) + 1) // 2]
    positions: dict[str, PositionSnapshot] = {}
    for symbol in held:
        mark = prices[symbol]
        entry = mark * 0.99
        qty = float(f"{capital * trading.max_position_pct * 0.5 / mark:.6g}")
        positions[symbol] = PositionSnapshot(
            instrument=InstrumentRef(symbol=symbol),
            quantity=qty,
            avg_price=entry,
            mark_price=mark,
            unrealized_pnl=(mark - entry) * qty,
            notional=qty * mark,
            entry_ts=now_ms - 6 * step_ms,
            pnl_pct=(mark / entry - 1) * 100,
            trade_type="long",
        )
    exposure = sum(p.quantity * prices[s] for s, p in positions.items())
    unrealized = sum(p.unrealized_pnl or 0.0 for p in positions.values())
    return PortfolioView(
        ts=now_ms,
        cash=capital - exposure,
        positions=positions,
        gross_exposure=exposure,
        net_exposure=exposure,
        total_value=capital + unrealized,
        total_unrealized_pnl=unrealized,
        available_cash=capital - exposure,
        realized_pnl=12.5,
        fees_paid=4.2,
        initial_capital=capital,
    )


def _digest(symbols: list[str], now_ms: int, step_ms: int) -> TradeDigest:
    return TradeDigest(
        ts=now_ms,
        by_instrument={
            symbol: TradeDigestEntry(
                instrument=InstrumentRef(symbol=symbol),
                trade_count=1,
                realized_pnl=6.25,
                win_rate=1.0,
                avg_holding_ms=9 * step_ms,
                last_trade_ts=now_ms - 20 * step_ms,
                recent_performance_score=0.3,
            )
            for symbol in symbols
        },
    )
