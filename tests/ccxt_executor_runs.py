"""`quoteflow execute` on a ccxt venue served by a Binance stand-in (`tests/ccxt_standin.py`:
live exchanges are not reachable from the test machines), for the executor's end-to-end
tests on ccxt: the owner's key, the stand-in on a thread of its own so it outlives every
executor process, the executor's configuration on the stand-in's market, and the quotes
resting there compared with the ones an intent asks for.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from models.events import OrderIntent
from tests.ccxt_standin import BinanceSpotStandIn, BinanceStandIn, StandInThread
from tests.execute_runs import OWNER, START
from tests.kafka_service import kafka_toml

KEY, SECRET = "owner-key-1-abcdefgh", "owner-sec-1"  # the owner's key at the stand-in


def spot_venue() -> StandInThread:
    """Binance spot with the owner's key and START, serving from a thread of its own."""
    return StandInThread(lambda: BinanceSpotStandIn(KEY, SECRET, START))


def ccxt_config(path: Path, kafka, standin: BinanceStandIn, tmp_path: Path,
                execute: str = "") -> Path:
    """`quoteflow execute` on the stand-in's market for OWNER, written to `path`: the key
    store `tmp_path/keys.json`, the trail `tmp_path/audit.jsonl` (`execute`: more
    `[execute]` lines)."""
    urls = standin.ccxt_urls()["test"]
    fetch_markets = standin.ccxt_config().get("options", {}).get("fetchMarkets")
    path.write_text(
        kafka_toml(kafka)
        + f'[secrets]\nbackend = "local"\npath = "{tmp_path / "keys.json"}"\n'
        + f'[execute]\nvenue = "ccxt"\nexchange = "{standin.ccxt_id}"\n'
        + f'symbols = ["{standin.ccxt_symbol}"]\n'
        + f'owner = "{OWNER}"\nsandbox = true\nintent_max_age_s = 60\nrate_limit_capacity = 50\n'
        + f'reconcile_interval_s = 1.0\naudit_path = "{tmp_path / "audit.jsonl"}"\n' + execute
        + "[execute.ccxt_options.urls.test]\n"
        + "".join(f'{name} = "{url}"\n' for name, url in urls.items())
        + ("" if fetch_markets is None else "[execute.ccxt_options.options.fetchMarkets]\n"
           + f"types = {json.dumps(fetch_markets['types'])}\n")
    )
    return path


def open_quotes(standin: BinanceStandIn) -> set[tuple[str, Decimal, Decimal]]:
    """The stand-in's open orders as (side, price, quantity left)."""
    return {(o.side, o.price, o.quantity - o.executed) for o in standin.orders.values()
            if o.status in ("NEW", "PARTIALLY_FILLED")}


def desired_quotes(intent: OrderIntent) -> set[tuple[str, Decimal, Decimal]]:
    """The orders `intent` asks for, as `open_quotes` gives them."""
    return ({("BUY", q.price, q.size) for q in intent.bids}
            | {("SELL", q.price, q.size) for q in intent.asks})
