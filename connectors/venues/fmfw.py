"""FMFW.io (API v3): on subscribing, the exchange sends the recent trades and candles as a
`snapshot` message, then `update` messages of the same shape. cryptofeed 2.4.1 reads trades
and candles from `update` only, so each snapshot would fail (KeyError: 'update'; live, it
raises in the feed's handler). The adapter hands cryptofeed a snapshot as the update it has
the shape of: its trades come out as trades, as HitBTC's and Phemex's trade snapshots do."""

from __future__ import annotations

import json

from cryptofeed.defines import FMFW

from connectors.venues.descriptor import AsRecorded, Venue


class FmfwSnapshotsAsUpdates(AsRecorded):
    def message(self, text: str) -> str:
        if '"snapshot"' not in text:
            return text
        message = json.loads(text)
        channel = message.get("ch", "")
        if (channel == "trades" or channel.startswith("candles/")) and "update" not in message:
            message["update"] = message.pop("snapshot")
            return json.dumps(message)
        return text


VENUES = (Venue(name="fmfw", cryptofeed_id=FMFW, ccxt_id="fmfw", adapter=FmfwSnapshotsAsUpdates()),)
