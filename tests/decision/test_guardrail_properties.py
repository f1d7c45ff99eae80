"""Guardrail invariants under hypothesis: whatever the plan, the resulting book keeps every limit.

Portfolios are drawn within the limits; plans are arbitrary (unknown symbols,
every action, huge/negative/zero targets, any confidence, duplicates). The
resulting positions are the current ones plus the signed instruction
quantities, applied in instruction order. Every symbol has a contract size drawn
from 0.0001 to 100: quantities are in contracts, worth qty x contract size x price.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategy_agent.clock import ManualClock
from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.decision.guardrail_checks import is_open
from strategy_agent.decision.guardrails import GuardrailLimits, apply_guardrails
from strategy_agent.errors import ConfigurationError
from strategy_agent.execution.paper_trading import PaperExecutionGateway
from strategy_agent.models import (
    Fill,
    GuardrailOutcome,
    InstrumentRef,
    LlmDecisionItem,
    MarketRules,
    PortfolioView,
    TradeDigest,
    TradeDigestEntry,
    TradeInstruction,
)
from strategy_agent.portfolio.ledger import Ledger

SYMBOLS = ["AAA/USDT", "BBB/USDT", "CCC/USDT"]
UNKNOWN = "ZZZ/USDT"
NOW = 1_700_000_000_000
HOUR = 3_600_000
TOL = 1e-9


class TableRules(MarketRulesProvider):
    def __init__(self, table: dict[str, MarketRules]) -> None:
        self.table = table

    def rules_for(self, symbol: str) -> MarketRules:
        try:
            return self.table[symbol]
        except KeyError:
            raise ConfigurationError(f"no market rules for {symbol!r}") from None


@dataclass
class Scenario:
    limits: GuardrailLimits
    prices: dict[str, float]
    rules: dict[str, MarketRules]
    positions: dict[str, float]
    cash: float
    equity: float
    items: list[LlmDecisionItem]
    digest: TradeDigest

    @property
    def unit_values(self) -> dict[str, float]:
        """Quote-currency value of one contract of each symbol: price x contract size."""
        return {s: self.prices[s] * self.rules[s].contract_size for s in SYMBOLS}

    def ledger(self) -> Ledger:
        """A ledger holding the scenario's book (positions bought without fees)."""
        ledger = Ledger(
            initial_capital=self.equity,
            market_type=self.limits.market_type,
            max_leverage=self.limits.max_leverage,
            rules=TableRules(self.rules),
        )
        for symbol, quantity in self.positions.items():
            if quantity == 0:
                continue  # a flat book entry is no fill
            fill = Fill(
                ts=NOW - 1,
                symbol=symbol,
                side="buy" if quantity > 0 else "sell",
                quantity=abs(quantity),
                price=self.prices[symbol],
                fee=0.0,
            )
            ledger.apply(fill, enforce=False)
        ledger.mark(self.prices, NOW)
        return ledger


prices_st = st.floats(0.5, 50_000, allow_nan=False)
step_st = st.sampled_from([1.0, 0.5, 0.25, 0.1, 0.01, 0.001, 1e-5])
contract_size_st = st.one_of(
    st.just(1.0),
    st.sampled_from([1e-4, 0.001, 0.01, 0.1, 10.0, 100.0]),
    st.floats(1e-4, 100, allow_nan=False),
)


@st.composite
def limits_st(draw: st.DrawFn, units: dict[str, float]) -> GuardrailLimits:
    """Limits; ``units`` is equity / unit value per symbol, to size the quantity caps."""
    market = draw(st.sampled_from(["spot", "margin", "swap"]))
    spot = market == "spot"
    leverage = 1.0 if spot else draw(st.floats(1.0, 5.0))
    gross = min(draw(st.one_of(st.just(leverage), st.floats(0.2, 5.0))), leverage)
    capped = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=2))
    caps = {symbol: draw(st.floats(0.05, 2.0)) * units[symbol] for symbol in capped}
    # Tight settings often: one position may reach the gross cap, net below gross.
    pct = draw(st.one_of(st.floats(0.05, 2.0), st.just(gross), st.just(2.0)))
    net = draw(st.one_of(st.just(gross), st.floats(0.1, gross)))
    return GuardrailLimits(
        symbols=SYMBOLS,
        market_type=market,
        allow_short=not spot and draw(st.sampled_from([True, True, False])),
        max_leverage=leverage,
        max_positions=draw(st.integers(1, 3)),
        max_position_pct=pct,
        max_position_qty=caps,
        max_gross_exposure=gross,
        max_net_exposure=net,
        min_confidence=draw(st.sampled_from([0.0, 0.0, 0.5])),
        cooldown_ms=draw(st.sampled_from([0, 0, HOUR])),
        fee_bps=draw(st.sampled_from([0.0, 5.0, 10.0, 50.0])),
        slippage_bps=draw(st.sampled_from([0.0, 2.0, 5.0, 50.0])),
    )


@st.composite
def rules_st(draw: st.DrawFn, symbol: str, price: float, contract_size: float) -> MarketRules:
    """Rules whose lot is worth at most about 100 quote units (coarser lots are rare)."""
    step = draw(step_st)
    while step > 1e-5 and step * price * contract_size > 100:
        step /= 10
    return MarketRules(
        symbol=symbol,
        qty_step=step,
        min_qty=step * draw(st.integers(0, 3)),
        max_qty=draw(st.none() | st.floats(0.5, 1e6)),
        min_notional=draw(st.sampled_from([0.0, 1.0, 5.0, 20.0])),
        contract_size=contract_size,
    )


@st.composite
def book_st(
    draw: st.DrawFn,
    limits: GuardrailLimits,
    unit_values: dict[str, float],
    steps: dict[str, float],
    base: float,
) -> tuple[dict[str, float], float, float]:
    """Positions, cash and equity within every limit; ``base`` is spot cash or margin equity.

    ``unit_values`` are the values of one contract (price x contract size).
    """
    held = draw(st.permutations(SYMBOLS))[: draw(st.integers(0, limits.max_positions))]
    slots = max(1, len(held))
    weight = min(limits.max_position_pct, limits.max_gross_exposure / slots)
    spot = limits.market_type == "spot"
    low = 0.0 if not limits.allow_short else -1.0
    positions: dict[str, float] = {}
    for symbol in held:
        quantity = draw(st.floats(low, 1.0)) * weight * base / unit_values[symbol]
        cap = limits.max_position_qty.get(symbol)
        if cap is not None:
            quantity = max(-cap, min(cap, quantity))
        if draw(st.booleans()):  # on the lot grid, or any float
            quantity = math.copysign(
                math.floor(abs(quantity) / steps[symbol]) * steps[symbol], quantity
            )
        if quantity != 0:
            positions[symbol] = quantity
    notional = sum(q * unit_values[s] for s, q in positions.items())
    net_cap = limits.max_net_exposure * base
    if abs(notional) > net_cap:  # scale down: hedged books keep large legs, small net
        positions = {s: q * net_cap / abs(notional) for s, q in positions.items()}
        notional = sum(q * unit_values[s] for s, q in positions.items())
    if spot:
        return positions, base, base + notional
    return positions, base - notional, base


FRACTIONS = st.sampled_from([-3.0, -1.5, -1.0, -0.5, -0.2, -0.05, 0.05, 0.2, 0.5, 1.0, 1.5, 3.0])


@st.composite
def item_st(draw: st.DrawFn, symbol: str, current: float, unit: float) -> LlmDecisionItem:
    """An item whose target is usually sized in equity/price units, its action usually coherent."""
    target = draw(
        st.one_of(
            FRACTIONS.map(lambda fraction: fraction * unit),
            FRACTIONS.map(lambda fraction: fraction * unit),
            st.floats(-3.0, 3.0).map(lambda fraction: fraction * unit),
            st.floats(-0.01, 0.01).map(lambda fraction: current + fraction * unit),
            st.floats(-1e6, 1e6),
            st.sampled_from([0.0, -0.0, 1e-9, current, -current, 1e12, -1e12, 1e300, -1e300]),
        )
    )
    coherent = "noop" if target == current else ("buy" if target > current else "sell")
    action = draw(st.sampled_from([*[coherent] * 6, "flat", "noop", "buy", "sell"]))
    return LlmDecisionItem(
        instrument=InstrumentRef(symbol=symbol),
        action=action,
        target_qty=target,
        confidence=draw(st.sampled_from([None, 0.0, 0.4, 0.5, 0.9, 1.0])),
    )


@st.composite
def plan_st(
    draw: st.DrawFn, positions: dict[str, float], unit_values: dict[str, float], equity: float
) -> list[LlmDecisionItem]:
    """Mostly one item per symbol, plus sometimes unknown symbols and repeats (sized in contracts)."""
    symbols = draw(st.permutations(SYMBOLS))[: draw(st.sampled_from([1, 2, 3, 3, 3, 3]))]
    if draw(st.integers(0, 4)) == 0:
        symbols.append(UNKNOWN)
    items = [
        draw(item_st(s, positions.get(s, 0.0), max(equity, 1.0) / unit_values.get(s, 1.0)))
        for s in symbols
    ]
    if items and draw(st.integers(0, 3)) == 0:  # exact repeats, or another item for a symbol
        items += draw(st.lists(st.sampled_from(items), max_size=2))
        extra = draw(st.sampled_from(items)).instrument.symbol
        items.append(draw(item_st(extra, positions.get(extra, 0.0), 1.0)))
    return items


@st.composite
def scenario_st(draw: st.DrawFn) -> Scenario:
    prices = {s: draw(prices_st) for s in SYMBOLS}
    sizes = {s: draw(contract_size_st) for s in SYMBOLS}
    unit_values = {s: prices[s] * sizes[s] for s in SYMBOLS}
    base = 10 ** draw(st.floats(2.0, 6.0))  # spot: cash; margin/swap: equity
    limits = draw(limits_st({s: base / v for s, v in unit_values.items()}))
    rules = {s: draw(rules_st(s, prices[s], sizes[s])) for s in SYMBOLS}
    steps = {s: r.qty_step for s, r in rules.items()}
    positions, cash, equity = draw(book_st(limits, unit_values, steps, base))
    items = draw(plan_st(positions, unit_values, equity))
    losers = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=2))
    digest = TradeDigest(
        ts=NOW,
        by_instrument={
            s: TradeDigestEntry(instrument=InstrumentRef(symbol=s), last_loss_ts=NOW - 1000)
            for s in losers
        },
    )
    return Scenario(limits, prices, rules, positions, cash, equity, items, digest)


def view_of(scenario: Scenario) -> PortfolioView:
    return scenario.ledger().get_view(NOW)


def guard(scenario: Scenario) -> tuple[list[TradeInstruction], list[GuardrailOutcome]]:
    return apply_guardrails(
        scenario.items,
        view_of(scenario),
        scenario.prices,
        scenario.digest,
        scenario.limits,
        TableRules(scenario.rules),
        "c1",
        NOW,
    )


def close_to_multiple(quantity: float, step: float) -> bool:
    lots = quantity / step
    return abs(lots - round(lots)) <= 1e-6 * max(1.0, lots)


def check_order_shape(scenario: Scenario, order: TradeInstruction, current: float) -> float:
    """Lot, minimums and max_qty of one order; returns the new position."""
    symbol = order.instrument.symbol
    rules = scenario.rules[symbol]
    signed = order.quantity if order.side == "buy" else -order.quantity
    new = current + signed
    assert order.quantity > 0
    if rules.max_qty is not None:
        assert order.quantity <= rules.max_qty
    full_close = new == 0.0 and order.quantity == abs(current)
    if not full_close:
        assert close_to_multiple(order.quantity, rules.qty_step), (order, rules)
        assert order.quantity >= rules.min_qty
        assert order.quantity * scenario.unit_values[symbol] >= rules.min_notional
    return new


def cash_delta(scenario: Scenario, order: TradeInstruction) -> float:
    price = scenario.unit_values[order.instrument.symbol]  # of one contract
    fee, slip = scenario.limits.fee_bps / 1e4, scenario.limits.slippage_bps / 1e4
    if order.side == "buy":
        return -order.quantity * price * (1 + slip) * (1 + fee)
    return order.quantity * price * (1 - slip) * (1 - fee)


def check_outcomes(
    scenario: Scenario, instructions: list[TradeInstruction], outcomes: list[GuardrailOutcome]
) -> None:
    assert len(outcomes) == len(scenario.items)
    for outcome, plan_item in zip(outcomes, scenario.items, strict=True):
        assert outcome.symbol == plan_item.instrument.symbol
        assert outcome.action == plan_item.action
        assert (outcome.status == "accepted") == (not outcome.reasons)
    with_orders = [o for o in outcomes if o.order_qty is not None]
    assert all(o.status != "rejected" for o in with_orders)
    ordered: dict[str, float] = {}
    for instruction in instructions:
        symbol = instruction.instrument.symbol
        ordered[symbol] = ordered.get(symbol, 0.0) + instruction.quantity
    # One outcome with orders per symbol; a flip's two orders (close, open) add up to it.
    assert sorted(o.symbol for o in with_orders) == sorted(ordered)
    for outcome in with_orders:
        assert math.isclose(outcome.order_qty or 0.0, ordered[outcome.symbol], rel_tol=1e-9)
    ids = [i.instruction_id for i in instructions]
    assert len(set(ids)) == len(ids)
    assert {i.instrument.symbol for i in instructions} <= set(SYMBOLS)


def check_limits(scenario: Scenario, final: dict[str, float], cash: float, spent: float) -> None:
    limits, equity = scenario.limits, scenario.equity
    slack = TOL * max(1.0, abs(equity))
    for symbol in SYMBOLS:
        quantity = final.get(symbol, 0.0)
        notional = abs(quantity) * scenario.unit_values[symbol]
        cap = limits.max_position_qty.get(symbol)
        if cap is not None:
            assert abs(quantity) <= cap * (1 + TOL), (symbol, quantity, cap)
        assert notional <= limits.max_position_pct * max(equity, 0.0) + slack
        if not limits.allow_short:
            assert quantity >= -TOL * max(1.0, abs(scenario.positions.get(symbol, 0.0)))
    gross = sum(abs(q) * scenario.unit_values[s] for s, q in final.items())
    net = sum(q * scenario.unit_values[s] for s, q in final.items())
    # Gross is held against the equity left after this plan's fees and slippage.
    equity_after = cash + net
    assert gross <= limits.max_gross_exposure * equity_after + slack, (gross, equity_after)
    assert abs(net) <= limits.max_net_exposure * equity + slack
    assert sum(1 for q in final.values() if abs(q) > 1e-12) <= limits.max_positions
    if limits.market_type == "spot":
        assert cash >= -TOL * max(1.0, spent)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_st())
def test_guarded_plans_keep_every_limit(scenario: Scenario) -> None:
    instructions, outcomes = guard(scenario)
    check_outcomes(scenario, instructions, outcomes)
    final = dict(scenario.positions)
    cash, spent = scenario.cash, 0.0
    for order in instructions:
        symbol = order.instrument.symbol
        final[symbol] = check_order_shape(scenario, order, final.get(symbol, 0.0))
        delta = cash_delta(scenario, order)
        cash += delta
        spent += abs(delta)
        if scenario.limits.market_type == "spot":  # orders run in this order: cash never < 0
            assert cash >= -TOL * max(1.0, spent)
    check_limits(scenario, final, cash, spent)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_st())
def test_paper_exchange_fills_every_guarded_instruction(scenario: Scenario) -> None:
    instructions, _ = guard(scenario)
    gateway = PaperExecutionGateway(
        scenario.ledger(),
        scenario.prices.get,
        ManualClock(NOW),
        fee_bps=scenario.limits.fee_bps,
        slippage_bps=scenario.limits.slippage_bps,
    )
    results = gateway.execute(instructions)
    refused = [
        (r.symbol, r.side, r.requested_qty, r.reason) for r in results if r.status != "filled"
    ]
    assert refused == []


def exits_of(scenario: Scenario) -> list[tuple[int, float, bool]]:
    """Plan items that reduce or close an open position (flips too): index, position, full close.

    Only coherent items (``flat``, or a sell below a long / buy above a short) for a
    known symbol with one item in the plan: the others are rejected for what they say.
    """
    per_symbol = Counter(plan_item.instrument.symbol for plan_item in scenario.items)
    exits = []
    for index, plan_item in enumerate(scenario.items):
        symbol = plan_item.instrument.symbol
        current = scenario.positions.get(symbol, 0.0)
        if symbol not in SYMBOLS or per_symbol[symbol] > 1 or not is_open(current):
            continue
        target = 0.0 if plan_item.action == "flat" else plan_item.target_qty
        toward_zero = "sell" if current > 0 else "buy"
        coherent = plan_item.action in ("flat", toward_zero)
        if coherent and (target - current) * current < 0:
            exits.append((index, current, target * current <= 0))
    return exits


# Why an exit may still send nothing: the exchange's lot and minimums (a partial
# reduction only), or the net cap when closing one leg of a hedge raises net exposure.
EXIT_LIMITS = ("lot", "min_qty", "min_notional", "max_net_exposure")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_st())
def test_an_exit_is_never_lost(scenario: Scenario) -> None:
    instructions, outcomes = guard(scenario)
    position = dict(scenario.positions)
    increased = False
    for order in instructions:  # every reduction goes out before any new exposure
        symbol = order.instrument.symbol
        before = position.get(symbol, 0.0)
        position[symbol] = before + (order.quantity if order.side == "buy" else -order.quantity)
        reduces = abs(position[symbol]) < abs(before) and position[symbol] * before >= 0
        assert not (reduces and increased), instructions
        increased = increased or not reduces
    for index, current, full_close in exits_of(scenario):
        symbol = scenario.items[index].instrument.symbol
        orders = [order for order in instructions if order.instrument.symbol == symbol]
        reasons = outcomes[index].reasons
        if not orders:
            max_qty = scenario.rules[symbol].max_qty
            whole = full_close and (max_qty is None or max_qty >= abs(current))
            allowed = ("max_net_exposure",) if whole else EXIT_LIMITS
            assert any(key in reason for reason in reasons for key in allowed), reasons
            continue
        first = orders[0]  # the reduction (or a flip's closing leg) comes first
        assert first.side == ("sell" if current > 0 else "buy"), (first, current)
        assert first.quantity <= abs(current) * (1 + 1e-12), (first, current)
