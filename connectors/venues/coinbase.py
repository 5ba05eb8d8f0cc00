"""Coinbase: cryptofeed 2.4 signs even public subscriptions (an API key is needed live), and
recordings made on the retired Coinbase Pro API, restated in the Advanced Trade API
that cryptofeed 2.4 speaks, so its own Coinbase parser and book keeping run on them.

Coinbase closed Pro (`ws-feed.pro.coinbase.com`, `api.pro.coinbase.com`) in 2023 and cryptofeed
moved to Advanced Trade: a different symbol list and different websocket envelopes. The
translation is field for field and adds nothing:
- `/products` (a list) becomes Advanced Trade's `{"products": [...]}` under its new URL;
- `snapshot` / `l2update` become `l2_data` snapshot / update events (`buy`/`sell` -> `bid`/`ask`);
- `match` becomes a `market_trades` update. Pro's `side` is the resting (maker) order's side and
  cryptofeed reports the taker's, so the side is flipped here;
- `last_match` (the last trade before subscribing) becomes a `market_trades` snapshot event,
  Advanced Trade's counterpart, which cryptofeed skips;
- everything else (`ticker`, `subscriptions`, errors) passes unchanged and cryptofeed ignores it:
  cryptofeed 2.4's Coinbase feed has no ticker channel.
"""

from __future__ import annotations

import json

from cryptofeed.defines import COINBASE
from cryptofeed.exchanges import Coinbase

from connectors.venues.descriptor import AsRecorded, Venue

_PRO_PRODUCTS_URL = "https://api.pro.coinbase.com/products"
_BOOK_SIDE = {"buy": "bid", "sell": "ask"}
_TAKER_SIDE = {"buy": "SELL", "sell": "BUY"}


class CoinbasePro(AsRecorded):
    def feed_config(self) -> dict:
        # Only signs the subscribe messages, which replay sends nowhere; cryptofeed 2.4's
        # Coinbase feed cannot subscribe without a key.
        return {"coinbase": {"key_id": "replay", "key_secret": "replay"}}

    def rest(self, url: str, body: str) -> tuple[str, str]:
        if url != _PRO_PRODUCTS_URL:
            return url, body
        products = [
            {
                "product_id": p["id"],
                "base_currency_id": p["base_currency"],
                "quote_currency_id": p["quote_currency"],
                "quote_increment": p["quote_increment"],
            }
            for p in json.loads(body)
        ]
        return Coinbase.rest_endpoints[0].route("instruments"), json.dumps({"products": products})

    def message(self, text: str) -> str:
        msg = json.loads(text)
        kind = msg.get("type")
        if kind == "l2update":
            updates = [_level(side, price, size) for side, price, size in msg["changes"]]
            return _envelope("l2_data", "update", msg, updates=updates, timestamp=msg["time"])
        if kind == "snapshot":
            updates = [_level("buy", price, size) for price, size in msg["bids"]]
            updates += [_level("sell", price, size) for price, size in msg["asks"]]
            return _envelope("l2_data", "snapshot", msg, updates=updates)
        if kind in ("match", "last_match"):
            trade = {
                "trade_id": msg["trade_id"],
                "product_id": msg["product_id"],
                "price": msg["price"],
                "size": msg["size"],
                "side": _TAKER_SIDE[msg["side"]],
                "time": msg["time"],
            }
            event = "update" if kind == "match" else "snapshot"
            return _envelope("market_trades", event, msg, trades=[trade], timestamp=msg["time"])
        return text


def _level(side: str, price: str, size: str) -> dict:
    return {"side": _BOOK_SIDE[side], "price_level": price, "new_quantity": size}


def _envelope(
    channel: str, event_type: str, msg: dict, timestamp: str | None = None, **body
) -> str:
    envelope = {
        "channel": channel,
        "events": [{"type": event_type, "product_id": msg["product_id"], **body}],
    }
    if timestamp is not None:
        envelope["timestamp"] = timestamp
    return json.dumps(envelope)


VENUES = (
    Venue(name="coinbase", cryptofeed_id=COINBASE, ccxt_id="coinbase", adapter=CoinbasePro(),
          needs_keys=True),
)
