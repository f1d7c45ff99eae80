"""Funding of perpetual swaps on paper: which payments fall due, and how much each is.

A perpetual swap's holders pay or earn funding at the exchange's funding
times (every 8 hours on most exchanges): ``amount = quantity x contract_size x
mark_price x funding_rate`` in the quote currency, signed so a positive amount
is *paid* by the strategy (a long pays a positive rate, a short earns it).

Paper trading settles it from the exchange's snapshot (``market_quotes``): a
cycle remembers each swap's ``next_funding_ts`` and ``funding_rate``; at the
next cycle every funding time from that one up to now (one period apart, but
before the next funding time the exchange gives now) is due on the position
held since the last cycle. The first uses the rate announced for it, later
ones (a long interval or a pause) the rate the exchange shows now; the mark
price is the snapshot's now (else the latest close). The ledger applies the
payments (``Ledger.apply_funding``); ``commit`` is called once the cycle is
recorded, so a failed cycle leaves them due for the next one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from strategy_agent.data.market_rules import notional

DEFAULT_FUNDING_PERIOD_MS = 8 * 3_600_000


@dataclass(frozen=True)
class FundingPayment:
    """One funding settlement of one position.

    ``ts``: the cycle that settled it (epoch ms); ``funding_ts``: the exchange's
    funding time it stands for; ``quantity``: the signed position (contracts);
    ``mark_price`` per base unit; ``rate``: fraction per funding period;
    ``amount``: quote currency, positive when paid by the strategy.
    """

    ts: int
    symbol: str
    funding_ts: int
    quantity: float
    contract_size: float
    mark_price: float
    rate: float
    amount: float

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> FundingPayment:
        return cls(
            ts=int(payload["ts"]),
            symbol=str(payload["symbol"]),
            funding_ts=int(payload["funding_ts"]),
            quantity=float(payload["quantity"]),
            contract_size=float(payload.get("contract_size", 1.0)),
            mark_price=float(payload["mark_price"]),
            rate=float(payload["rate"]),
            amount=float(payload["amount"]),
        )


def funding_amount(quantity: float, contract_size: float, mark_price: float, rate: float) -> float:
    """Quote currency paid (positive) or earned (negative) by ``quantity`` contracts at one funding."""
    return notional(quantity, mark_price, contract_size) * rate


class FundingAccrual:
    """Which funding payments are due at each cycle (see the module doc).

    ``previous_quotes``: the last recorded cycle's ``market_quotes`` (read back
    from its compose record after a restart). ``period_ms``: the time between
    two funding times, used only when several fall between two cycles.
    """

    def __init__(
        self,
        previous_quotes: Mapping[str, Mapping[str, float]] | None = None,
        period_ms: int = DEFAULT_FUNDING_PERIOD_MS,
    ) -> None:
        if period_ms <= 0:
            raise ValueError(f"period_ms must be > 0, got {period_ms}")
        self._period_ms = period_ms
        self._previous: dict[str, dict[str, float]] = {}
        self.commit(previous_quotes or {})

    def due(
        self,
        now_ms: int,
        quotes: Mapping[str, Mapping[str, float]],
        positions: Mapping[str, tuple[float, float]],
        closes: Mapping[str, float],
    ) -> list[FundingPayment]:
        """Payments due at ``now_ms`` on ``positions`` (symbol -> (signed contracts, contract size)).

        ``quotes`` is this cycle's snapshot, ``closes`` the latest closes (the
        mark price when the snapshot has none). Nothing is remembered here.
        """
        payments: list[FundingPayment] = []
        for symbol, (quantity, size) in sorted(positions.items()):
            before = self._previous.get(symbol)
            if not quantity or before is None:
                continue
            quote = quotes.get(symbol, {})
            mark = _positive(quote.get("mark_price")) or _positive(closes.get(symbol))
            if mark is None:
                continue
            for funding_ts, rate in self._times(before, quote, now_ms):
                amount = funding_amount(quantity, size, mark, rate)
                payments.append(
                    FundingPayment(now_ms, symbol, funding_ts, quantity, size, mark, rate, amount)
                )
        return payments

    def commit(self, quotes: Mapping[str, Mapping[str, float]], now_ms: int | None = None) -> None:
        """Remember this cycle's funding times and rates (call once the cycle is recorded).

        A swap whose snapshot gave no funding this time keeps its last known
        rate, its funding time moved past ``now_ms`` (what was due is settled).
        """
        if now_ms is not None:
            for symbol, before in list(self._previous.items()):
                funding_ts = int(before["next_funding_ts"])
                while funding_ts <= now_ms:
                    funding_ts += self._period_ms
                self._previous[symbol] = {**before, "next_funding_ts": funding_ts}
        for symbol, quote in quotes.items():
            next_ts, rate = (
                _number(quote.get("next_funding_ts")),
                _number(quote.get("funding_rate")),
            )
            if next_ts is not None and rate is not None:
                self._previous[symbol] = {"next_funding_ts": next_ts, "funding_rate": rate}

    def _times(
        self, before: Mapping[str, float], quote: Mapping[str, float], now_ms: int
    ) -> list[tuple[int, float]]:
        first = int(before["next_funding_ts"])
        first_rate = float(before["funding_rate"])
        upcoming = _number(quote.get("next_funding_ts"))
        end = int(upcoming) if upcoming is not None and upcoming > first else now_ms + 1
        later_rate = _number(quote.get("funding_rate"))
        rate_now = later_rate if later_rate is not None else first_rate
        times: list[tuple[int, float]] = []
        funding_ts = first
        while funding_ts <= now_ms and funding_ts < end:
            times.append((funding_ts, first_rate if funding_ts == first else rate_now))
            funding_ts += self._period_ms
        return times


def _number(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> float | None:
    return float(value) if _finite(value) and value > 0 else None
