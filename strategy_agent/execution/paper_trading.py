"""Paper execution: fills instructions at the latest close, against a scratch copy of the ledger.

Fill rule:

- A market order fills in full at the latest close ``price_of(symbol)``, moved
  against the trader by the slippage ``s = slippage_bps / 1e4``: a buy at
  ``p * (1 + s)``, a sell at ``p * (1 - s)``. The fee is ``fee_bps / 1e4`` of the
  fill notional (contracts x contract size x fill price, as the ledger counts
  it: ``Ledger.notional``), paid in the quote currency.
- A limit order fills only when its limit is marketable at the latest close
  (buy: ``limit >= p``, sell: ``limit <= p``), at the slipped price but never
  worse than the limit; otherwise it is rejected with "limit not marketable".
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
from strategy_agent.execution.interfaces import ExecutionGateway
from strategy_agent.models import ExecutionResult, ExecutionStatus, Fill, TradeInstruction
from strategy_agent.portfolio.ledger import Ledger


class PaperExecutionGateway(ExecutionGateway):
    """Simulated exchange: fills at the latest close with slippage and fees (see module doc)."""

    def __init__(
        self,
        ledger: Ledger,
        price_of: Callable[[str], float | None],
        clock: Clock,
        fee_bps: float = 10.0,
        slippage_bps: float = 5.0,
    ) -> None:
        for name, value in (("fee_bps", fee_bps), ("slippage_bps", slippage_bps)):
            if not (math.isfinite(value) and 0 <= value < 10_000):
                raise ValueError(f"{name} must be between 0 and 10000, got {value}")
        self._ledger = ledger
        self._price_of = price_of
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
        close = self._price_of(symbol)
        if close is None or not (math.isfinite(close) and close > 0):
            return _result(
                instruction, ts, "rejected", reason=f"no price for {symbol}; no closed candle yet"
            )
        price_or_reason = self._fill_price(instruction, close)
        if isinstance(price_or_reason, str):
            return _result(instruction, ts, "rejected", reason=price_or_reason)
        price = price_or_reason
        fee = self.fee_bps / 1e4 * scratch.notional(symbol, instruction.quantity, price)
        reason = scratch.check(symbol, instruction.side, instruction.quantity, price, fee)
        if reason:
            return _result(instruction, ts, "rejected", reason=reason)
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
        # value the position at the close again (as the coordinator will), so the next
        # instruction's check sees the book the strategy will really hold
        scratch.mark({symbol: close}, ts)
        return _result(
            instruction,
            ts,
            "filled",
            filled_qty=fill.quantity,
            avg_price=price,
            fee=fee,
            realized_pnl=applied.fill.realized_pnl,
        )

    def _fill_price(self, instruction: TradeInstruction, close: float) -> float | str:
        """The fill price, or the reason the order cannot fill."""
        allowed = instruction.max_slippage_bps
        if allowed is not None and self.slippage_bps > allowed:
            return (
                f"modelled slippage {self.slippage_bps:g} bps exceeds the order's "
                f"max_slippage_bps {allowed:g}; raise it or lower slippage_bps"
            )
        slip = self.slippage_bps / 1e4
        buy = instruction.side == "buy"
        price = close * (1 + slip) if buy else close * (1 - slip)
        if instruction.price_mode != "limit":
            return price
        limit = instruction.limit_price
        if limit is None:
            return "limit order without limit_price; set it or use price_mode market"
        if (buy and limit < close) or (not buy and limit > close):
            return f"limit not marketable: {instruction.side} limit {limit:g}, last close {close:g}"
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
    )
