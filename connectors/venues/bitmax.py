"""BitMax, renamed AscendEX in 2021: cryptofeed 2.4 knows it only as ASCENDEX, whose feed
speaks the same API (`/api/pro/v1/products`, `depth:` / `trades:` channels, `depth-snapshot`
asked over the websocket). Its recordings (`BITMAX.0`, `BITMAX.ws.15.0` of April 2021 in
cryptofeed's sample data) asked at bitmax.io: the adapter files the recorded start-up calls
under ascendex.com, where 2.4.1 asks them. The session's address (bitmax.io) matches none of
the feed's endpoints, so its one connection carries the whole subscription, as live."""

from __future__ import annotations

from cryptofeed.defines import ASCENDEX

from connectors.venues.descriptor import AsRecorded, Venue

_OLD, _NEW = "https://bitmax.io/", "https://ascendex.com/"


class BitmaxAsAscendex(AsRecorded):
    def rest(self, url: str, body: str) -> tuple[str, str]:
        return (_NEW + url[len(_OLD):] if url.startswith(_OLD) else url), body


VENUES = (
    Venue(name="bitmax", cryptofeed_id=ASCENDEX, ccxt_id="ascendex", adapter=BitmaxAsAscendex()),
)
