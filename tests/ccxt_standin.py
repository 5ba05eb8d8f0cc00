"""A local stand-in for Binance spot's REST API, for testing the live ccxt path.

Real exchanges are not reachable from the test machines, so this serves, on 127.0.0.1, exactly
the endpoints ccxt's `binance` class calls for the executor — `GET /api/v3/exchangeInfo`,
`GET /api/v3/time`, `POST|DELETE|GET /api/v3/order`, `GET /api/v3/openOrders`,
`GET /api/v3/account`, `GET /api/v3/myTrades` — with Binance's request signing (HMAC-SHA256
of the query string or form body, `X-MBX-APIKEY`, `timestamp` within `recvWindow`), its
response shapes and its error codes (`-2010`, `-2011`, `-2013`, `-1022`, `-1021`, HTTP 429
with `Retry-After`, 5xx). ccxt's own signing, error mapping and response parsing run for real
against it. Anything else is answered 404, so a test fails loudly if ccxt starts calling an
endpoint the stand-in does not know.

For the exchange-side dead-man's switch it also serves Binance USD-M's
`POST /fapi/v1/countdownCancelAll` (signed like the rest; `countdownTime` in ms, 0 disarms,
each call replaces the symbol's countdown) and, so ccxt's `binanceusdm` class can load its
markets and trade, `GET /fapi/v1/exchangeInfo` with one BTCUSDT perpetual and the order
endpoints under `/fapi/v1/` (the same order book as spot's: one account, one BTCUSDT). When a
countdown runs out, every open order of its symbol is cancelled, as Binance does.

Matching is the test's to drive: orders rest until `fill()` executes part or all of one,
which records a trade as `/myTrades` reports it and moves the balances.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import web

SYMBOL = "BTCUSDT"
BASE, QUOTE = "BTC", "USDT"
TICK, STEP, MIN_NOTIONAL = Decimal("0.01"), Decimal("0.00001"), Decimal("5")
MAKER_FEE = Decimal("0.001")
TESTNET_API = "https://testnet.binance.vision"
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")


@dataclass
class StandInOrder:
    order_id: int
    client_order_id: str
    side: str  # BUY / SELL
    type: str  # LIMIT / LIMIT_MAKER
    price: Decimal
    quantity: Decimal
    time_ms: int
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    status: str = "NEW"
    update_ms: int = 0
    # The order's `selfTradePreventionMode` (the symbol's default when the order names none).
    self_trade_prevention: str = "EXPIRE_MAKER"

    def to_binance(self) -> dict:
        return {
            "symbol": SYMBOL, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "price": f"{self.price:.8f}",
            "origQty": f"{self.quantity:.8f}", "executedQty": f"{self.executed:.8f}",
            "cummulativeQuoteQty": f"{self.quote_executed:.8f}", "status": self.status,
            "timeInForce": "GTC", "type": self.type, "side": self.side,
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": self.time_ms,
            "updateTime": self.update_ms or self.time_ms, "isWorking": True,
            "workingTime": self.time_ms, "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": self.self_trade_prevention,
        }


@dataclass
class Fault:
    status: int
    body: dict | str  # a str goes out as it is (a load balancer's HTML page)
    headers: dict[str, str] = field(default_factory=dict)
    after_processing: bool = False  # the request takes effect, the answer is the fault


class BinanceSpotStandIn:
    def __init__(self, api_key: str, secret: str, balances: dict[str, Decimal]) -> None:
        self.api_key = api_key
        self._secret = secret.encode()
        self.balances = dict(balances)
        self.orders: dict[int, StandInOrder] = {}
        self.trades: list[dict] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.faults: list[Fault] = []  # answered in turn to the next private requests
        self.book_bid, self.book_ask = Decimal("60000.00"), Decimal("60000.10")
        self._next_order_id = 1000
        # Dead-man's switch: symbol -> the timer that cancels its open orders; every arming.
        self.countdowns: dict[str, asyncio.TimerHandle] = {}
        self.countdown_calls: list[tuple[str, int]] = []  # (symbol, countdownTime ms)
        self.countdown_cancels: list[str] = []  # client ids cancelled by a countdown
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> BinanceSpotStandIn:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for timer in self.countdowns.values():
            timer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    def ccxt_urls(self) -> dict:
        """ccxt's sandbox URLs pointed here (a config override for `urls.test`)."""
        return {"test": {
            "public": f"{self.url}/api/v3", "private": f"{self.url}/api/v3",
            "v1": f"{self.url}/api/v1",
        }}

    def ccxt_config(self) -> dict:
        """ccxt `binance` config for a sandbox pointed here, spot markets only: the stand-in
        is Binance spot, so ccxt must not load the futures markets too."""
        return {"urls": self.ccxt_urls(), "options": {"fetchMarkets": {"types": ["spot"]}}}

    def ccxt_usdm_urls(self) -> dict:
        """ccxt `binanceusdm`'s sandbox URLs pointed here."""
        return {"test": {
            "fapiPublic": f"{self.url}/fapi/v1", "fapiPrivate": f"{self.url}/fapi/v1",
        }}

    # -- the matching the test drives ----------------------------------------------------------

    def fill(self, client_order_id: str, quantity: Decimal) -> dict:
        order = self.orders_by_client(client_order_id)
        assert order.status in ("NEW", "PARTIALLY_FILLED"), order.status
        quantity = min(quantity, order.quantity - order.executed)
        notional = quantity * order.price
        fee = (notional * MAKER_FEE).quantize(Decimal("0.00000001"))  # as charged: 8 places
        order.executed += quantity
        order.quote_executed += notional
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"
        now = _now_ms()
        order.update_ms = now
        buy = order.side == "BUY"
        self.balances[BASE] += quantity if buy else -quantity
        self.balances[QUOTE] += -notional - fee if buy else notional - fee
        trade = {
            "symbol": SYMBOL, "id": len(self.trades) + 1, "orderId": order.order_id,
            "orderListId": -1, "price": f"{order.price:.8f}", "qty": f"{quantity:.8f}",
            "quoteQty": f"{notional:.8f}", "commission": f"{fee:.8f}",
            "commissionAsset": QUOTE, "time": now, "isBuyer": buy, "isMaker": True,
            "isBestMatch": True,
        }
        self.trades.append(trade)
        return trade

    def orders_by_client(self, client_order_id: str) -> StandInOrder:
        return next(o for o in self.orders.values() if o.client_order_id == client_order_id)

    def open_orders(self) -> list[str]:
        return [o.client_order_id for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED")]

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.requests.append((request.method, path))
        public = {("GET", "/api/v3/exchangeInfo"): self._exchange_info,
                  ("GET", "/api/v3/time"): self._time,
                  ("GET", "/fapi/v1/exchangeInfo"): self._usdm_exchange_info}
        handler = public.get((request.method, path))
        if handler is not None:
            return _json(handler())
        private = {
            ("POST", "/api/v3/order"): self._new_order,
            ("DELETE", "/api/v3/order"): self._cancel_order,
            ("GET", "/api/v3/order"): self._query_order,
            ("GET", "/api/v3/openOrders"): self._open_orders,
            ("GET", "/api/v3/account"): self._account,
            ("GET", "/api/v3/myTrades"): self._my_trades,
            ("POST", "/fapi/v1/order"): self._new_order,
            ("DELETE", "/fapi/v1/order"): self._cancel_order,
            ("GET", "/fapi/v1/order"): self._query_order,
            ("GET", "/fapi/v1/openOrders"): self._open_orders,
            ("POST", "/fapi/v1/countdownCancelAll"): self._countdown_cancel_all,
        }.get((request.method, path))
        if private is None:
            return _json({"code": -1000, "msg": f"stand-in has no {request.method} {path}"}, 404)
        signed = await request.text() if request.method == "POST" else request.query_string
        params, error = self._authenticate(request, signed)
        if error is not None:
            return error
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and not fault.after_processing:
            return _json(fault.body, fault.status, fault.headers)
        try:
            response = private(params)
        except _BinanceError as rejected:
            return _json({"code": rejected.code, "msg": rejected.msg}, 400)
        if fault is not None:
            return _json(fault.body, fault.status, fault.headers)
        return _json(response)

    def _authenticate(self, request: web.Request, signed: str):
        """Binance's SIGNED security: the HMAC of everything before `&signature=`."""
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return {}, _json({"code": -2015, "msg": "Invalid API-key, IP, or permissions."}, 401)
        payload, _, signature = signed.rpartition("&signature=")
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return {}, _json({"code": -1022, "msg": "Signature for this request is not valid."},
                             400)
        params = dict(parse_qsl(payload, keep_blank_values=True))
        window = int(params.get("recvWindow", 5000))
        if abs(_now_ms() - int(params.get("timestamp", 0))) > window:
            return {}, _json({"code": -1021, "msg": "Timestamp for this request is outside of "
                              "the recvWindow."}, 400)
        return params, None

    # -- endpoints -----------------------------------------------------------------------------

    def _time(self) -> dict:
        return {"serverTime": _now_ms()}

    def _exchange_info(self) -> dict:
        return {
            "timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": [{
                "symbol": SYMBOL, "status": "TRADING", "baseAsset": BASE,
                "baseAssetPrecision": 8, "quoteAsset": QUOTE, "quotePrecision": 8,
                "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                               "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
                "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
                "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
                     "maxPrice": "1000000.00000000", "tickSize": f"{TICK:.8f}"},
                    {"filterType": "LOT_SIZE", "minQty": f"{STEP:.8f}",
                     "maxQty": "9000.00000000", "stepSize": f"{STEP:.8f}"},
                    {"filterType": "NOTIONAL", "minNotional": f"{MIN_NOTIONAL:.8f}",
                     "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                     "applyMaxToMarket": False, "avgPriceMins": 5},
                ],
                "permissions": [], "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": list(STP_MODES),
            }],
        }

    def _usdm_exchange_info(self) -> dict:
        return {
            "timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 2400},
            ],
            "exchangeFilters": [], "assets": [{"asset": QUOTE, "marginAvailable": True}],
            "symbols": [{
                "symbol": SYMBOL, "pair": SYMBOL, "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000, "onboardDate": 1569398400000,
                "status": "TRADING", "baseAsset": BASE, "quoteAsset": QUOTE,
                "marginAsset": QUOTE, "pricePrecision": 2, "quantityPrecision": 5,
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                "settlePlan": 0, "triggerProtect": "0.0500",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000",
                     "tickSize": str(TICK)},
                    {"filterType": "LOT_SIZE", "minQty": str(STEP), "maxQty": "1000",
                     "stepSize": str(STEP)},
                    {"filterType": "MIN_NOTIONAL", "notional": str(MIN_NOTIONAL)},
                ],
                "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }],
        }

    def _countdown_cancel_all(self, params: dict) -> dict:
        """Binance USD-M: arm (or with 0 disarm) the symbol's countdown, replacing the last."""
        symbol = params.get("symbol")
        if symbol != SYMBOL:
            raise _BinanceError(-1121, "Invalid symbol.")
        countdown_ms = int(params["countdownTime"])
        self.countdown_calls.append((symbol, countdown_ms))
        previous = self.countdowns.pop(symbol, None)
        if previous is not None:
            previous.cancel()
        if countdown_ms > 0:
            self.countdowns[symbol] = asyncio.get_running_loop().call_later(
                countdown_ms / 1000, self._countdown_expired, symbol)
        return {"symbol": symbol, "countdownTime": str(countdown_ms)}

    def _countdown_expired(self, symbol: str) -> None:
        self.countdowns.pop(symbol, None)
        for order in self.orders.values():
            if order.status in ("NEW", "PARTIALLY_FILLED"):
                order.status = "CANCELED"
                order.update_ms = _now_ms()
                self.countdown_cancels.append(order.client_order_id)

    def _new_order(self, params: dict) -> dict:
        if params.get("symbol") != SYMBOL:
            raise _BinanceError(-1121, "Invalid symbol.")
        side, kind = params["side"], params["type"]
        if kind not in ("LIMIT", "LIMIT_MAKER"):
            raise _BinanceError(-1013, f"stand-in takes LIMIT and LIMIT_MAKER, not {kind}")
        price, quantity = Decimal(params["price"]), Decimal(params["quantity"])
        if price % TICK or quantity % STEP:
            raise _BinanceError(-1013, "Filter failure: PRICE_FILTER or LOT_SIZE")
        if price * quantity < MIN_NOTIONAL:
            raise _BinanceError(-1013, "Filter failure: NOTIONAL")
        client_order_id = params.get("newClientOrderId") or f"standin{self._next_order_id}"
        if any(o.client_order_id == client_order_id and o.status in ("NEW", "PARTIALLY_FILLED")
               for o in self.orders.values()):
            raise _BinanceError(-2010, "Duplicate order sent.")
        crosses = price >= self.book_ask if side == "BUY" else price <= self.book_bid
        if kind == "LIMIT_MAKER" and crosses:
            raise _BinanceError(-2010, "Order would immediately match and take.")
        stp = params.get("selfTradePreventionMode", "EXPIRE_MAKER")
        if stp not in STP_MODES:
            raise _BinanceError(-1130, "Invalid data sent for a parameter.")
        held = price * quantity * (1 + MAKER_FEE) if side == "BUY" else quantity
        asset = QUOTE if side == "BUY" else BASE
        if held > self._free(asset):
            raise _BinanceError(-2010, "Account has insufficient balance for requested action.")
        self._next_order_id += 1
        order = StandInOrder(self._next_order_id, client_order_id, side, kind, price, quantity,
                             _now_ms(), self_trade_prevention=stp)
        self.orders[order.order_id] = order
        return {**order.to_binance(), "transactTime": order.time_ms, "fills": []}

    def _find(self, params: dict, missing: _BinanceError) -> StandInOrder:
        client_order_id = params.get("origClientOrderId")
        for order in self.orders.values():
            if (client_order_id is not None and order.client_order_id == client_order_id) or (
                str(order.order_id) == params.get("orderId")
            ):
                return order
        raise missing

    def _cancel_order(self, params: dict) -> dict:
        order = self._find(params, _BinanceError(-2011, "Unknown order sent."))
        if order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise _BinanceError(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_ms = _now_ms()
        answer = order.to_binance()
        return {**answer, "origClientOrderId": order.client_order_id,
                "clientOrderId": f"cancel{order.order_id}", "transactTime": order.update_ms}

    def _query_order(self, params: dict) -> dict:
        return self._find(params, _BinanceError(-2013, "Order does not exist.")).to_binance()

    def _open_orders(self, params: dict) -> list[dict]:
        return [o.to_binance() for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED")]

    def _free(self, asset: str) -> Decimal:
        held = Decimal(0)
        for o in self.orders.values():
            if o.status not in ("NEW", "PARTIALLY_FILLED"):
                continue
            left = o.quantity - o.executed
            if o.side == "BUY" and asset == QUOTE:
                held += left * o.price * (1 + MAKER_FEE)
            elif o.side == "SELL" and asset == BASE:
                held += left
        return self.balances.get(asset, Decimal(0)) - held

    def _account(self, params: dict) -> dict:
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
            "sellerCommission": 0, "canTrade": True, "canWithdraw": True, "canDeposit": True,
            "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": _now_ms(), "accountType": "SPOT", "permissions": ["SPOT"],
            "balances": [
                {"asset": asset, "free": f"{self._free(asset):.8f}",
                 "locked": f"{total - self._free(asset):.8f}"}
                for asset, total in sorted(self.balances.items())
            ],
            "uid": 1,
        }

    def _my_trades(self, params: dict) -> list[dict]:
        since = int(params.get("startTime", 0))
        return [t for t in self.trades if t["time"] >= since]


class _BinanceError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None):
    if isinstance(body, str):
        return web.Response(text=body, status=status, headers=headers, content_type="text/html")
    return web.Response(text=json.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
