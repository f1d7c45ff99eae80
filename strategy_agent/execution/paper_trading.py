"""Paper execution: fills instructions at a reference price, against a scratch copy of the ledger.

The reference price ``p`` comes through the ``FillPrices`` port, asked at
execution time (``execution.fill_prices``): on the simulated market and in
replays (paper runs and backtests alike) the open of the candle after the
decision (``fill_at = "next_open"``, the default), or the latest closed
candle's close (``fill_at = "close"``); on a real exchange's live data the
ticker now, the ask for a buy and the bid for a sell (the last price when the
exchange gives no bid/ask). Each result records ``price_source`` and
``reference_price``. With no price (the data ended before the next candle) the
order is rejected, not filled, with the port's reason.

Fill rule:

- A market order fills in full at ``p``, moved against the trader by the
  slippage ``s = slippage_bps / 1e4``: a buy at ``p * (1 + s)``, a sell at
  ``p * (1 - s)``. The fee is ``fee_bps / 1e4`` of the fill notional
  (contracts x contract size x fill price, as the ledger counts it:
  ``Ledger.notional``), paid in the quote currency.
- A limit order fills only when its limit is marketable at ``p`` (buy:
  ``limit >= p``, sell: ``limit <= p``), at the slipped price but never worse
  than the limit; otherwise it is rejected with "limit not marketable".
- An instruction whose ``max_slippage_bps`` is below the modelled slippage is
  rejected (the order would have been refused by the exchange).
- Instructions are checked in order against ``ledger.copy()``; each accepted
  fill is applied to that copy, so the next instruction sees its effect (a spot
  sell frees cash for the buy after it). The real ledger is never modified
  here: the coordinator applies the filled results to it, the same path a real
  exchange's reports take.

One ``ExecutionResult`` per instruction, in order: ``filled``, ``rejected``
with the ledger's reason, or ``error`` with the message of an unexpected failure.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from strategy_agent.clock import Clock
from strategy_agent.execution.fill_prices import (
    FillPrices,
    FillQuote,
    as_fill_prices,
    missing_reason,
)
from strategy_agent.execution.interfaces import ExecutionGateway
from strategy_agent.models import ExecutionResult, ExecutionStatus, Fill, TradeInstruction
from strategy_agent.portfolio.ledger import Ledger

_PRICE_NAMES = {"close": "last close", "next_open": "next open"}


class PaperExecutionGateway(ExecutionGateway):
    """Simulated exchange: fills at the port's price with slippage and fees (see module doc).

    ``prices`` is a ``FillPrices`` port (or a plain ``symbol -> price`` function,
    recorded as source ``close``).
    """

    def __init__(
        self,
        ledger: Ledger,
        prices: FillPrices | Callable[[str], float | None],
        clock: Clock,
        fee_bps: float = 10.0,
        slippage_bps: float = 5.0,
    ) -> None:
        for name, value in (("fee_bps", fee_bps), ("slippage_bps", slippage_bps)):
            if not (math.isfinite(value) and 0 <= value < 10_000):
                raise ValueError(f"{name} must be between 0 and 10000, got {value}")
        self._ledger = ledger
        self._prices = as_fill_prices(prices)
        self._clock = clock
        self.fee_bps = float(fee_bps)
        self.slippage_bps = float(slippage_bps)

    def execute(self, instructions: list[TradeInstruction]) -> list[ExecutionResult]:
        """One result per instruction, in order; never raises for a refused order."""
        scratch = self._ledger.copy()
        ts = self._clock.now_ms()
        results: list[ExecutionResult] = []
        for instruction in instructions:
            try:
                result = self._execute_one(scratch, instruction, ts)
            except Exception as error:  # one broken order must not lose the batch's answers
                message = str(error).strip() or type(error).__name__
                result = _result(
                    instruction, ts, "error", reason=f"{type(error).__name__}: {message}"
                )
            results.append(result)
        return results

    def _execute_one(
        self, scratch: Ledger, instruction: TradeInstruction, ts: int
    ) -> ExecutionResult:
        symbol = instruction.instrument.symbol
        quote = self._prices.price_for(symbol, instruction.side)
        if quote is None:
            return _result(instruction, ts, "rejected", reason=missing_reason(self._prices, symbol))
        price_or_reason = self._fill_price(instruction, quote)
        if isinstance(price_or_reason, str):
            return _result(instruction, ts, "rejected", reason=price_or_reason, quote=quote)
        price = price_or_reason
        fee = self.fee_bps / 1e4 * scratch.notional(symbol, instruction.quantity, price)
        reason = scratch.check(symbol, instruction.side, instruction.quantity, price, fee)
        if reason:
            return _result(instruction, ts, "rejected", reason=reason, quote=quote)
        fill = Fill(
            ts=ts,
            strategy_id=scratch.strategy_id,
            compose_id=instruction.compose_id,
            instruction_id=instruction.instruction_id,
            symbol=symbol,
            side=instruction.side,
            quantity=instruction.quantity,
            price=price,
            fee=fee,
        )
        applied = scratch.apply(fill)
        # value the position at the reference price again (as the coordinator marks it),
        # so the next instruction's check sees the book the strategy will really hold
        scratch.mark({symbol: quote.price}, ts)
        return _result(
            instruction,
            ts,
            "filled",
            filled_qty=fill.quantity,
            avg_price=price,
            fee=fee,
            realized_pnl=applied.fill.realized_pnl,
            quote=quote,
        )

    def _fill_price(self, instruction: TradeInstruction, quote: FillQuote) -> float | str:
        """The fill price, or the reason the order cannot fill."""
        allowed = instruction.max_slippage_bps
        if allowed is not None and self.slippage_bps > allowed:
            return (
                f"modelled slippage {self.slippage_bps:g} bps exceeds the order's "
                f"max_slippage_bps {allowed:g}; raise it or lower slippage_bps"
            )
        slip = self.slippage_bps / 1e4
        buy = instruction.side == "buy"
        reference = quote.price
        price = reference * (1 + slip) if buy else reference * (1 - slip)
        if instruction.price_mode != "limit":
            return price
        limit = instruction.limit_price
        if limit is None:
            return "limit order without limit_price; set it or use price_mode market"
        if (buy and limit < reference) or (not buy and limit > reference):
            where = _PRICE_NAMES.get(quote.source, f"{quote.source} price")
            return (
                f"limit not marketable: {instruction.side} limit {limit:g}, {where} {reference:g}"
            )
        return min(price, limit) if buy else max(price, limit)


def _result(
    instruction: TradeInstruction,
    ts: int,
    status: ExecutionStatus,
    *,
    reason: str | None = None,
    filled_qty: float = 0.0,
    avg_price: float | None = None,
    fee: float = 0.0,
    realized_pnl: float = 0.0,
    quote: FillQuote | None = None,
) -> ExecutionResult:
    return ExecutionResult(
        instruction_id=instruction.instruction_id,
        compose_id=instruction.compose_id,
        symbol=instruction.instrument.symbol,
        side=instruction.side,
        status=status,
        requested_qty=instruction.quantity,
        filled_qty=filled_qty,
        avg_price=avg_price,
        fee=fee,
        realized_pnl=realized_pnl,
        reason=reason,
        ts=ts,
        price_source=quote.source if quote else None,
        reference_price=quote.price if quote else None,
    )
