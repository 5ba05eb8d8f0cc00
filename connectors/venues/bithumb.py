"""Bithumb: cryptofeed 2.4 offers trades only. Bithumb's `orderbookdepth` channel sends deltas
with no snapshot to build them on, so cryptofeed deliberately has no book for it; recordings
made by cryptofeed 1.x (cryptofeed's own sample data of 2021) hold those frames anyway. The
adapter hands cryptofeed each of them as the status frame it passes over in silence, so they
count as deliberately ignored rather than as dead letters of data nothing can use."""

from __future__ import annotations

import json

from cryptofeed.defines import BITHUMB

from connectors.venues.descriptor import AsRecorded, Venue

_IGNORED = json.dumps({"status": "0000", "resmsg": "orderbookdepth: deltas without a snapshot"})


class BithumbWithoutBook(AsRecorded):
    def message(self, text: str) -> str:
        if '"orderbookdepth"' in text and json.loads(text).get("type") == "orderbookdepth":
            return _IGNORED
        return text


VENUES = (Venue(name="bithumb", cryptofeed_id=BITHUMB, ccxt_id="bithumb",
                adapter=BithumbWithoutBook()),)
