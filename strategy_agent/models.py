"""DTOs of the design as pydantic v2 models (no behaviour, no adapters).

Conventions, one everywhere:

- Time is an ``int`` of epoch milliseconds UTC (``ts``, ``entry_ts``...). A
  candle's ``ts`` is its *open* time; it is closed at ``ts + interval_ms``.
- Quantities of a position are signed: positive long, negative short.
  ``LlmDecisionItem.target_qty`` is the signed target position.
- Order quantities (``TradeInstruction.quantity``, fills) are positive; the
  direction is in ``side``.
- Every float is finite (NaN/inf are refused at the boundary).

Deviations from the design document, on purpose:

- ``UserRequest.model_config`` is called ``llm`` here, because ``model_config``
  is reserved by pydantic.
- ``StrategySummary`` is defined once, with realized and unrealized P&L.
- ``ExecutionGateway.execute`` returns one ``ExecutionResult`` per instruction.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

Action = Literal["buy", "sell", "flat", "noop"]
Side = Literal["buy", "sell"]
TradingMode = Literal["paper", "testnet", "live"]
MarketType = Literal["spot", "margin", "swap"]
# "pausing"/"stopping": asked to pause or stop while a cycle runs; the worker writes
# "paused"/"stopped" when that cycle has ended (so no fill follows either word).
StrategyStatus = Literal["created", "running", "pausing", "paused", "stopping", "stopped", "error"]
# "alert": something the user should see at once (K cycles in a row fell back), one per cycle at most
# "funding": the funding payments of paper swap positions settled in that cycle (issue 6/9)
HistoryKind = Literal[
    "features", "compose", "instructions", "execution", "error", "alert", "funding", "account"
]
ExecutionStatus = Literal["filled", "rejected", "error"]
# where a paper order fills on a stepped market (ExchangeConfig.fill_at)
FillAt = Literal["next_open", "close"]
OutcomeStatus = Literal["accepted", "clamped", "rejected"]

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def interval_ms(interval: str) -> int:
    """Milliseconds in one candle of ``interval`` (``"1m"`` .. ``"1d"``)."""
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        known = ", ".join(INTERVAL_MS)
        raise ValueError(f"unknown interval {interval!r}; use one of {known}") from None


class Dto(BaseModel):
    """Base of every DTO: immutable, unknown keys refused, NaN/inf refused."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, protected_namespaces=()
    )


def _env_var_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(
            "must be the NAME of an environment variable (letters, digits, "
            "underscore), not the key itself"
        )
    return value


# --- identification and raw data -------------------------------------------------


class InstrumentRef(Dto):
    """A tradable symbol in ccxt's unified notation (``BTC/USDT``, ``BTC/USDT:USDT``)."""

    symbol: str = Field(min_length=1)
    exchange_id: str | None = None
    quote_ccy: str | None = None

    @field_validator("symbol")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("symbol must not be blank")
        return value


class Candle(Dto):
    """One OHLCV bar; ``ts`` is the open time in epoch ms."""

    ts: int = Field(ge=0)
    instrument: InstrumentRef
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: float = Field(ge=0)
    interval: Interval

    @model_validator(mode="after")
    def _ohlc_consistent(self) -> Candle:
        if not (self.low <= min(self.open, self.close) and max(self.open, self.close) <= self.high):
            raise ValueError(
                f"inconsistent candle {self.instrument.symbol}@{self.ts}: "
                f"need low <= open,close <= high (o={self.open} h={self.high} "
                f"l={self.low} c={self.close})"
            )
        return self


class MarketRules(Dto):
    """Trading rules of one market, read by the guardrails (data, not code).

    ``qty_step`` is the lot size; ``min_notional`` is in the quote currency.
    ``contract_size`` converts contracts to base units (1 for spot).
    """

    symbol: str = Field(min_length=1)
    qty_step: float = Field(gt=0)
    min_qty: float = Field(ge=0, default=0.0)
    max_qty: float | None = Field(default=None, gt=0)
    min_notional: float = Field(ge=0, default=0.0)
    price_tick: float | None = Field(default=None, gt=0)
    contract_size: float = Field(gt=0, default=1.0)


# --- user request / configuration -----------------------------------------------


class ModelConfig(Dto):
    """Which policy decides: a built-in rule (``provider="builtin"``) or an LLM.

    The key is never stored: give ``api_key_env`` (the name of an environment
    variable) in files, or ``api_key`` for this process only. ``api_key`` is
    excluded from every dump. ``fallback`` names the built-in policy used when
    the LLM fails or answers nonsense (``noop`` by default). ``cache`` turns the
    LLM response cache on or off (``None``: on for replays, off for live runs).
    ``context_window`` is the model's window in tokens, for a model litellm does
    not know (a local one): the prompt is trimmed to fit it.
    ``input_cost_per_mtok``/``output_cost_per_mtok``: US dollars per million
    prompt/completion tokens, for a model litellm has no price for (they win
    over litellm's). ``training_cutoff``: the month (``2024-06``) or day
    (``2024-06-15``) the model's training data runs to, for a backtest's
    knowledge-leakage check (it wins over the built-in table). ``sample_index``:
    which of N independent samples this config draws (backtest ``--samples``);
    the response cache keeps each sample's replies apart (0: the usual key).
    """

    provider: str = Field(default="builtin", min_length=1)
    model_id: str = Field(default="ema_crossover", min_length=1)
    api_key: SecretStr | None = Field(default=None, exclude=True)
    api_key_env: str | None = None
    api_base: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=60.0, gt=0)
    fallback: str = Field(default="noop", min_length=1)
    cache: bool | None = None
    context_window: int | None = Field(default=None, gt=0)
    input_cost_per_mtok: float | None = Field(default=None, ge=0)
    output_cost_per_mtok: float | None = Field(default=None, ge=0)
    training_cutoff: str | None = None
    sample_index: int = Field(default=0, ge=0)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return _env_var_name(value)

    @field_validator("training_cutoff")
    @classmethod
    def _cutoff_date(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            date.fromisoformat(value if len(value) > 7 else f"{value}-01")
        except ValueError:
            raise ValueError(
                f"training_cutoff {value!r} is not a date: write the month as 2024-06 "
                f"or the day as 2024-06-15"
            ) from None
        if not re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", value):
            raise ValueError(f"training_cutoff {value!r}: write it as 2024-06 or 2024-06-15")
        return value

    @property
    def is_builtin(self) -> bool:
        return self.provider == "builtin"


class ExchangeConfig(Dto):
    """Where orders go. ``exchange_id="simulated"`` is the embedded offline market.

    Any other id is a ccxt exchange (``okx``, ``binance``...): market data from
    its public endpoints; ``paper`` fills on its live tickers, ``testnet`` and
    ``live`` send orders. ``api_url`` sends every REST call to that base URL
    instead of the exchange's hosts (a proxy, or a test server).

    ``fill_at``: where a paper order fills on a stepped market (the simulated
    one, replays, backtests): ``next_open`` (default), at the open of the
    candle after the one the decision closed on, as a live order sent after
    the close would; ``close``, at that decision candle's close (the same-close
    rule). Paper trading on a live market fills on the ticker either way.
    """

    exchange_id: str = Field(default="simulated", min_length=1)
    trading_mode: TradingMode = "paper"
    market_type: MarketType = "spot"
    fee_bps: float = Field(default=10.0, ge=0, le=1000)
    slippage_bps: float = Field(default=5.0, ge=0, le=1000)
    api_key: SecretStr | None = Field(default=None, exclude=True)
    secret_key: SecretStr | None = Field(default=None, exclude=True)
    api_key_env: str | None = None
    secret_key_env: str | None = None
    api_url: str | None = None
    fill_at: FillAt = "next_open"

    @field_validator("api_key_env", "secret_key_env")
    @classmethod
    def _env_names(cls, value: str | None) -> str | None:
        return _env_var_name(value)


class TradingConfig(Dto):
    """What to trade and the limits the guardrails enforce.

    Caps are fractions of equity: ``max_position_pct=0.5`` lets one instrument
    hold at most 50 % of equity in notional; ``max_gross_exposure=1.0`` caps the
    sum of |notional| at 1x equity (it is further capped by ``max_leverage``).
    ``fallback_alert_after``: this many composed cycles in a row that fell back
    (the LLM unreachable or its replies unusable) record an ``alert``.
    """

    strategy_name: str = Field(default="Demo strategy", min_length=1, max_length=80)
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    initial_capital: float = Field(default=10_000.0, gt=0)
    interval: Interval = "1h"
    lookback: int = Field(default=120, ge=30, le=2000)
    max_leverage: float = Field(default=1.0, ge=1, le=125)
    max_positions: int = Field(default=3, ge=1, le=100)
    max_position_pct: float = Field(default=0.4, gt=0, le=125)
    max_position_qty: dict[str, float] = Field(default_factory=dict)
    max_gross_exposure: float = Field(default=1.0, gt=0, le=125)
    max_net_exposure: float = Field(default=1.0, gt=0, le=125)
    allow_short: bool = False
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    cooldown_bars: int = Field(default=0, ge=0, le=10_000)
    fallback_alert_after: int = Field(default=3, ge=1, le=10_000)
    template_id: str | None = None
    custom_prompt: str | None = None
    seed: int = 42

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip() for s in value]
        if not cleaned or any(not s for s in cleaned):
            raise ValueError("symbols must list at least one non-empty symbol")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("symbols must not repeat")
        return cleaned

    @field_validator("max_position_qty")
    @classmethod
    def _qty_caps(cls, value: dict[str, float]) -> dict[str, float]:
        for symbol, cap in value.items():
            if not (cap > 0 and math.isfinite(cap)):
                raise ValueError(f"max_position_qty for {symbol} must be > 0")
        return value


class ReplayConfig(Dto):
    """Replay recorded candles instead of the live market (paper trading, stepped clock).

    ``source="store"``: candles downloaded into the database (``python -m
    strategy_agent download``) for the exchange, symbols and interval of the
    strategy. ``source="csv"``: ``csv_files`` maps each symbol to a CSV file
    (``ts,open,high,low,close,volume``). ``start_ms`` (epoch ms) is the
    simulated time of the first decision; by default the first moment the
    lookback is full.
    """

    source: Literal["store", "csv"] = "store"
    csv_files: dict[str, str] = Field(default_factory=dict)
    start_ms: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _files_for_csv(self) -> ReplayConfig:
        if self.source == "csv" and not self.csv_files:
            raise ValueError('a csv replay needs csv_files = {"BTC/USDT" = "btc_1h.csv", ...}')
        return self


class UserRequest(Dto):
    """Everything needed to create a strategy (the config file mirrors it).

    ``replay``: decide on recorded candles instead of the live market (``None``:
    the exchange's live market, or the simulated one).
    """

    llm: ModelConfig = Field(default_factory=ModelConfig)
    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)
    trading: TradingConfig = Field(default_factory=TradingConfig)
    replay: ReplayConfig | None = None

    @model_validator(mode="after")
    def _coherent(self) -> UserRequest:
        if self.exchange.market_type == "spot":
            if self.trading.allow_short:
                raise ValueError("allow_short needs market_type margin or swap (spot is long only)")
            if self.trading.max_leverage != 1:
                raise ValueError("max_leverage must be 1 on spot; use market_type margin or swap")
        return self


# --- features and portfolio ---------------------------------------------------------


class FeatureVector(Dto):
    """Named finite feature values of one instrument at ``ts`` (warm-up values omitted)."""

    ts: int = Field(ge=0)
    instrument: InstrumentRef
    values: dict[str, float]
    meta: dict[str, Any] | None = None


class PositionSnapshot(Dto):
    """One open position; ``quantity`` is signed (negative is short)."""

    instrument: InstrumentRef
    quantity: float
    avg_price: float | None = Field(default=None, ge=0)
    mark_price: float | None = Field(default=None, ge=0)
    unrealized_pnl: float | None = None
    notional: float | None = None
    leverage: float | None = Field(default=None, ge=0)
    entry_ts: int | None = None
    pnl_pct: float | None = None
    trade_type: Literal["long", "short"] | None = None
    # below the exchange's minimum order size: it cannot be closed, so no close is proposed
    dust: bool = False


class PortfolioView(Dto):
    """The portfolio as the composer sees it; derived numbers come from the ledger."""

    strategy_id: str | None = None
    ts: int = Field(ge=0)
    cash: float
    positions: dict[str, PositionSnapshot] = Field(default_factory=dict)
    gross_exposure: float | None = Field(default=None, ge=0)
    net_exposure: float | None = None
    constraints: dict[str, Any] | None = None
    total_value: float | None = None
    total_unrealized_pnl: float | None = None
    available_cash: float | None = None
    realized_pnl: float = 0.0
    fees_paid: float = Field(default=0.0, ge=0)
    initial_capital: float | None = None
    funding_paid: float = 0.0


# --- decision ---------------------------------------------------------------------------


class LlmDecisionItem(Dto):
    """One decision: ``target_qty`` is the signed target position after the trade."""

    instrument: InstrumentRef
    action: Action
    target_qty: float = 0.0
    confidence: float | None = Field(default=None, ge=0, le=1)
    rationale: str | None = None


class LlmPlanProposal(Dto):
    """What a policy (LLM or built-in) proposes for one cycle."""

    ts: int = Field(ge=0)
    items: list[LlmDecisionItem] = Field(default_factory=list)
    notes: str | None = None
    model_meta: dict[str, Any] | None = None


class TradeInstruction(Dto):
    """A normalised order that passed every guardrail."""

    instruction_id: str = Field(min_length=1)
    compose_id: str = Field(min_length=1)
    instrument: InstrumentRef
    side: Side
    quantity: float = Field(gt=0)
    price_mode: Literal["market", "limit"] = "market"
    limit_price: float | None = Field(default=None, gt=0)
    max_slippage_bps: float | None = Field(default=None, ge=0)
    meta: dict[str, Any] | None = None


class GuardrailOutcome(Dto):
    """What the guardrails did to one proposal item, with the reasons."""

    symbol: str
    action: str
    status: OutcomeStatus
    requested_qty: float | None = None
    final_target_qty: float | None = None
    order_qty: float | None = None
    reasons: list[str] = Field(default_factory=list)


class TradeDigestEntry(Dto):
    """Per-instrument feedback for the composer, built from fills and closed trades."""

    instrument: InstrumentRef
    trade_count: int = Field(default=0, ge=0)
    realized_pnl: float = 0.0
    win_rate: float | None = Field(default=None, ge=0, le=1)
    avg_holding_ms: float | None = Field(default=None, ge=0)
    last_trade_ts: int | None = None
    avg_entry_price: float | None = Field(default=None, ge=0)
    max_drawdown: float | None = Field(default=None, ge=0)
    recent_performance_score: float | None = None
    last_loss_ts: int | None = None


class TradeDigest(Dto):
    ts: int = Field(ge=0)
    by_instrument: dict[str, TradeDigestEntry] = Field(default_factory=dict)


class ComposeFeedback(Dto):
    """What became of the policy's previous plan, told to it in the next prompt.

    ``outcomes`` are that plan's rejected and clamped items, with their reasons;
    ``reply_problem`` says why the model's reply could not be used as written
    (the repair or fallback reason), ``None`` when it could.
    """

    outcomes: list[GuardrailOutcome] = Field(default_factory=list)
    reply_problem: str | None = None


class ComposeContext(Dto):
    """Everything the policy and guardrails see in one cycle.

    ``feedback`` is what became of the previous composed cycle's plan (``None``
    on the first cycle, or when everything went as asked).
    ``market_snapshot`` maps symbol to the latest close (what sizing starts
    from); ``market_quotes`` is the exchange's snapshot per symbol on a real
    market (``last``, ``bid``, ``ask``, ``change_24h_pct`` in percent and, for
    swaps, ``mark_price``, ``funding_rate`` as a fraction per funding period and
    ``next_funding_ts``), empty on the simulated market and in replays.
    """

    ts: int = Field(ge=0)
    compose_id: str = Field(min_length=1)
    strategy_id: str | None = None
    features: list[FeatureVector]
    portfolio: PortfolioView
    digest: TradeDigest
    prompt_text: str
    market_snapshot: dict[str, float] = Field(default_factory=dict)
    market_quotes: dict[str, dict[str, float]] = Field(default_factory=dict)
    constraints: dict[str, Any] | None = None
    interval: Interval = "1h"
    feedback: ComposeFeedback | None = None


class ComposeResult(Dto):
    """The composer's answer: instructions plus the audit of how they were made."""

    instructions: list[TradeInstruction]
    proposal: LlmPlanProposal | None
    outcomes: list[GuardrailOutcome] = Field(default_factory=list)
    audit: dict[str, Any] = Field(default_factory=dict)


# --- execution ----------------------------------------------------------------------------


class Fill(Dto):
    """One executed order as the ledger applied it (``realized_pnl`` before fees)."""

    ts: int = Field(ge=0)
    strategy_id: str = ""
    compose_id: str = ""
    instruction_id: str = ""
    symbol: str = Field(min_length=1)
    side: Side
    quantity: float = Field(gt=0)
    price: float = Field(gt=0)
    fee: float = Field(ge=0)
    realized_pnl: float = 0.0


class ExecutionResult(Dto):
    """The gateway's answer for one instruction.

    ``price_source`` says which price a paper fill started from (``next_open``:
    the open of the candle after the decision; ``close``: the latest closed
    candle; ``ask``/``bid``/``last``: the exchange's ticker at execution time)
    and ``reference_price`` is that price, before slippage.
    """

    instruction_id: str
    compose_id: str
    symbol: str
    side: Side
    status: ExecutionStatus
    requested_qty: float = Field(ge=0)
    filled_qty: float = Field(default=0.0, ge=0)
    avg_price: float | None = Field(default=None, gt=0)
    fee: float = Field(default=0.0, ge=0)
    realized_pnl: float = 0.0
    reason: str | None = None
    ts: int = Field(ge=0)
    price_source: str | None = None
    reference_price: float | None = Field(default=None, gt=0)


# --- history --------------------------------------------------------------------------------


class HistoryRecord(Dto):
    """A checkpoint of one cycle; ``reference_id`` is the cycle's ``compose_id``."""

    ts: int = Field(ge=0)
    kind: HistoryKind
    reference_id: str
    payload: dict[str, Any]
    strategy_id: str | None = None


class TradeHistoryEntry(Dto):
    """A closed round trip (flat -> open -> flat, or ended by a flip).

    ``quantity`` is the peak size held, in contracts; ``realized_pnl`` is before
    fees, ``fees`` are every entry and exit fee of the trade (quote currency), and
    ``realized_pnl_pct`` is the NET P&L (``metrics.trade_net_pnl``) in percent of
    the entry notional: a trade wins or loses by its net P&L everywhere.
    """

    trade_id: str | None = None
    compose_id: str | None = None
    instruction_id: str | None = None
    strategy_id: str | None = None
    trade_ts: int | None = None
    entry_ts: int | None = None
    exit_ts: int | None = None
    instrument: InstrumentRef
    side: Side
    type: Literal["long", "short"]
    quantity: float = Field(ge=0)
    entry_price: float | None = Field(default=None, ge=0)
    exit_price: float | None = Field(default=None, ge=0)
    realized_pnl: float | None = None
    realized_pnl_pct: float | None = None
    fees: float = Field(default=0.0, ge=0)
    holding_ms: int | None = Field(default=None, ge=0)
    leverage: float | None = None
    note: str | None = None


class EquityPoint(Dto):
    """Mark-to-market state after a cycle (derived from the ledger, stored for charts)."""

    ts: int = Field(ge=0)
    strategy_id: str
    cash: float
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float = Field(ge=0)
    gross_exposure: float = Field(ge=0)
    net_exposure: float


# --- UI / summary -----------------------------------------------------------------------------


class StrategySummary(Dto):
    strategy_id: str | None = None
    name: str | None = None
    model_provider: str | None = None
    model_id: str | None = None
    exchange_id: str | None = None
    mode: TradingMode | None = None
    status: StrategyStatus | None = None
    status_reason: str | None = None
    initial_capital: float | None = None
    equity: float | None = None
    realized_pnl: float | None = None
    unrealized_pnl: float | None = None
    fees_paid: float | None = None
    pnl_abs: float | None = None
    pnl_pct: float | None = None
    trade_count: int | None = None
    win_rate: float | None = None
    max_drawdown_pct: float | None = None
    cycles: int | None = None
    failed_cycles: int = 0
    last_updated_ts: int | None = None


class MetricPoint(Dto):
    ts: int
    value: float


class PortfolioValueSeries(Dto):
    strategy_id: str | None = None
    points: list[MetricPoint] = Field(default_factory=list)
