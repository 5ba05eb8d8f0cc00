"""`quoteflow execute` on a ccxt venue killed with SIGKILL at random points while intents
arrive and orders fill: no order reaches the venue twice, none is left open there, the
positions equal the venue's trades, and Kafka holds exactly what the audit trail published.

The venue is `tests/ccxt_standin.py`, a local stand-in for Binance spot's REST API driven
through ccxt with the owner's HMAC key from the secret store: live exchanges are not
reachable from the test machines. A real Kafka broker; the executor is its own OS process.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.audit_store import AuditStore, topic_links, verify_anchored, verify_audit
from connectors.kafka import EventProducer
from connectors.secrets import MASTER_KEY_ENV, ExchangeCredentials
from models.audit import canonical
from models.events import OrderIntent, decode, encode
from tests.ccxt_executor_runs import (
    KEY,
    SECRET,
    ccxt_config,
    desired_quotes,
    open_quotes,
    spot_venue,
)
from tests.ccxt_standin import BinanceSpotStandIn, StandInThread
from tests.execute_runs import (
    OWNER,
    audit_records,
    events_on,
    key_store,
    quote_intent,
    resumes_per_run,
    wait_for,
)
from tests.flow_runs import QUOTEFLOW
from tests.kafka_service import new_deployment

pytestmark = pytest.mark.integration

SEED = 1105
KILLS = 4


def _fill_one(venue: StandInThread, rng: random.Random) -> bool:
    """Fill part of one of the venue's open orders, picked by `rng`; False if none is open."""
    def fill(standin: BinanceSpotStandIn) -> bool:
        open_ids = standin.open_orders()
        if not open_ids:
            return False
        standin.fill(rng.choice(open_ids), Decimal("0.0005"))
        return True
    return venue.read(fill)


def _deployment(kafka_bootstrap: str, tmp_path: Path):
    """A fresh deployment, the owner's key in the store, the stand-in serving, and a function
    starting `quoteflow execute` on them as its own OS process (so it can be SIGKILLed)."""
    kafka = new_deployment(kafka_bootstrap)
    store, environ, _ = key_store(tmp_path)
    store.put(OWNER, "binance", ExchangeCredentials(KEY, SECRET))
    venue = spot_venue()
    config = ccxt_config(tmp_path / "quoteflow.toml", kafka, venue.standin, tmp_path)
    env = {**os.environ, MASTER_KEY_ENV: environ[MASTER_KEY_ENV]}
    log = tmp_path / "execute.log"

    def start(*args: str) -> subprocess.Popen:
        with log.open("ab") as out:
            return subprocess.Popen(
                [str(QUOTEFLOW), "execute", "--config", str(config), *args],
                stdout=out, stderr=subprocess.STDOUT, env=env)

    return kafka, venue, tmp_path / "audit.jsonl", log, start


class _Intents:
    """A quote every 0.2 s with prices that move, as the quote flow would send them."""

    def __init__(self, kafka) -> None:
        self._producer = EventProducer(kafka)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        step = 0
        while not self._stop.is_set():
            offset = Decimal(step % 7) / 100
            self._producer.send(quote_intent(str(Decimal("59990.00") - offset),
                                             str(Decimal("60010.00") + offset)))
            self._producer.flush()
            step += 1
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._producer.close()


def test_ccxt_executor_killed_at_random_points_never_doubles_or_orphans_an_order(
    kafka_bootstrap, tmp_path
):
    rng = random.Random(SEED)
    kafka, venue, audit, log, start = _deployment(kafka_bootstrap, tmp_path)
    standin = venue.standin
    intents = _Intents(kafka)
    filled = 0
    try:
        for _ in range(KILLS):
            process = start()
            before = len(standin.orders)
            deadline = time.monotonic() + 60
            while len(standin.orders) < before + 2 and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()[-3000:]
                time.sleep(0.05)
            filled += _fill_one(venue, rng)
            time.sleep(rng.uniform(0.0, 1.5))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    finally:
        intents.stop()
    try:
        final = start("--until-end")
        assert final.wait(timeout=300) == 0, log.read_text()[-3000:]
        trades = list(standin.trades)
        orders = list(standin.orders.values())
        still_open = standin.open_orders()
    finally:
        venue.close()

    assert filled >= 2 and len(orders) >= 2 * KILLS
    # No order reached the venue twice, and none is left open there.
    assert max(Counter(o.client_order_id for o in orders).values()) == 1
    assert still_open == []
    # The last intent's quotes were what the final shutdown found open: the desired state
    # was reached, whichever run took that intent (a restart re-applies the last one taken).
    records = audit_records(audit)
    last = [i for i in events_on(kafka, "orders.intents") if type(i) is OrderIntent][-1]
    shutdown_at = next(n for n, r in enumerate(records)
                       if r["action"] == "state" and r["payload"].get("executor") == "shutdown")
    cancelled = {r["payload"]["client_order_id"] for r in records[shutdown_at:]
                 if r["action"] == "order_request" and r["payload"]["request"] == "cancel"}
    by_id = {o.client_order_id: o for o in orders}
    assert {(by_id[c].side, by_id[c].price, by_id[c].quantity - by_id[c].executed)
            for c in cancelled} == desired_quotes(last)
    assert all(n >= 1 for n in resumes_per_run(records)[1:])  # each restart re-applied one
    # Positions continue across restarts and equal the venue's trades, each applied once.
    fills = [r["payload"]["fill"] for r in records
             if r["action"] == "fill" and r["payload"]["news"]]
    assert len({f["trade_id"] for f in fills}) == len(fills) == len(trades)
    signed = sum((Decimal(f["size"]) * (1 if f["side"] == "buy" else -1) for f in fills),
                 Decimal(0))
    assert signed == sum((Decimal(t["qty"]) * (1 if t["isBuyer"] else -1) for t in trades),
                         Decimal(0))
    shutdown = [r for r in records
                if r["action"] == "state" and r["payload"].get("executor") == "shutdown"]
    assert len(shutdown) == 1
    assert [Decimal(q) for q in shutdown[0]["payload"]["positions"].values()] == [signed]
    # Kafka holds exactly what the trail published, and the whole chain.
    published = [decode(canonical(r["payload"]["event"])) for r in records
                 if r["action"] == "published"]
    on_topics = [e for topic in ("orders.events", "risk.events")
                 for e in events_on(kafka, topic)]
    assert Counter(map(encode, on_topics)) == Counter(map(encode, published))
    assert verify_anchored(audit, topic_links(kafka)).ok


# -- the intent a kill took between its `intent` record and its orders ------------------------


def test_an_intent_recorded_just_before_a_kill_is_acted_on_after_the_restart(
    kafka_bootstrap, tmp_path
):
    """The kill lands after the executor recorded an intent (`intent`, the first thing it
    writes for one) and before it sent anything for it: the trail says the intent was taken,
    the venue still has the previous intent's quotes, and the intent is re-read from Kafka (its
    offset was not committed) only to be a `DUPLICATE`. The trail is cut exactly there: the
    killed run's file plus that one record, as `on_intent` writes it. The restart re-applies
    the last intent taken (`intent_resumed`): the venue's open orders become its quotes, with
    client ids of their own. A second restart finds them there and sends nothing."""
    kafka, venue, audit, log, start = _deployment(kafka_bootstrap, tmp_path)
    standin = venue.standin
    producer = EventProducer(kafka)
    before, last = quote_intent("59990.00", "60010.00"), quote_intent("59980.00", "60020.00")
    try:
        producer.send(before)
        producer.flush()
        first = start()
        wait_for(lambda: open_quotes(standin) == desired_quotes(before),
                 "the first intent's quotes")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        producer.send(last)
        producer.flush()
        with AuditStore(audit) as trail:
            trail.append(time.time_ns(), "executor", "intent", last)

        second = start()
        wait_for(lambda: open_quotes(standin) == desired_quotes(last), "the last intent's quotes")
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=30)
        third = start("--until-end")
        assert third.wait(timeout=120) == 0, log.read_text()[-3000:]
        orders = list(standin.orders.values())
        still_open = standin.open_orders()
    finally:
        producer.close()
        venue.close()

    # Each intent's quotes were placed once: two orders each, no client id twice.
    assert len(orders) == 4
    assert max(Counter(o.client_order_id for o in orders).values()) == 1
    assert still_open == []  # the third run's shutdown cancelled them
    records = audit_records(audit)
    assert verify_audit(audit).ok and verify_anchored(audit, topic_links(kafka)).ok
    # Each restart acted on the last intent once; a copy read again from Kafka (its offset
    # not committed) was a duplicate, or superseded by a newer copy in the same batch.
    acted = [(r["payload"]["intent"]["intent_id"], r["payload"]["generation"])
             for n, r in enumerate(records)
             if r["action"] == "intent_resumed" and records[n + 1]["action"] != "intent_dropped"]
    assert acted == [(last.intent_id, 1), (last.intent_id, 2)]
    dropped = [r["payload"] for r in records if r["action"] == "intent_dropped"]
    assert {d["intent_id"] for d in dropped} <= {before.intent_id, last.intent_id}
    assert {d["reason"] for d in dropped} <= {"DUPLICATE", "SUPERSEDED"}
    # The third run sent no order: the last intent's quotes were there.
    third_start = max(i for i, r in enumerate(records)
                      if r["action"] == "state" and r["payload"]["executor"] == "start")
    assert not [r for r in records[third_start:] if r["action"] == "order_request"
                and r["payload"]["request"] == "create"]
