"""Built-in rules: deterministic policies that answer like an LLM would.

Each rule returns the same ``LlmPlanProposal`` an LLM does (one item per
symbol, each with a rationale), so the guardrails and the history treat both
alike. The rules read the limits from ``context.constraints`` (the dump of
``GuardrailLimits``) and size every long (or short) position alike:

    target notional = 0.95 x min(max_position_pct, max_gross_exposure / slots) x equity

where ``slots = min(len(symbols), max_positions)``, so equal positions in
every symbol fit the gross cap; the quantity, in contracts, is that notional
over the value of one contract (latest close x contract size from the market
rules, 1 without them), also kept under ``max_position_qty``. An item is ``noop`` when the
current position already matches its target within 5 %. Rules are certain of
what they say: their confidence is 1.0.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

from pydantic import ValidationError

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.data.market_rules import contract_size_of, notional
from strategy_agent.decision.guardrail_checks import is_open
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.interfaces import Policy, PolicyDecision
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import (
    ComposeContext,
    FeatureVector,
    InstrumentRef,
    LlmDecisionItem,
    LlmPlanProposal,
)

SIZE_FRACTION = 0.95
MATCH_TOLERANCE = 0.05
RULE_CONFIDENCE = 1.0


@dataclass(frozen=True)
class SymbolView:
    """What a rule needs to decide one symbol."""

    symbol: str
    values: dict[str, float]
    price: float | None
    current: float
    long_qty: float  # the sized target of a full position (0 when no price)
    allow_short: bool


def limits_from_context(context: ComposeContext) -> GuardrailLimits:
    """The guardrail limits from ``context.constraints``; ``ConfigurationError`` if absent."""
    if context.constraints is None:
        raise ConfigurationError(
            "context.constraints is empty; built-in rules need GuardrailLimits.model_dump() there "
            "(the composer fills it in)"
        )
    try:
        return GuardrailLimits.model_validate(context.constraints)
    except ValidationError as error:
        raise ConfigurationError(
            f"context.constraints is not a GuardrailLimits dump: {error}"
        ) from error


def position_size(
    limits: GuardrailLimits, equity: float, price: float, symbol: str, contract_size: float = 1.0
) -> float:
    """Contracts of one full position in ``symbol`` (see the module doc).

    ``equity`` and ``price`` are in the quote currency; ``contract_size`` in base
    units per contract.
    """
    if not price > 0 or not equity > 0:
        return 0.0
    slots = max(1, min(len(limits.symbols), limits.max_positions))
    weight = min(limits.max_position_pct, limits.max_gross_exposure / slots)
    quantity = SIZE_FRACTION * weight * equity / notional(1.0, price, contract_size)
    cap = limits.max_position_qty.get(symbol)
    if cap is not None:
        quantity = min(quantity, SIZE_FRACTION * cap)
    return quantity


def decision_toward(view: SymbolView, target: float, rationale: str) -> LlmDecisionItem:
    """An item moving ``view.current`` to ``target``; noop when within 5 % already."""
    current = view.current
    instrument = InstrumentRef(symbol=view.symbol)
    if _matches(current, target):
        return _noop(view, f"{rationale}; position {current:.6g} already matches")
    action = "flat" if target == 0 else ("buy" if target > current else "sell")
    return LlmDecisionItem(
        instrument=instrument,
        action=action,
        target_qty=target,
        confidence=RULE_CONFIDENCE,
        rationale=rationale,
    )


def _noop(view: SymbolView, rationale: str) -> LlmDecisionItem:
    return LlmDecisionItem(
        instrument=InstrumentRef(symbol=view.symbol),
        action="noop",
        target_qty=view.current,
        confidence=RULE_CONFIDENCE,
        rationale=rationale,
    )


def _matches(current: float, target: float) -> bool:
    if target == 0:
        return not is_open(current)
    return abs(current - target) <= MATCH_TOLERANCE * abs(target)


def _latest_features(features: list[FeatureVector]) -> dict[str, FeatureVector]:
    latest: dict[str, FeatureVector] = {}
    for vector in features:
        symbol = vector.instrument.symbol
        if symbol not in latest or vector.ts >= latest[symbol].ts:
            latest[symbol] = vector
    return latest


class RulePolicy(Policy):
    """Shared plumbing of the rules: limits, sizing, one item per symbol.

    ``rules`` give the contract size each position is sized with (1 without them).
    """

    name = "rule"

    def __init__(self, rules: MarketRulesProvider | None = None) -> None:
        self.rules = rules

    def propose(self, context: ComposeContext) -> PolicyDecision:
        limits = limits_from_context(context)
        portfolio = context.portfolio
        equity = portfolio.total_value if portfolio.total_value is not None else portfolio.cash
        features = _latest_features(context.features)
        items = []
        for symbol in limits.symbols:
            vector = features.get(symbol)
            values = dict(vector.values) if vector else {}
            price = context.market_snapshot.get(symbol) or values.get("close")
            position = portfolio.positions.get(symbol)
            view = SymbolView(
                symbol=symbol,
                values=values,
                price=price,
                current=position.quantity if position else 0.0,
                long_qty=position_size(
                    limits, equity, price or 0.0, symbol, contract_size_of(self.rules, symbol)
                ),
                allow_short=limits.allow_short,
            )
            if price is None or not price > 0:
                items.append(_noop(view, f"no price for {symbol} yet; wait"))
            else:
                items.append(self.decide(view))
        proposal = LlmPlanProposal(
            ts=context.ts,
            items=items,
            notes=f"built-in rule {self.name}",
            model_meta={"policy": self.name, "provider": "builtin"},
        )
        return PolicyDecision(proposal=proposal, audit={"provider": "builtin", "model": self.name})

    @abstractmethod
    def decide(self, view: SymbolView) -> LlmDecisionItem:
        """The item for one symbol that has a price."""


class BuyAndHoldPolicy(RulePolicy):
    """Buy an equal-weight long in every symbol once, then hold it forever."""

    name = "buy_and_hold"

    def decide(self, view: SymbolView) -> LlmDecisionItem:
        if view.current > 0 and is_open(view.current):
            return _noop(view, f"buy and hold: holding {view.current:.6g}")
        return decision_toward(
            view, view.long_qty, f"buy and hold: buy an equal-weight long of {view.long_qty:.6g}"
        )


class EmaCrossoverPolicy(RulePolicy):
    """Long while EMA 12 is above EMA 26, flat (or short, when allowed) otherwise.

    With ``trend_filter`` a long also needs the close above EMA 50 (and a short
    the close below it), when EMA 50 is known.
    """

    name = "ema_crossover"

    def __init__(
        self, trend_filter: bool = False, rules: MarketRulesProvider | None = None
    ) -> None:
        super().__init__(rules)
        self.trend_filter = trend_filter

    def decide(self, view: SymbolView) -> LlmDecisionItem:
        fast, slow = view.values.get("ema_12"), view.values.get("ema_26")
        if fast is None or slow is None:
            return _noop(view, "ema crossover: ema_12/ema_26 not known yet (warm-up); wait")
        trend = self._trend(view)
        relation = f"ema_12 {fast:.6g} {'>' if fast > slow else '<='} ema_26 {slow:.6g}"
        if fast > slow and trend >= 0:
            return decision_toward(view, view.long_qty, f"{relation}: uptrend, go long")
        if fast < slow and view.allow_short and trend <= 0:
            return decision_toward(view, -view.long_qty, f"{relation}: downtrend, go short")
        return decision_toward(view, 0.0, f"{relation}: no uptrend{self._note(trend)}, stay flat")

    def _trend(self, view: SymbolView) -> int:
        """+1 close above ema_50, -1 below, 0 when unknown or the filter is off."""
        close, anchor = view.values.get("close", view.price), view.values.get("ema_50")
        if not self.trend_filter or anchor is None or close is None:
            return 0
        return 1 if close > anchor else -1

    def _note(self, trend: int) -> str:
        return "" if trend == 0 else f" (close {'above' if trend > 0 else 'below'} ema_50)"


class RsiReversionPolicy(RulePolicy):
    """Buy when RSI 14 is below 30 (oversold), go flat above 55, hold in between."""

    name = "rsi_reversion"
    BUY_BELOW = 30.0
    EXIT_ABOVE = 55.0

    def decide(self, view: SymbolView) -> LlmDecisionItem:
        rsi = view.values.get("rsi_14")
        if rsi is None:
            return _noop(view, "rsi reversion: rsi_14 not known yet (warm-up); wait")
        if rsi < self.BUY_BELOW:
            return decision_toward(
                view, view.long_qty, f"rsi_14 {rsi:.1f} < {self.BUY_BELOW:g}: oversold, buy"
            )
        if rsi > self.EXIT_ABOVE:
            return decision_toward(
                view, 0.0, f"rsi_14 {rsi:.1f} > {self.EXIT_ABOVE:g}: rebound done, go flat"
            )
        return _noop(
            view, f"rsi_14 {rsi:.1f} between {self.BUY_BELOW:g} and {self.EXIT_ABOVE:g}: hold"
        )


class NoopPolicy(Policy):
    """Never trade: one noop per symbol (the default fallback)."""

    name = "noop"

    def propose(self, context: ComposeContext) -> PolicyDecision:
        try:
            symbols = limits_from_context(context).symbols
        except ConfigurationError:
            symbols = sorted(_latest_features(context.features))
        positions = context.portfolio.positions
        items = [
            LlmDecisionItem(
                instrument=InstrumentRef(symbol=symbol),
                action="noop",
                target_qty=positions[symbol].quantity if symbol in positions else 0.0,
                confidence=RULE_CONFIDENCE,
                rationale="noop policy: never trades",
            )
            for symbol in symbols
        ]
        proposal = LlmPlanProposal(
            ts=context.ts,
            items=items,
            notes="built-in rule noop",
            model_meta={"policy": self.name, "provider": "builtin"},
        )
        return PolicyDecision(proposal=proposal, audit={"provider": "builtin", "model": self.name})


BUILTIN_POLICIES: dict[str, type[Policy]] = {
    "buy_and_hold": BuyAndHoldPolicy,
    "ema_crossover": EmaCrossoverPolicy,
    "rsi_reversion": RsiReversionPolicy,
    "noop": NoopPolicy,
}


def builtin_policy(name: str, rules: MarketRulesProvider | None = None) -> Policy:
    """A new built-in policy by name, sizing with ``rules``' contract sizes.

    ``ConfigurationError`` lists the valid names.
    """
    try:
        policy_class = BUILTIN_POLICIES[name.strip()]
    except KeyError:
        valid = ", ".join(sorted(BUILTIN_POLICIES))
        raise ConfigurationError(f"unknown built-in policy {name!r}; use one of: {valid}") from None
    if issubclass(policy_class, RulePolicy):
        return policy_class(rules=rules)
    return policy_class()
