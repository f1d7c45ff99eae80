"""Market rules as data: the simulated market's table, a static table, ccxt conversion.

Quantities in ``MarketRules`` are in the market's own order unit, as ccxt uses
it: base currency on spot, contracts on derivatives (``contract_size`` converts
contracts to base units). ``round_qty_down`` is the one function that rounds a
quantity to a lot size.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import MarketRules

PrecisionMode = Literal["tick_size", "decimal_places"]

# Float noise forgiven, in steps: 0.7 - 0.4 == 0.29999999999999993 is 3 steps of 0.1.
_STEP_TOLERANCE = Decimal("1e-9")


def quote_of(symbol: str) -> str:
    """Quote currency of a ccxt symbol (``BTC/USDT`` and ``BTC/USDT:USDT`` give ``USDT``)."""
    if "/" not in symbol:
        return "quote"
    return symbol.split("/", 1)[1].split(":", 1)[0]


def notional(quantity: float, price: float, contract_size: float = 1.0) -> float:
    """Value in the quote currency of ``quantity`` contracts at ``price``, signed like ``quantity``.

    ``quantity x contract_size x price`` (the unit value ``price x contract_size``
    first, as the guardrails count it). The one formula that turns a size into
    money; spot has contract size 1 (the quantity is in base units).
    """
    return quantity * (price * contract_size)


def contract_size_of(rules: MarketRulesProvider | None, symbol: str) -> float:
    """Base units per contract of ``symbol``: 1 without rules or for a symbol they do not know."""
    if rules is None:
        return 1.0
    try:
        return rules.rules_for(symbol).contract_size
    except ConfigurationError:
        return 1.0


class RecordedContractSizes(MarketRulesProvider):
    """The contract sizes a strategy's cycles recorded (``{symbol: base units per contract}``).

    For readers of history (the pages), which must value positions as the
    ledger did without loading an exchange's markets. A symbol it does not
    know raises ``ConfigurationError``, so ``contract_size_of`` gives 1 for it.
    """

    def __init__(self, sizes: Mapping[str, float]) -> None:
        self.sizes = dict(sizes)

    def rules_for(self, symbol: str) -> MarketRules:
        if symbol not in self.sizes:
            raise ConfigurationError(f"no recorded contract size for {symbol}")
        # only the contract size is recorded; the lot step is not read by a replayed ledger
        return MarketRules(symbol=symbol, qty_step=1e-12, contract_size=self.sizes[symbol])


def step_decimals(step: float) -> int:
    """Decimal places of a step as written (``1e-05`` -> 5, ``0.25`` -> 2, ``10`` -> 0)."""
    exponent = Decimal(repr(float(step))).normalize().as_tuple().exponent
    return max(-int(exponent), 0)


def round_qty_down(qty: float, step: float) -> float:
    """Round a quantity's magnitude down to a whole number of ``step`` (sign kept).

    Works on the shortest decimal form of both floats, so ``0.3 / 0.1`` is 3
    steps, and forgives float noise below 1e-9 step: ``round_qty_down(0.7 - 0.4,
    0.1) == 0.3``. The result is the float nearest to the exact multiple.
    """
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    if not math.isfinite(qty):
        raise ValueError(f"qty must be finite, got {qty!r}")
    exact_step = Decimal(repr(float(step)))
    steps = Decimal(repr(abs(float(qty)))) / exact_step
    whole_steps = (steps + _STEP_TOLERANCE).to_integral_value(rounding=ROUND_FLOOR)
    rounded = float(whole_steps * exact_step)
    return math.copysign(rounded, qty) if rounded else 0.0


class SimulatedMarketRules(MarketRulesProvider):
    """Rules of the simulated market: any symbol, looked up by its base asset.

    BTC trades in 1e-5 lots, ETH in 1e-4, SOL in 1e-3, anything else in 0.01;
    the minimum order is one lot and 5 quote units of notional.
    """

    TABLE: Mapping[str, tuple[float, float]] = {  # base asset -> (qty_step, price_tick)
        "BTC": (1e-5, 0.01),
        "ETH": (1e-4, 0.01),
        "SOL": (1e-3, 0.001),
    }
    DEFAULT: tuple[float, float] = (0.01, 0.0001)
    MIN_NOTIONAL = 5.0

    def rules_for(self, symbol: str) -> MarketRules:
        return _simulated_rules(type(self), symbol)

    def _build(self, symbol: str) -> MarketRules:
        base = symbol.strip().split(":", 1)[0].partition("/")[0].upper()
        if not base:
            raise ConfigurationError(
                f"symbol {symbol!r} is blank; use a ccxt symbol such as 'BTC/USDT'"
            )
        qty_step, price_tick = self.TABLE.get(base, self.DEFAULT)
        return MarketRules(
            symbol=symbol.strip(),
            qty_step=qty_step,
            min_qty=qty_step,
            min_notional=self.MIN_NOTIONAL,
            price_tick=price_tick,
        )


@functools.lru_cache(maxsize=4096)
def _simulated_rules(kind: type[SimulatedMarketRules], symbol: str) -> MarketRules:
    """The rules of one symbol, built once (they never change; ``MarketRules`` is frozen)."""
    return kind()._build(symbol)


class StaticMarketRules(MarketRulesProvider):
    """Rules from a fixed table ``symbol -> MarketRules`` (e.g. converted ccxt markets)."""

    def __init__(self, rules: Mapping[str, MarketRules]) -> None:
        self._rules = dict(rules)

    @classmethod
    def from_ccxt_markets(
        cls,
        markets: Mapping[str, Mapping[str, object]],
        precision_mode: PrecisionMode = "tick_size",
    ) -> StaticMarketRules:
        """Convert every market ccxt can describe here; options and inverse markets are left out."""
        rules: dict[str, MarketRules] = {}
        for symbol, market in markets.items():
            try:
                rules[symbol] = rules_from_ccxt_market(market, precision_mode)
            except ConfigurationError:
                continue
        return cls(rules)

    def symbols(self) -> list[str]:
        return sorted(self._rules)

    def rules_for(self, symbol: str) -> MarketRules:
        try:
            return self._rules[symbol]
        except KeyError:
            known = ", ".join(sorted(self._rules)) or "none"
            raise ConfigurationError(
                f"no market rules for {symbol!r}; known symbols: {known}. "
                f"Check the symbol's spelling (ccxt unified, e.g. 'BTC/USDT' or 'BTC/USDT:USDT')."
            ) from None


# -- ccxt conversion -------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _MinMax(_Loose):
    min: float | None = None
    max: float | None = None


class _Limits(_Loose):
    amount: _MinMax = _MinMax()
    cost: _MinMax = _MinMax()


class _Precision(_Loose):
    amount: float | None = None
    price: float | None = None


class _CcxtMarket(_Loose):
    """The part of a ccxt unified market dict the rules need."""

    symbol: str
    type: str | None = None
    inverse: bool | None = None
    contract_size: float | None = Field(default=None, alias="contractSize")
    precision: _Precision = _Precision()
    limits: _Limits = _Limits()


def rules_from_ccxt_market(
    market: Mapping[str, object], precision_mode: PrecisionMode = "tick_size"
) -> MarketRules:
    """Turn a ccxt unified market dict into ``MarketRules``.

    ``precision_mode="tick_size"`` (ccxt TICK_SIZE, okx/bybit/binance today)
    reads ``precision.amount`` as the lot size; ``"decimal_places"`` reads it
    as a number of decimals (old binance data). Options and inverse contracts
    are refused (``ConfigurationError``): the guardrails size in base units.
    """
    try:
        parsed = _CcxtMarket.model_validate(market)
    except ValidationError as error:
        raise ConfigurationError(f"not a ccxt market dict: {error}") from error
    if parsed.type == "option" or parsed.inverse:
        kind = "an option" if parsed.type == "option" else "an inverse contract"
        raise ConfigurationError(
            f"{parsed.symbol} is {kind}; only spot and linear contracts are supported"
        )
    qty_step = _step(parsed.precision.amount, precision_mode)
    if qty_step is None:
        raise ConfigurationError(
            f"{parsed.symbol} has no precision.amount; load markets again or give rules by hand"
        )
    amount, cost = parsed.limits.amount, parsed.limits.cost
    return MarketRules(
        symbol=parsed.symbol,
        qty_step=qty_step,
        min_qty=amount.min if amount.min is not None else qty_step,
        max_qty=amount.max if amount.max else None,
        min_notional=cost.min or 0.0,
        price_tick=_step(parsed.precision.price, precision_mode),
        contract_size=parsed.contract_size or 1.0,
    )


def _step(precision: float | None, mode: PrecisionMode) -> float | None:
    if precision is None:
        return None
    if mode == "decimal_places":
        return float(10.0 ** -int(precision))
    return precision if precision > 0 else None
