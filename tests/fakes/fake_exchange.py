"""A fake Binance (spot, USDT-M and one COIN-M market) on 127.0.0.1, for tests and demos.

ccxt talks to it over real HTTP once its ``urls['api']`` entries point here
(``create_exchange("binance", api_url=fake.base_url)``): the paths are Binance's
(``/api/v3/...`` spot, ``/fapi/v1/...`` USDT-M, ``/dapi/v1/...`` COIN-M), the
answers have Binance's shapes, so ccxt parses them with its own code.

Public endpoints served (``fake_binance_public.py``): exchangeInfo (markets),
klines (paging by ``startTime``/``endTime``/``limit``, oldest first, the
forming candle last as Binance does), 24h ticker, premiumIndex (mark price,
funding rate).

Prices come from the simulated market's deterministic path, as of the fake's
``ManualClock``: candle ``i`` of an interval opens at ``origin_ms + i * step``;
the candle that contains ``now`` is served *forming* (its close, high, low and
volume are the part of the final bar done so far), so a client that keeps it
stores a value the exchange later changes. ``remove_candles`` makes the
exchange have no candle in a time range (an outage), ``listing_ms`` when a
market's history starts.

Failure injection: ``fail(kind, path, times, after)`` makes matching requests
fail: ``"network"`` (connection closed with no answer), ``"rate_limit"``
(HTTP 429, Binance's body), ``"unavailable"`` (HTTP 503 from a proxy) or
``"lost_response"`` (the request is handled, then the connection is closed:
for orders, "accepted but the answer lost").

Extending it (private endpoints, order semantics such as partial fills and
rejections): add handlers with ``fake.route("POST", "/api/v3/order", handler)``
from a module of their own; a handler gets the fake and the ``ExchangeRequest``
(query and form parameters merged) and returns a ``FakeResponse``; state such
as orders by client id can live on the fake. Every request is kept in
``fake.requests``. ``fake_binance_private.FakeBinancePrivate(fake)`` adds the
private endpoints (orders, trades, balances, positions) that way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.data.ccxt_exchange import RetryPolicy
from strategy_agent.data.ccxt_market import CcxtMarketDataSource
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.models import INTERVAL_MS
from tests.fakes.fake_binance_public import (
    DEFAULT_MARKETS,
    TICKER_INTERVAL,
    ExchangeRequest,
    FakeMarket,
    FakeResponse,
    Handler,
    MarketKind,
    binance_error,
    register_public_routes,
)

__all__ = [
    "DEFAULT_MARKETS",
    "FAKE_NOW_MS",
    "ExchangeRequest",
    "FakeExchange",
    "FakeMarket",
    "FakeResponse",
    "binance_error",
    "binance_source",
    "fake_exchange",
]

FaultKind = Literal["network", "rate_limit", "unavailable", "lost_response"]


@dataclass
class Fault:
    """Fail the next ``times`` requests to ``path`` (any path when ``None``) after ``after``."""

    kind: FaultKind
    path: str | None = None
    times: int = 1
    after: int = 0


class FakeExchange:
    """The fake Binance server; ``start()`` it, point ccxt at ``base_url``, ``stop()`` it."""

    def __init__(
        self,
        clock: ManualClock,
        markets: tuple[FakeMarket, ...] = DEFAULT_MARKETS,
        *,
        seed: int = 7,
        origin_ms: int = DEFAULT_ORIGIN_MS,
    ) -> None:
        self.clock = clock
        self.markets = {m.market_id + ":" + m.kind: m for m in markets}
        self.origin_ms = origin_ms
        self.listing_ms: dict[str, int] = {}  # symbol -> first candle's open time
        self.funding_rate = 0.0001
        self.requests: list[ExchangeRequest] = []
        self._prices = SimulatedMarketDataSource(seed=seed, clock=clock, origin_ms=origin_ms)
        self._removed: dict[str, list[tuple[int, int]]] = {}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], Handler] = {}
        register_public_routes(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeExchange:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting ------------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method path`` with ``handler`` (replaces an existing route)."""
        self._routes[(method.upper(), path)] = handler

    def fail(
        self, kind: FaultKind, path: str | None = None, times: int = 1, after: int = 0
    ) -> None:
        """Make ``times`` requests to ``path`` fail as ``kind``, after ``after`` succeed."""
        with self._lock:
            self._faults.append(Fault(kind, path, times, after))

    def remove_candles(self, symbol: str, start_ms: int, end_ms: int) -> None:
        """The exchange has no candle of ``symbol`` opening in ``[start_ms, end_ms)``."""
        self._removed.setdefault(symbol, []).append((start_ms, end_ms))

    def requests_to(self, path: str) -> list[ExchangeRequest]:
        """The requests received for ``path``, in order."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        """Forget faults and recorded requests."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    # -- market data (also for tests' expectations) -----------------------------------------

    def market(self, market_id: str, kind: MarketKind) -> FakeMarket | None:
        return self.markets.get(market_id + ":" + kind)

    def candles(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[list[float]]:
        """The rows ``[ts, o, h, l, c, v]`` this exchange serves opening in ``[start_ms, end_ms)``.

        Up to and including the forming candle at the clock's now, none before
        the listing or in a removed range.
        """
        step = INTERVAL_MS[interval]
        now = self.clock.now_ms()
        first = max(self.listing_ms.get(symbol, self.origin_ms), self.origin_ms, start_ms)
        first_index = -(-(first - self.origin_ms) // step)
        forming_index = (now - self.origin_ms) // step
        end_index = min(forming_index + 1, -(-(end_ms - self.origin_ms) // step))
        if end_index <= first_index:
            return []
        frame = self._prices.history(symbol, interval, first_index, end_index, closed_only=False)
        rows = [[int(r[0]), *map(float, r[1:])] for r in frame.itertuples(index=False)]
        if rows and rows[-1][0] == self.origin_ms + forming_index * step:
            rows[-1] = _forming(rows[-1], (now - rows[-1][0]) / step)
        removed = self._removed.get(symbol, [])
        return [r for r in rows if not any(a <= r[0] < b for a, b in removed)]

    def last_price(self, symbol: str) -> float:
        """The forming ``TICKER_INTERVAL`` candle's close: the last trade price now."""
        now = self.clock.now_ms()
        rows = self.candles(symbol, TICKER_INTERVAL, now - INTERVAL_MS[TICKER_INTERVAL], now + 1)
        return float(rows[-1][4])

    # -- HTTP -------------------------------------------------------------------------------

    def _take_fault(self, path: str) -> FaultKind | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is not None and fault.path != path:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault.kind
        return None

    def _handle(self, request: ExchangeRequest) -> FakeResponse:
        with self._lock:
            self.requests.append(request)
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            return binance_error(
                404, -1000, f"fake exchange: no route {request.method} {request.path}"
            )
        return handler(self, request)


def _forming(row: list[float], done: float) -> list[float]:
    """The part of a final candle done after fraction ``done`` of its interval."""
    ts, open_, high, low, close, volume = row
    partial_close = open_ + (close - open_) * done
    top, bottom = max(open_, partial_close), min(open_, partial_close)
    partial_high = top + (high - max(open_, close)) * done
    partial_low = bottom - (min(open_, close) - low) * done
    return [
        ts,
        open_,
        max(partial_high, top),
        min(partial_low, bottom),
        partial_close,
        volume * done,
    ]


# -- the HTTP handler -----------------------------------------------------------------------------


def _handler_class(fake: FakeExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = dict(parse_qsl(parts.query)) | dict(parse_qsl(body))
            request = ExchangeRequest(self.command, parts.path, params, body)
            fault = fake._take_fault(parts.path)
            if fault == "network":
                with fake._lock:
                    fake.requests.append(request)
                self.close_connection = True  # no answer at all: the client sees a dropped link
                return
            if fault in ("rate_limit", "unavailable"):
                with fake._lock:
                    fake.requests.append(request)
                response = (
                    binance_error(429, -1003, "Too many requests; please use the websocket.")
                    if fault == "rate_limit"
                    else FakeResponse(503, "<html><body>503 Service Unavailable</body></html>")
                )
                self._send(response)
                return
            response = fake._handle(request)
            if fault == "lost_response":
                self.close_connection = True
                return
            self._send(response)

        def _send(self, response: FakeResponse) -> None:
            text = isinstance(response.body, str)
            payload = (response.body if text else json.dumps(response.body)).encode()
            self.send_response(response.status)
            self.send_header("Content-Type", "text/html" if text else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler


# -- pytest fixture ---------------------------------------------------------------------------------

FAKE_NOW_MS = DEFAULT_ORIGIN_MS + 30 * 86_400_000 + 17 * 60_000  # 30 days in, 17 min past the hour


@pytest.fixture
def fake_exchange() -> Iterator[FakeExchange]:
    """A started fake Binance whose clock is at ``FAKE_NOW_MS`` (``fake.clock`` moves it)."""
    fake = FakeExchange(ManualClock(FAKE_NOW_MS)).start()
    try:
        yield fake
    finally:
        fake.stop()


# ccxt settings for tests: no real waiting between calls, a short time-out.
FAST_CCXT_CONFIG: dict[str, Any] = {"rateLimit": 1, "timeout": 5000}


def binance_source(fake: FakeExchange, **kwargs: Any) -> CcxtMarketDataSource:
    """A ``CcxtMarketDataSource`` for binance pointed at ``fake``, on the fake's clock."""
    kwargs.setdefault("config", FAST_CCXT_CONFIG)
    kwargs.setdefault("retry", RetryPolicy(attempts=3, sleep=lambda _seconds: None))
    return CcxtMarketDataSource("binance", clock=fake.clock, api_url=fake.base_url, **kwargs)
