"""Bitfinex: cryptofeed 2.4 lists its symbols from three lists (exchange pairs, currencies,
derivative pairs) and reads them by position. Recordings made by cryptofeed 1.x (cryptofeed's
own sample data of 2021) hold the first two only: it did not list derivatives, so neither did
the recording subscribe any, and the missing list is answered as an empty one."""

from __future__ import annotations

from cryptofeed.defines import BITFINEX
from cryptofeed.exchanges import Bitfinex

from connectors.venues.descriptor import AsRecorded, Venue

_DERIVATIVE_PAIRS = next(route for route in Bitfinex.rest_endpoints[0].route("instruments")
                         if route.endswith("pair:futures"))


class BitfinexWithoutDerivatives(AsRecorded):
    def unrecorded(self, url: str) -> str | None:
        return "[[]]" if url == _DERIVATIVE_PAIRS else None


VENUES = (Venue(name="bitfinex", cryptofeed_id=BITFINEX, ccxt_id="bitfinex",
                adapter=BitfinexWithoutDerivatives()),)
