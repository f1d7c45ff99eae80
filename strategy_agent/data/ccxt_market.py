"""Live market data from any exchange ccxt supports, through its public endpoints (no key).

``CcxtMarketDataSource`` keeps one ccxt instance for its whole life (ccxt's
rate limiter and HTTP session live in it), loads the markets once and again
when they are a day old, and retries network errors and rate limits with
backoff (``RetryPolicy``). It returns closed candles only: exchanges include
the still-forming bar, which is dropped by the source's clock. Errors are
``strategy_agent.errors`` exceptions: ``ConfigurationError`` for an unknown
exchange, symbol or interval (fix the config), ``DataUnavailableError`` when the
exchange cannot be reached now (retry later).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import ccxt

from strategy_agent.clock import Clock
from strategy_agent.data.ccxt_exchange import RetryPolicy, call_with_retries, create_exchange
from strategy_agent.data.ccxt_rules import CcxtMarketRules
from strategy_agent.data.interfaces import MarketDataSource
from strategy_agent.data.symbols import market_kind, validate_symbols
from strategy_agent.errors import ConfigurationError, DataUnavailableError, TemporaryError
from strategy_agent.models import INTERVAL_MS, Candle, InstrumentRef

MARKETS_MAX_AGE_MS = 86_400_000  # markets are loaded again once a day
DEFAULT_PAGE_LIMIT = 1000  # candles asked per request; ccxt lowers it to the exchange's maximum


class CcxtMarketDataSource(MarketDataSource):
    """Closed candles and market snapshots of one exchange, as of ``clock``.

    ``exchange`` may be given (already configured); otherwise one is made by
    ``create_exchange(exchange_id, api_url=..., config=...)``. ``clock`` decides
    which candles are closed: candle ``ts`` is closed once ``ts + interval <=
    clock.now_ms()``.
    """

    def __init__(
        self,
        exchange_id: str,
        *,
        clock: Clock,
        exchange: ccxt.Exchange | None = None,
        api_url: str | None = None,
        config: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        page_limit: int = DEFAULT_PAGE_LIMIT,
    ) -> None:
        self._exchange = exchange or create_exchange(exchange_id, api_url=api_url, config=config)
        if not self._exchange.has.get("fetchOHLCV"):
            raise ConfigurationError(
                f"{exchange_id} offers no candles through ccxt (fetchOHLCV); pick another exchange"
            )
        self._exchange_id = exchange_id
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._page_limit = page_limit
        self._markets_loaded_ms: int | None = None
        self._rules: CcxtMarketRules | None = None
        self._instruments: dict[str, InstrumentRef] = {}
        self._lock = threading.RLock()  # one ccxt instance; its calls are not thread-safe

    @property
    def exchange_id(self) -> str:
        return self._exchange_id

    @property
    def clock(self) -> Clock:
        """The clock that decides which candles are closed."""
        return self._clock

    @property
    def page_limit(self) -> int:
        """Candles asked per ``fetch_ohlcv`` call (ccxt lowers it to the exchange's maximum)."""
        return self._page_limit

    @property
    def exchange(self) -> ccxt.Exchange:
        """The ccxt instance (shared with whoever needs the same session and rate limiter)."""
        return self._exchange

    # -- markets --------------------------------------------------------------------------

    def markets(self) -> dict[str, dict[str, Any]]:
        """ccxt's markets, loaded on first use and reloaded when a day old.

        A failed daily reload keeps the previous markets (they rarely change);
        a failed first load raises ``DataUnavailableError``.
        """
        with self._lock:
            now = self._clock.now_ms()
            loaded = self._markets_loaded_ms
            if loaded is None or now - loaded >= MARKETS_MAX_AGE_MS:
                try:
                    self._call("load_markets", self._exchange.load_markets, loaded is not None)
                except DataUnavailableError:
                    if loaded is None:
                        raise
                self._markets_loaded_ms = now
                self._rules = None
            return self._exchange.markets  # type: ignore[no-any-return]

    def rules(self) -> CcxtMarketRules:
        """Market rules of the loaded markets (for the guardrails)."""
        self.markets()
        with self._lock:
            if self._rules is None:
                self._rules = CcxtMarketRules(self._exchange)
            return self._rules

    def available_symbols(self) -> list[str]:
        """Active spot and linear swap symbols of the exchange, sorted."""
        markets = self.markets()
        return sorted(s for s in markets if not validate_symbols(self._exchange_id, [s], markets))

    def check_symbols(self, symbols: list[str]) -> None:
        """``ConfigurationError`` listing every symbol that cannot be traded here."""
        problems = validate_symbols(self._exchange_id, symbols, self.markets())
        if problems:
            raise ConfigurationError("; ".join(problems))

    def check_interval(self, interval: str) -> int:
        """The interval's length in ms; ``ConfigurationError`` when it is not offered."""
        offered = self._exchange.timeframes or {}
        usable = [i for i in INTERVAL_MS if i in offered]
        if interval not in INTERVAL_MS or interval not in offered:
            raise ConfigurationError(
                f"{self._exchange_id} does not offer {interval!r} candles through ccxt; "
                f"use one of {', '.join(usable) or 'none'}"
            )
        return INTERVAL_MS[interval]

    # -- candles --------------------------------------------------------------------------

    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        """The last ``lookback`` closed candles of each symbol, oldest first, grouped by symbol."""
        if lookback < 0:
            raise ValueError(f"lookback must be >= 0, got {lookback}")
        step = self.check_interval(interval)
        wanted = list(dict.fromkeys(symbols))
        self.check_symbols(wanted)
        if lookback == 0:
            return []
        last_open = self._clock.now_ms() // step * step - step  # newest closed candle
        candles: list[Candle] = []
        for symbol in wanted:
            rows = self.closed_rows(symbol, interval, last_open - (lookback - 1) * step, last_open)
            candles.extend(self._candle(symbol, interval, row) for row in rows[-lookback:])
        return candles

    def closed_rows(
        self, symbol: str, interval: str, first_open_ms: int, last_open_ms: int
    ) -> list[list[float]]:
        """Closed OHLCV rows ``[ts, o, h, l, c, v]`` with ``first <= ts <= last``, paged forward.

        Rows the exchange returns outside the range, and the forming candle, are
        dropped; a row repeated across pages is kept once.
        """
        step = self.check_interval(interval)
        last = min(last_open_ms, self._clock.now_ms() // step * step - step)
        rows: list[list[float]] = []
        cursor = first_open_ms
        while cursor <= last:
            page = self.fetch_page(symbol, interval, cursor, self._page_limit)
            page = [r for r in page if cursor <= r[0] <= last]
            if not page:
                break
            rows.extend(page)
            cursor = int(page[-1][0]) + step
        return rows

    def fetch_page(
        self, symbol: str, interval: str, since_ms: int, limit: int
    ) -> list[list[float]]:
        """One ``fetch_ohlcv`` call from ``since_ms``: rows as the exchange sent them, sorted.

        May include the forming candle and rows with missing values (those are
        dropped here). Retried on network errors and rate limits.
        """
        raw = self._call(
            f"fetch_ohlcv {symbol} {interval}",
            self._exchange.fetch_ohlcv,
            symbol,
            interval,
            since_ms,
            limit,
        )
        rows = [list(r) for r in raw or [] if len(r) >= 6 and all(v is not None for v in r[:5])]
        for row in rows:
            row[5] = 0.0 if row[5] is None else row[5]
        return sorted(rows, key=lambda r: r[0])

    def _candle(self, symbol: str, interval: str, row: list[float]) -> Candle:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            quote = self.markets()[symbol].get("quote")
            instrument = InstrumentRef(
                symbol=symbol, exchange_id=self._exchange_id, quote_ccy=quote
            )
            self._instruments[symbol] = instrument
        try:
            return Candle(
                ts=int(row[0]),
                instrument=instrument,
                open=row[1],
                high=row[2],
                low=row[3],
                close=row[4],
                volume=row[5],
                interval=interval,  # type: ignore[arg-type]  # checked by check_interval
            )
        except ValueError as error:
            raise DataUnavailableError(
                f"{self._exchange_id} sent a malformed {symbol} {interval} candle: {error}"
            ) from error

    # -- snapshot -------------------------------------------------------------------------

    def snapshot(self, symbols: list[str]) -> dict[str, dict[str, float]]:
        """Per symbol: ``last``, ``bid``, ``ask``, ``change_24h_pct`` and, for swaps,
        ``mark_price``, ``funding_rate`` (per funding period, a fraction) and
        ``next_funding_ts`` (epoch ms), where the exchange gives them.

        Prices are in the quote currency. A value the exchange does not give is
        left out, never guessed.
        """
        markets = self.markets()
        self.check_symbols(list(symbols))
        result: dict[str, dict[str, float]] = {}
        for symbol in dict.fromkeys(symbols):
            ticker = self._call(f"fetch_ticker {symbol}", self._exchange.fetch_ticker, symbol)
            values: dict[str, Any] = {
                "last": ticker.get("last") or ticker.get("close"),
                "bid": ticker.get("bid"),
                "ask": ticker.get("ask"),
                "change_24h_pct": ticker.get("percentage"),
                "mark_price": ticker.get("markPrice"),
            }
            if market_kind(markets[symbol]) == "swap":
                values.update(self._funding(symbol, values["mark_price"]))
            result[symbol] = {k: float(v) for k, v in values.items() if _finite(v)}
        return result

    def _funding(self, symbol: str, mark_price: Any) -> dict[str, Any]:
        if not self._exchange.has.get("fetchFundingRate"):
            return {}
        try:
            funding = self._call(
                f"fetch_funding_rate {symbol}", self._exchange.fetch_funding_rate, symbol
            )
        except ConfigurationError:  # not offered for this market after all
            return {}
        return {
            "mark_price": mark_price if _finite(mark_price) else funding.get("markPrice"),
            "funding_rate": funding.get("fundingRate"),
            "next_funding_ts": funding.get("fundingTimestamp"),
        }

    # -- calls ----------------------------------------------------------------------------

    def _call(self, what: str, func: Any, *args: Any) -> Any:
        label = f"{self._exchange_id} {what}"
        with self._lock:
            try:
                return call_with_retries(label, func, *args, policy=self._retry)
            except TemporaryError as error:
                raise DataUnavailableError(str(error)) from error


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
