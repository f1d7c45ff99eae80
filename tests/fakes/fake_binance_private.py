"""Binance's private REST endpoints for the fake exchange: orders, trades, balances, positions.

``FakeBinancePrivate(fake)`` registers them on a ``FakeExchange`` and holds
the account: spot balances, the USDT-M wallet and positions, every order by
client id. The shapes are Binance's (spot ``/api/v3``, USDT-M ``/fapi/v1``,
``/fapi/v3``), so ccxt parses them with its own code. Signatures are not
checked (a signed request must carry one, so ccxt needs a key and a secret).

Order semantics, as Binance's:

- ``MARKET`` fills at the last price; ``LIMIT`` fills at the last price when
  marketable, else rests (``GTC``) or expires (``IOC``/``FOK``).
- Lot size, minimum amount and minimum notional are checked (-1013 spot,
  -4164 USDT-M unless ``reduceOnly``); a spot order beyond the free balance is
  refused (-2010, "insufficient balance"); a USDT-M order beyond the margin
  (-2019); a ``reduceOnly`` order that would open or grow a position (-2022).
- Spot commission is taken in the asset received (base on a buy, quote on a
  sell), or in BNB when ``spot_fee_asset = "BNB"``; USDT-M in USDT.
- ``newClientOrderId`` is NOT unique once an order is done (Binance refuses a
  duplicate only while the first is open), so a client that re-sends after a
  lost answer gets a second order here as there.

Scripting: ``partial_fill_next(fraction)`` fills only that part of the next
order (the rest expires), ``reject_next(code, message)`` refuses the next
order with Binance's error, ``auth_failure = True`` refuses every signed call
(-2015); ``fake.fail(...)`` injects network errors, rate limits and lost
responses as for public endpoints.
"""

from __future__ import annotations

import math
import threading
from decimal import Decimal
from typing import Literal

from tests.fakes.fake_binance_public import (
    ExchangeRequest,
    FakeMarket,
    FakeResponse,
    Handler,
    binance_error,
)
from tests.fakes.fake_binance_shapes import (
    FUTURES_LEVERAGE,
    FakeOrder,
    FuturesPosition,
    Kind,
    brackets,
    futures_account,
    order_json,
    position_rows,
    spot_account,
    trade_json,
)
from tests.fakes.fake_exchange import FakeExchange

__all__ = ["FUTURES_FEE_RATE", "SPOT_FEE_RATE", "FakeBinancePrivate", "FakeOrder"]

SPOT_FEE_RATE = 0.001
FUTURES_FEE_RATE = 0.0004
BNB_PRICE = 500.0
_PREFIX: dict[Kind, str] = {"spot": "/api/v3", "linear": "/fapi/v1"}


class FakeBinancePrivate:
    """The fake's account and its private endpoints (see the module doc)."""

    def __init__(
        self,
        fake: FakeExchange,
        *,
        balances: dict[str, float] | None = None,
        futures_wallet: float = 10_000.0,
    ) -> None:
        self.fake = fake
        self.balances: dict[str, float] = dict(
            balances if balances is not None else {"USDT": 10_000.0, "BTC": 0.0, "ETH": 2.0}
        )
        self.futures_wallet = futures_wallet
        self.positions: dict[str, FuturesPosition] = {}
        self.orders: list[FakeOrder] = []
        self.spot_fee_asset: Literal["received", "BNB"] = "received"
        self.auth_failure = False
        self._partial: float | None = None
        self._reject: tuple[int, str, int] | None = None
        self._next_id = 1000
        self._next_trade = 5000
        self._lock = threading.RLock()
        self._register()

    # -- scripting ----------------------------------------------------------------------------

    def partial_fill_next(self, fraction: float) -> None:
        """The next order fills only ``fraction`` of its amount (rounded down to the lot)."""
        self._partial = fraction

    def reject_next(self, code: int, message: str, status: int = 400) -> None:
        """The next order is refused with Binance's ``{"code": code, "msg": message}``."""
        self._reject = (code, message, status)

    def orders_with_client_id(self, client_order_id: str) -> list[FakeOrder]:
        with self._lock:
            return [o for o in self.orders if o.client_order_id == client_order_id]

    def set_position(self, symbol: str, amount: float, entry_price: float) -> None:
        """Hold a USDT-M position of ``amount`` contracts (signed) of ``symbol`` (``BTCUSDT``)."""
        self.positions[symbol] = FuturesPosition(amount, entry_price)

    # -- routes ----------------------------------------------------------------------------------

    def _register(self) -> None:
        fake = self.fake
        for kind, prefix in _PREFIX.items():
            fake.route("POST", f"{prefix}/order", self._guarded(self._create(kind)))
            fake.route("GET", f"{prefix}/order", self._guarded(self._get_order(kind)))
            fake.route("GET", f"{prefix}/openOrders", self._guarded(self._list(kind, True)))
            fake.route("GET", f"{prefix}/allOrders", self._guarded(self._list(kind, False)))
        fake.route("GET", "/api/v3/myTrades", self._guarded(self._trades("spot")))
        fake.route("GET", "/fapi/v1/userTrades", self._guarded(self._trades("linear")))
        fake.route(
            "GET", "/api/v3/account", self._guarded(lambda f, _r: spot_account(f, self.balances))
        )
        for version in ("v2", "v3"):
            fake.route(
                "GET",
                f"/fapi/{version}/account",
                self._guarded(
                    lambda f, _r: futures_account(f, self.futures_wallet, self.positions)
                ),
            )
            fake.route(
                "GET",
                f"/fapi/{version}/positionRisk",
                self._guarded(lambda f, _r: FakeResponse(200, position_rows(f, self.positions))),
            )
        fake.route("GET", "/fapi/v1/leverageBracket", self._guarded(brackets))
        for path in (  # ccxt's load_markets asks these once it has a key
            "/sapi/v1/capital/config/getall",
            "/sapi/v1/margin/allPairs",
            "/sapi/v1/margin/isolated/allPairs",
        ):
            fake.route("GET", path, self._guarded(lambda _f, _r: FakeResponse(200, [])))

    def _guarded(self, handler: Handler) -> Handler:
        def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
            if self.auth_failure:
                return binance_error(401, -2015, "Invalid API-key, IP, or permissions for action.")
            if "signature" not in request.params:
                return binance_error(400, -1102, "Mandatory parameter 'signature' was not sent.")
            with self._lock:
                return handler(fake, request)

        return handle

    def _market(self, request: ExchangeRequest, kind: Kind) -> FakeMarket | FakeResponse:
        market = self.fake.market(request.params.get("symbol", ""), kind)
        return market if market is not None else binance_error(400, -1121, "Invalid symbol.")

    # -- orders --------------------------------------------------------------------------------

    def _create(self, kind: Kind) -> Handler:
        def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
            market = self._market(request, kind)
            if isinstance(market, FakeResponse):
                return market
            if self._reject is not None:
                code, message, status = self._reject
                self._reject = None
                return binance_error(status, code, message)
            order = self._new_order(kind, market, request.params)
            refusal = self._refusal(order)
            if refusal is not None:
                return refusal
            self._execute(order)
            self.orders.append(order)
            return FakeResponse(200, order_json(order, with_fills=kind == "spot"))

        return handle

    def _new_order(self, kind: Kind, market: FakeMarket, params: dict[str, str]) -> FakeOrder:
        self._next_id += 1
        return FakeOrder(
            kind=kind,
            order_id=self._next_id,
            client_order_id=params.get("newClientOrderId") or f"fake{self._next_id}",
            market=market,
            side=params.get("side", ""),
            type=params.get("type", ""),
            orig_qty=float(params.get("quantity", "0")),
            price=float(params.get("price", "0")),
            time_in_force=params.get("timeInForce", "GTC"),
            reduce_only=params.get("reduceOnly", "false").lower() == "true",
            time=self.fake.clock.now_ms(),
        )

    def _refusal(self, order: FakeOrder) -> FakeResponse | None:
        market, qty = order.market, order.orig_qty
        if order.type not in ("MARKET", "LIMIT") or order.side not in ("BUY", "SELL"):
            return binance_error(400, -1116, "Invalid orderType.")
        if order.type == "LIMIT" and order.price <= 0:
            return binance_error(400, -1102, "Mandatory parameter 'price' was not sent.")
        step = Decimal(market.qty_step)
        if qty < float(market.min_qty) or Decimal(repr(qty)) % step != 0:
            return binance_error(400, -1013, "Filter failure: LOT_SIZE")
        price = self._fill_price(order)
        notional = qty * price
        if order.kind == "spot":
            if notional < float(market.min_notional):
                return binance_error(400, -1013, "Filter failure: NOTIONAL")
            return self._spot_funds_refusal(order, price)
        if order.reduce_only and not self._reduces(order):
            return binance_error(400, -2022, "ReduceOnly Order is rejected.")
        if notional < float(market.min_notional) and not order.reduce_only:
            return binance_error(
                400,
                -4164,
                f"Order's notional must be no smaller than {market.min_notional} "
                f"(unless you choose reduce only).",
            )
        if not order.reduce_only and notional / FUTURES_LEVERAGE > self.futures_wallet:
            return binance_error(400, -2019, "Margin is insufficient.")
        return None

    def _spot_funds_refusal(self, order: FakeOrder, price: float) -> FakeResponse | None:
        market = order.market
        needed, asset = (
            (order.orig_qty * price, market.quote)
            if order.side == "BUY"
            else (order.orig_qty, market.base)
        )
        if needed > self.balances.get(asset, 0.0) + 1e-12:
            return binance_error(
                400, -2010, "Account has insufficient balance for requested action."
            )
        return None

    def _reduces(self, order: FakeOrder) -> bool:
        amount = self.positions.get(order.market.market_id, FuturesPosition()).amount
        return (amount > 0 and order.side == "SELL") or (amount < 0 and order.side == "BUY")

    def _fill_price(self, order: FakeOrder) -> float:
        last = self.fake.last_price(order.market.symbol)
        tick = float(order.market.price_tick)
        return round(round(last / tick) * tick, 10)

    def _execute(self, order: FakeOrder) -> None:
        price = self._fill_price(order)
        marketable = order.type == "MARKET" or (
            order.price >= price if order.side == "BUY" else order.price <= price
        )
        if not marketable:
            order.status = "EXPIRED" if order.time_in_force in ("IOC", "FOK") else "NEW"
            return
        qty = order.orig_qty
        if order.kind == "linear" and order.reduce_only:
            qty = min(qty, abs(self.positions[order.market.market_id].amount))
        if self._partial is not None:
            step = Decimal(order.market.qty_step)
            qty = float((Decimal(repr(qty * self._partial)) // step) * step)
            self._partial = None
        if qty > 0:
            self._fill(order, qty, price)
        if order.executed_qty >= order.orig_qty - 1e-12:
            order.status = "FILLED"
        elif order.type == "LIMIT" and order.time_in_force == "GTC":
            order.status = "PARTIALLY_FILLED" if order.executed_qty else "NEW"
        else:
            order.status = "EXPIRED"

    def _fill(self, order: FakeOrder, qty: float, price: float) -> None:
        cost = qty * price
        if order.kind == "spot":
            commission, asset = self._spot_settle(order, qty, cost)
        else:
            commission, asset = cost * FUTURES_FEE_RATE, "USDT"
            self._futures_settle(order, qty, price)
            self.futures_wallet -= commission
        self._next_trade += 1
        order.trades.append(
            {
                "id": self._next_trade,
                "price": price,
                "qty": qty,
                "commission": commission,
                "asset": asset,
                "time": self.fake.clock.now_ms(),
            }
        )
        order.executed_qty += qty
        order.cum_quote += cost

    def _spot_settle(self, order: FakeOrder, qty: float, cost: float) -> tuple[float, str]:
        base, quote, bal = order.market.base, order.market.quote, self.balances
        buy = order.side == "BUY"
        if self.spot_fee_asset == "BNB":
            commission, asset = cost * SPOT_FEE_RATE / BNB_PRICE, "BNB"
            bal["BNB"] = bal.get("BNB", 0.0) - commission
        elif buy:
            commission, asset = qty * SPOT_FEE_RATE, base
        else:
            commission, asset = cost * SPOT_FEE_RATE, quote
        received = (qty if buy else cost) - (commission if asset != "BNB" else 0.0)
        bal[quote] = bal.get(quote, 0.0) + (-cost if buy else received)
        bal[base] = bal.get(base, 0.0) + (received if buy else -qty)
        return commission, asset

    def _futures_settle(self, order: FakeOrder, qty: float, price: float) -> None:
        position = self.positions.setdefault(order.market.market_id, FuturesPosition())
        signed = qty if order.side == "BUY" else -qty
        old = position.amount
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):  # open or grow
            position.entry_price = (abs(old) * position.entry_price + qty * price) / abs(new)
        else:
            closed = min(abs(old), qty)
            self.futures_wallet += closed * (price - position.entry_price) * math.copysign(1, old)
            if abs(new) > 1e-12 and (new > 0) != (old > 0):  # flipped
                position.entry_price = price
        position.amount = 0.0 if abs(new) < 1e-12 else new

    def _get_order(self, kind: Kind) -> Handler:
        def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
            market = self._market(request, kind)
            if isinstance(market, FakeResponse):
                return market
            client_id = request.params.get("origClientOrderId")
            order_id = request.params.get("orderId")
            for order in reversed(self.orders):
                if (
                    order.kind == kind
                    and order.market == market
                    and (order.client_order_id == client_id or str(order.order_id) == order_id)
                ):
                    return FakeResponse(200, order_json(order, with_fills=False))
            return binance_error(400, -2013, "Order does not exist.")

        return handle

    def _list(self, kind: Kind, open_only: bool) -> Handler:
        def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
            symbol = request.params.get("symbol")
            chosen = [
                o
                for o in self.orders
                if o.kind == kind
                and (symbol is None or o.market.market_id == symbol)
                and (not open_only or o.status in ("NEW", "PARTIALLY_FILLED"))
            ]
            return FakeResponse(200, [order_json(o, with_fills=False) for o in chosen])

        return handle

    def _trades(self, kind: Kind) -> Handler:
        def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
            market = self._market(request, kind)
            if isinstance(market, FakeResponse):
                return market
            wanted = request.params.get("orderId")
            rows = [
                trade_json(order, trade)
                for order in self.orders
                if order.kind == kind
                and order.market == market
                and (wanted is None or str(order.order_id) == wanted)
                for trade in order.trades
            ]
            return FakeResponse(200, rows)

        return handle

    # -- balances and positions ----------------------------------------------------------------
