"""From an instruction to its ``orders`` row, and from a row to the port's ``ExecutionResult``.

The result of a real order is always built from its recorded row, so what the
ledger applies is exactly what was recorded (after a crash too).
"""

from __future__ import annotations

from strategy_agent.execution.ccxt_orders import OrderOutcome, OrderPlan
from strategy_agent.models import ExecutionResult, ExecutionStatus, TradeInstruction
from strategy_agent.trading_history.orders import OrderRecord

NEVER_ARRIVED = "not found on the exchange: the order never arrived"
STILL_UNKNOWN = (
    "the exchange did not answer; the order's fate is unknown and it is looked up by its "
    "client id before anything is sent again"
)
ALREADY_APPLIED = "already executed on the exchange and applied: not sent again"


def new_record(
    instruction: TradeInstruction,
    client_id: str,
    plan: OrderPlan | None,
    *,
    strategy_id: str,
    exchange_id: str,
    now_ms: int,
) -> OrderRecord:
    """The ``sent`` row of an instruction about to be sent (``plan`` ``None``: not sent)."""
    return OrderRecord(
        client_order_id=client_id,
        strategy_id=strategy_id,
        compose_id=instruction.compose_id,
        instruction_id=instruction.instruction_id,
        exchange_id=exchange_id,
        symbol=instruction.instrument.symbol,
        side=instruction.side,
        qty=instruction.quantity,
        order_type=plan.order_type if plan else "market",
        limit_price=plan.price if plan else None,
        reduce_only=plan.reduce_only if plan else False,
        status="sent",
        created_ts=now_ms,
        updated_ts=now_ms,
    )


def moved_by(
    record: OrderRecord, outcome: OrderOutcome, now_ms: int, note: str | None
) -> OrderRecord:
    """``record`` updated with what the exchange reported, with the notes as its reason."""
    notes = [n for n in (note, outcome.note) if n]
    if outcome.status == "partially_filled":
        notes.insert(0, f"partially filled: {outcome.filled_qty:g} of {record.qty:g}")
    elif outcome.status == "canceled":
        notes.insert(0, "the exchange ended the order with nothing filled (a limit not marketable)")
    return record.moved(
        outcome.status,
        now_ms,
        exchange_order_id=outcome.exchange_order_id or record.exchange_order_id,
        filled_qty=outcome.filled_qty,
        avg_price=outcome.avg_price,
        fee=outcome.fee,
        fee_currency=outcome.fee_currency,
        fee_quote=outcome.fee_quote,
        reason="; ".join(notes) or None,
    )


def result_of(
    record: OrderRecord,
    *,
    status: ExecutionStatus | None = None,
    reason: str | None = None,
) -> ExecutionResult:
    """The port's answer for a recorded order: ``filled`` when anything filled.

    A spot buy whose fee was taken in the base currency reports the quantity
    received (filled minus that fee) with the fee in quote (``fee x price``):
    the ledger then holds what the account holds and pays exactly the quote
    the exchange took. Otherwise an open order is an ``error`` (its outcome is
    still to come) and a final one without a fill is ``rejected``.
    """
    received = received_qty(record)
    if status is None:
        filled = received > 0 and record.avg_price is not None
        status = "filled" if filled else ("rejected" if record.is_final else "error")
    done = status == "filled"
    return ExecutionResult(
        instruction_id=record.instruction_id,
        compose_id=record.compose_id,
        symbol=record.symbol,
        side=record.side,
        status=status,
        requested_qty=record.qty,
        filled_qty=received if done else 0.0,
        avg_price=record.avg_price if done else None,
        fee=(record.fee_quote or 0.0) if done else 0.0,
        reason=reason if reason is not None else record.reason,
        ts=record.updated_ts,
    )


def error_result(instruction: TradeInstruction, reason: str, ts: int) -> ExecutionResult:
    """An ``error`` result for an instruction whose order could not be handled now."""
    return ExecutionResult(
        instruction_id=instruction.instruction_id,
        compose_id=instruction.compose_id,
        symbol=instruction.instrument.symbol,
        side=instruction.side,
        status="error",
        requested_qty=instruction.quantity,
        reason=reason,
        ts=ts,
    )


def received_qty(record: OrderRecord) -> float:
    """The quantity the account received: a spot buy's base-currency fee is taken from it."""
    base = record.symbol.split("/")[0]
    spot_buy = record.side == "buy" and ":" not in record.symbol
    if spot_buy and record.fee and record.fee_currency == base:
        return max(record.filled_qty - record.fee, 0.0)
    return record.filled_qty
