"""Where a paper fill's price comes from: the ``FillPrices`` port and its implementations.

The paper gateway asks ``price_for(symbol, side)`` for each instruction, at
execution time, and gets a ``FillQuote``: the price the fill starts from
(before slippage) and its source, which the result records.

- ``NextOpenPrices``: the open of the candle after the decision (the one that
  opens at the market's clock; the decision saw only candles closed by then),
  read from the data source by the gateway alone, never by the decision; source
  ``next_open``. The default of stepped markets (``fill_at = "next_open"``):
  an order decided on the close of candle t fills at the open of t+1, as a
  live order sent after the close would. At the end of the data there is no
  such candle: the order is not filled (``missing_reason`` says so).
- ``ClosePrices``: the latest closed candle's close, as of the market's clock
  (the same-close rule, ``fill_at = "close"``); source ``close``.
- ``TickerPrices``: the exchange's ticker now (live market data, paper money):
  the ask for a buy, the bid for a sell; the last price when the exchange
  gives no bid or ask (Binance's futures ticker has none); source ``ask``,
  ``bid`` or ``last``.
- ``CallablePrices``: a plain ``symbol -> price`` function (tests, tools).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from strategy_agent.clock import Clock
from strategy_agent.data.interfaces import MarketDataSource
from strategy_agent.models import Side, interval_ms


@dataclass(frozen=True)
class FillQuote:
    """A fill's starting price (quote currency per base unit, > 0) and where it came from."""

    price: float
    source: str


@runtime_checkable
class FillPrices(Protocol):
    """The port the paper gateway reads its prices through."""

    def price_for(self, symbol: str, side: Side) -> FillQuote | None:
        """The price a ``side`` order of ``symbol`` fills from now, or None when there is none."""
        ...


class OpenSource(Protocol):
    """What ``NextOpenPrices`` needs of a stepped data source (simulated market, replays)."""

    def next_open(self, symbol: str, interval: str, ts: int) -> tuple[int, float] | None:
        """``(open time, open)`` of the first candle opening at or after ``ts`` (epoch ms)
        and before ``ts + interval``; ``None`` when the data has no such candle."""
        ...


class SnapshotSource(Protocol):
    """What ``TickerPrices`` needs of a live source (``CcxtMarketDataSource.snapshot``)."""

    def snapshot(self, symbols: list[str]) -> dict[str, dict[str, float]]: ...


class CallablePrices:
    """Prices from a function ``symbol -> price | None`` (the source is named by ``source``)."""

    def __init__(self, price_of: Callable[[str], float | None], source: str = "close") -> None:
        self._price_of = price_of
        self._source = source

    def price_for(self, symbol: str, side: Side) -> FillQuote | None:
        return _quote(self._price_of(symbol), self._source)


class ClosePrices:
    """The latest close of each symbol closed at ``clock``'s now, read from ``source``.

    One read per clock time (the simulated source and replays are cheap to ask
    again); a candle not closed yet (``ts + interval > now``) is never used.
    """

    def __init__(
        self, source: MarketDataSource, clock: Clock, symbols: list[str], interval: str
    ) -> None:
        self._source = source
        self._clock = clock
        self._symbols = list(symbols)
        self._interval = interval
        self._step = interval_ms(interval)
        self._read_at: int | None = None
        self._closes: dict[str, float] = {}

    def price_for(self, symbol: str, side: Side) -> FillQuote | None:
        now = self._clock.now_ms()
        if self._read_at != now or symbol not in self._closes:
            wanted = list(dict.fromkeys([*self._symbols, symbol]))
            candles = self._source.get_recent_candles(wanted, self._interval, 1)
            latest: dict[str, tuple[int, float]] = {}
            for candle in candles:
                name = candle.instrument.symbol
                if candle.ts + self._step <= now and candle.ts >= latest.get(name, (-1, 0.0))[0]:
                    latest[name] = (candle.ts, candle.close)
            self._closes = {name: close for name, (_, close) in latest.items()}
            self._read_at = now
        return _quote(self._closes.get(symbol), "close")


class NextOpenPrices:
    """The open of the candle that opens at ``clock``'s now (the one after the decision).

    Only the gateway asks this port; the decision's candles stop at the last
    closed one (``get_recent_candles``), so the open it fills at is never seen
    before the order is made.
    """

    def __init__(self, source: OpenSource, clock: Clock, interval: str) -> None:
        interval_ms(interval)  # a clear error for an unknown interval
        self._source = source
        self._clock = clock
        self._interval = interval

    def price_for(self, symbol: str, side: Side) -> FillQuote | None:
        found = self._source.next_open(symbol, self._interval, self._clock.now_ms())
        return None if found is None else _quote(found[1], "next_open")

    def missing_reason(self, symbol: str) -> str:
        """Why an order of ``symbol`` cannot fill now (recorded on the rejected result)."""
        now = self._clock.now_ms()
        when = datetime.fromtimestamp(now / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
        return (
            f"not filled: no {self._interval} candle of {symbol} opens at {when} UTC, after the "
            f"decision (end of the data); orders fill at the next candle's open"
        )


def missing_reason(prices: FillPrices, symbol: str) -> str:
    """Why ``prices`` has no price for ``symbol`` now: the port's own words when it has them."""
    explain = getattr(prices, "missing_reason", None)
    if callable(explain):
        return str(explain(symbol))
    return f"no price for {symbol}; no closed candle yet"


class TickerPrices:
    """The exchange's ticker at execution time: ask for buys, bid for sells, else last."""

    def __init__(self, source: SnapshotSource) -> None:
        self._source = source

    def price_for(self, symbol: str, side: Side) -> FillQuote | None:
        ticker = self._source.snapshot([symbol]).get(symbol, {})
        return ticker_quote(ticker, side)


def ticker_quote(ticker: Mapping[str, Any], side: Side) -> FillQuote | None:
    """``ask`` for a buy, ``bid`` for a sell, ``last`` when that side is missing."""
    wanted = "ask" if side == "buy" else "bid"
    for source in (wanted, "last"):
        quote = _quote(ticker.get(source), source)
        if quote is not None:
            return quote
    return None


def as_fill_prices(prices: FillPrices | Callable[[str], float | None]) -> FillPrices:
    """``prices`` as a ``FillPrices`` (a plain function becomes ``CallablePrices``)."""
    if isinstance(prices, FillPrices):
        return prices
    return CallablePrices(prices)


def _quote(value: Any, source: str) -> FillQuote | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (math.isfinite(value) and value > 0):
        return None
    return FillQuote(float(value), source)
