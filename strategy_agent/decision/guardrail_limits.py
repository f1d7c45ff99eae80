"""GuardrailLimits: the limits the guardrails enforce, as the configuration sets them.

Caps are fractions of equity (quote currency); quantities are in contracts.
``GuardrailLimits.model_dump()`` is what policies see as ``ComposeContext.constraints``
and what the system prompt states.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.data.market_rules import contract_size_of
from strategy_agent.models import Dto, ExchangeConfig, MarketType, TradingConfig, interval_ms


class GuardrailLimits(Dto):
    """The limits the guardrails enforce, derived from the configuration.

    Caps are fractions of equity: ``max_position_pct`` per instrument notional,
    ``max_gross_exposure`` (already capped by ``max_leverage``) and
    ``max_net_exposure`` for the whole book. ``max_position_qty`` caps the
    position size per symbol, in contracts. ``contract_sizes`` holds the base
    units per contract of the symbols whose contract is not one base unit (from
    the market rules, for the prompt: the guardrails themselves value a
    contract through the rules). ``model_dump()`` is what policies see as
    ``ComposeContext.constraints``.
    """

    symbols: list[str] = Field(min_length=1)
    market_type: MarketType = "spot"
    allow_short: bool = False
    max_leverage: float = Field(default=1.0, ge=1)
    max_positions: int = Field(default=3, ge=1)
    max_position_pct: float = Field(default=0.4, gt=0)
    max_position_qty: dict[str, float] = Field(default_factory=dict)
    max_gross_exposure: float = Field(default=1.0, gt=0)
    max_net_exposure: float = Field(default=1.0, gt=0)
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    cooldown_ms: int = Field(default=0, ge=0)
    fee_bps: float = Field(default=10.0, ge=0)
    slippage_bps: float = Field(default=5.0, ge=0)
    contract_sizes: dict[str, float] = Field(default_factory=dict)

    @field_validator("max_position_qty", "contract_sizes")
    @classmethod
    def _positive_caps(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        for symbol, cap in value.items():
            if not cap > 0:
                raise ValueError(f"{info.field_name} for {symbol} must be > 0, got {cap}")
        return value

    @classmethod
    def from_config(
        cls,
        trading: TradingConfig,
        exchange: ExchangeConfig,
        rules: MarketRulesProvider | None = None,
    ) -> GuardrailLimits:
        """Limits of a strategy: spot is long-only at 1x; gross is capped by leverage.

        ``rules`` give the contract sizes the prompt states (none without rules).
        """
        spot = exchange.market_type == "spot"
        sizes = {symbol: contract_size_of(rules, symbol) for symbol in trading.symbols}
        leverage = 1.0 if spot else trading.max_leverage
        gross = min(trading.max_gross_exposure, leverage)
        return cls(
            symbols=list(trading.symbols),
            market_type=exchange.market_type,
            allow_short=trading.allow_short and not spot,
            max_leverage=leverage,
            max_positions=trading.max_positions,
            max_position_pct=trading.max_position_pct,
            max_position_qty=dict(trading.max_position_qty),
            max_gross_exposure=gross,
            max_net_exposure=min(trading.max_net_exposure, gross),
            min_confidence=trading.min_confidence,
            cooldown_ms=trading.cooldown_bars * interval_ms(trading.interval),
            fee_bps=exchange.fee_bps,
            slippage_bps=exchange.slippage_bps,
            contract_sizes={symbol: size for symbol, size in sizes.items() if size != 1.0},
        )
