"""From a gateway's answer to the fill the ledger applies (any gateway, paper or real)."""

from __future__ import annotations

from strategy_agent.models import ExecutionResult, Fill


def fill_from_result(result: ExecutionResult, strategy_id: str) -> Fill:
    """The ``Fill`` a filled result stands for, to apply to the real ledger.

    ``realized_pnl`` is left at 0: the ledger fills it in when it applies the fill.
    Raises ``ValueError`` for a result that did not fill.
    """
    if result.status != "filled" or result.filled_qty <= 0 or result.avg_price is None:
        raise ValueError(
            f"result {result.instruction_id} is {result.status} with no fill; "
            f"apply only filled results"
        )
    return Fill(
        ts=result.ts,
        strategy_id=strategy_id,
        compose_id=result.compose_id,
        instruction_id=result.instruction_id,
        symbol=result.symbol,
        side=result.side,
        quantity=result.filled_qty,
        price=result.avg_price,
        fee=result.fee,
    )
