"""Where a cycle's portfolio view comes from: the ledger on paper, the exchange on testnet and live.

``LedgerPortfolio`` (paper, simulated, replays): the ledger's view, nothing to sync.

``ExchangePortfolio`` (testnet, live), before each cycle (``sync``):

0. ``cycle_id``: a cycle run again after a crash that sent orders gets a new
   id (``<compose_id>-2``), so its instructions never share an id (and a client
   order id) with the interrupted attempt's orders.
1. ``reconcile()``: the gateway settles the orders a crash left open; the
   fills the ledger lacks come back, to be applied and written with this cycle
   (once: the ``fills`` table is unique per instruction).
2. The account's positions in the strategy's symbols and its free quote cash
   are read (``fetch_portfolio``) and compared with the ledger after those fills:

   - swap: the account's position in a symbol is the strategy's (one strategy
     per symbol and account, ``ccxt_account.check_symbol_conflicts``), so any
     difference (a manual trade, a missed fill) is followed;
   - spot: an account cannot tell whose coins it holds, so the strategy owns at
     most what its ledger bought. A balance below that (a manual sale, a
     withdrawal, a missed fill) is followed; coins above it belong to someone
     else and are never shown, sold or closed.

   A difference is applied to the ledger as an adjustment fill (instruction
   ``<compose_id>:account:<symbol>``) at the cycle's latest close, without fee
   (the account's own price is not known), and recorded in the cycle's
   ``account`` history record with both quantities. The strategy then trades
   on what the exchange holds.
3. The view (``view``): the ledger's, whose quantities now equal the
   exchange's, with the exchange's entry price where it gives one (swaps), the
   ledger's entry prices, P&L and equity elsewhere; ``available_cash`` capped
   at the account's free quote balance (shared by everything on the account);
   a position whose whole close the exchange would refuse (below its minimum
   order size) is marked ``dust``, so no close of it is proposed again.

Quantities in the market's order unit (base on spot, contracts on swaps),
prices and cash in the quote currency.
"""

from __future__ import annotations

from typing import Any, Protocol

from strategy_agent.cycle_ports import AccountSync
from strategy_agent.execution.fills import fill_from_result
from strategy_agent.models import ExecutionResult, Fill, PortfolioView

# Quantities closer than this (relative, and absolutely) are the same holding.
REL_TOLERANCE = 1e-6
ABS_TOLERANCE = 1e-12


class LedgerBook(Protocol):
    """What the views need of the ledger (``portfolio.ledger.Ledger``)."""

    def quantity(self, symbol: str) -> float: ...
    def get_view(self, ts: int | None = None) -> PortfolioView: ...


class ExchangeAccount(Protocol):
    """What the exchange view needs of the gateway (``CcxtExecutionGateway``)."""

    def reconcile(self) -> list[ExecutionResult]: ...
    def fetch_portfolio(self, symbols: list[str]) -> PortfolioView: ...
    def has_orders(self, compose_id: str) -> bool: ...
    def close_dust(self, symbol: str, quantity: float, price: float | None) -> str | None: ...


class LedgerPortfolio:
    """The ledger's own view (paper trading: the ledger is the account)."""

    def __init__(self, book: LedgerBook) -> None:
        self._book = book

    def cycle_id(self, compose_id: str) -> str:
        return compose_id

    def sync(self, ts: int, closes: dict[str, float], compose_id: str) -> AccountSync:
        return AccountSync()

    def view(self, ts: int) -> PortfolioView:
        return self._book.get_view(ts)


class ExchangePortfolio:
    """The view read from the exchange account, limited to ``symbols`` (see the module doc).

    ``swap``: the strategy trades perpetual swaps (else spot). ``on_open``
    runs ``reconcile`` once when the runtime opens (a restart).
    """

    def __init__(
        self,
        account: ExchangeAccount,
        book: LedgerBook,
        *,
        symbols: list[str],
        strategy_id: str,
        swap: bool,
    ) -> None:
        self._account = account
        self._book = book
        self._symbols = list(symbols)
        self._strategy_id = strategy_id
        self._swap = swap
        self._snapshot: tuple[int, PortfolioView] | None = None
        self._closes: dict[str, float] = {}
        self._cash_short = False  # the account's free cash was below the ledger's last cycle

    def on_open(self) -> list[ExecutionResult]:
        """Settle the orders a crash left open (their fills are applied by the next ``sync``)."""
        return self._account.reconcile()

    def cycle_id(self, compose_id: str) -> str:
        """``compose_id``, or ``<compose_id>-2``... when an interrupted attempt of the cycle
        already sent orders under it: a new decision never reuses their instruction ids."""
        candidate, attempt = compose_id, 1
        while self._account.has_orders(candidate):
            attempt += 1
            candidate = f"{compose_id}-{attempt}"
        return candidate

    def sync(self, ts: int, closes: dict[str, float], compose_id: str) -> AccountSync:
        """Reconciled fills, then adjustments to the account's quantities (module doc)."""
        reconciled = [
            fill_from_result(r, self._strategy_id)
            for r in self._account.reconcile()
            if r.status == "filled"
        ]
        fills = list(reconciled)
        expected = {s: self._book.quantity(s) for s in self._symbols}
        for fill in reconciled:
            signed = fill.quantity if fill.side == "buy" else -fill.quantity
            expected[fill.symbol] = expected.get(fill.symbol, 0.0) + signed
        snapshot = self._account.fetch_portfolio(self._symbols)
        self._snapshot, self._closes = (ts, snapshot), dict(closes)
        differences: list[dict[str, Any]] = []
        for symbol in self._symbols:
            held = snapshot.positions.get(symbol)
            difference = self._difference(symbol, expected[symbol], held.quantity if held else 0.0)
            if difference is None:
                continue
            adjustment = _adjustment(difference, ts, compose_id, self._strategy_id, closes)
            difference["applied"] = adjustment is not None
            differences.append(difference)
            if adjustment is not None:
                fills.append(adjustment)
        payload = {
            "reconciled": [_fill_json(fill) for fill in reconciled],
            "differences": differences,
            "cash": self._cash_note(snapshot),
        }
        payload = {key: value for key, value in payload.items() if value}
        return AccountSync(fills=fills, payload=payload or None)

    def view(self, ts: int) -> PortfolioView:
        """The ledger's view on the exchange's quantities and cash (module doc)."""
        if self._snapshot is None or self._snapshot[0] != ts:
            self._snapshot = (ts, self._account.fetch_portfolio(self._symbols))
        snapshot = self._snapshot[1]
        base = self._book.get_view(ts)
        positions = {}
        for symbol, position in base.positions.items():
            update: dict[str, Any] = {}
            held = snapshot.positions.get(symbol)
            if self._swap and held is not None and held.avg_price:
                update["avg_price"] = held.avg_price
            price = self._closes.get(symbol) or position.mark_price
            if self._account.close_dust(symbol, position.quantity, price) is not None:
                update["dust"] = True
            positions[symbol] = position.model_copy(update=update)
        available = base.available_cash if base.available_cash is not None else base.cash
        return base.model_copy(
            update={
                "positions": positions,
                "available_cash": max(0.0, min(available, snapshot.cash)),
            }
        )

    # -- comparing -----------------------------------------------------------------------------

    def _difference(self, symbol: str, mine: float, held: float) -> dict[str, Any] | None:
        """What differs between the ledger (``mine``) and the account (``held``), or None."""
        if self._swap:
            follow = held
            reason = (
                "the account's position differs from the ledger (a manual trade or a missed "
                "fill): the strategy follows the exchange"
            )
        else:
            follow = min(mine, max(held, 0.0)) if mine > 0 else mine
            reason = (
                f"the account holds less {symbol.split('/')[0]} than the strategy bought (a "
                f"manual sale, a withdrawal or a missed fill): the strategy follows the exchange"
            )
        if _same(follow, mine):
            return None
        return {
            "symbol": symbol,
            "ledger_qty": mine,
            "exchange_qty": held,
            "followed_qty": follow,
            "adjustment": follow - mine,
            "reason": reason,
        }

    def _cash_note(self, snapshot: PortfolioView) -> dict[str, Any] | None:
        """A note when the account's free cash falls below the ledger's (once, not each cycle)."""
        ledger = self._book.get_view()
        mine = ledger.available_cash if ledger.available_cash is not None else ledger.cash
        short = snapshot.cash < mine * (1 - REL_TOLERANCE)
        note = None
        if short and not self._cash_short:
            note = {
                "ledger_available": mine,
                "exchange_free": snapshot.cash,
                "reason": (
                    "the account's free cash is below the strategy's: orders are sized on the "
                    "account's"
                ),
            }
        self._cash_short = short
        return note


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= max(ABS_TOLERANCE, REL_TOLERANCE * max(abs(a), abs(b)))


def _adjustment(
    difference: dict[str, Any],
    ts: int,
    compose_id: str,
    strategy_id: str,
    closes: dict[str, float],
) -> Fill | None:
    """The fill that brings the ledger to the followed quantity, at the latest close."""
    symbol = difference["symbol"]
    price = closes.get(symbol)
    change = float(difference["adjustment"])
    if price is None or not price > 0:
        difference["note"] = "no price this cycle: the ledger is adjusted on the next one"
        return None
    difference["price"] = price
    return Fill(
        ts=ts,
        strategy_id=strategy_id,
        compose_id=compose_id,
        instruction_id=f"{compose_id}:account:{symbol}",
        symbol=symbol,
        side="buy" if change > 0 else "sell",
        quantity=abs(change),
        price=price,
        fee=0.0,
    )


def _fill_json(fill: Fill) -> dict[str, Any]:
    return {
        "instruction_id": fill.instruction_id,
        "symbol": fill.symbol,
        "side": fill.side,
        "quantity": fill.quantity,
        "price": fill.price,
        "fee": fill.fee,
    }
