"""Exchanges cryptofeed 2.4 knows only by a later name, whose old recordings speak the API of
the feed it has now, at the old host:

- BitMax, renamed AscendEX in 2021: the ASCENDEX feed speaks its API (`/api/pro/v1/products`,
  `depth:` / `trades:`, `depth-snapshot` asked over the websocket); `BITMAX.0` and
  `BITMAX.ws.15.0` of April 2021 (cryptofeed's sample data) asked at bitmax.io.
- Bitcoin.com Exchange (since FMFW.io, whose API v3 is another), a HitBTC API v2 white label:
  the HITBTC feed speaks it (`/api/2/public/symbol`, JSON-RPC `snapshotOrderbook` /
  `updateOrderbook`); `BITCOINCOM.0` and `BITCOINCOM.ws.9.0` of April 2021 asked at
  api.exchange.bitcoin.com.

The adapter files the recorded start-up and snapshot calls under the host the feed asks today.
A session's address (the old host) matches none of the feed's endpoints, so its one connection
carries the whole subscription, as live."""

from __future__ import annotations

from cryptofeed.defines import ASCENDEX, HITBTC

from connectors.venues.descriptor import AsRecorded, Venue


class NewHost(AsRecorded):
    """REST calls recorded at `old` are filed as asked at `new` (both `https://host/`)."""

    def __init__(self, old: str, new: str) -> None:
        self._old, self._new = old, new

    def rest(self, url: str, body: str) -> tuple[str, str]:
        if url.startswith(self._old):
            url = self._new + url[len(self._old):]
        return url, body


VENUES = (
    Venue(name="bitmax", cryptofeed_id=ASCENDEX, ccxt_id="ascendex",
          adapter=NewHost("https://bitmax.io/", "https://ascendex.com/")),
    Venue(name="bitcoincom", cryptofeed_id=HITBTC, ccxt_id="fmfw",
          adapter=NewHost("https://api.exchange.bitcoin.com/", "https://api.hitbtc.com/")),
)
