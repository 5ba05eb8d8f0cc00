"""A fenced executor leaves the venue to its successor.

Executor A trades; executor B starts with the same deployment and account (so the same
transactional id and group instance id) and its own audit file, which fences A. A must stop
at once with one line and exit 1, without its shutdown: no cancel-all (on a ccxt venue it
would take B's orders too), nothing more on Kafka, and its trail ends with a `state`
`fenced` record. B goes on trading.

A real Kafka broker; each executor is `quoteflow execute` as its own OS process. The ccxt
venue is `tests/ccxt_standin.py`, a local stand-in for Binance spot's REST API (live
exchanges are not reachable from the test machines), whose request log tells what reached
the venue and when.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from connectors.audit_store import topic_links, verify_anchored
from connectors.kafka import EventConsumer
from connectors.kafka.membership import membership
from connectors.secrets import MASTER_KEY_ENV, ExchangeCredentials
from flows.execute_kafka import ORDER_TOPICS, ROLE
from tests.ccxt_executor_runs import (
    KEY,
    SECRET,
    ccxt_config,
    desired_quotes,
    open_quotes,
    spot_venue,
)
from tests.ccxt_standin import StandInThread
from tests.execute_runs import (
    OWNER,
    audit_records,
    ends_fenced,
    key_store,
    quote_intent,
    send,
    start_execute,
    successor_config,
    wait_for,
    write_config,
)
from tests.kafka_service import new_deployment

pytestmark = pytest.mark.integration

CANCEL = ("DELETE", "/api/v3/order")


def _took(audit: Path, intent):
    return lambda: any(r["action"] == "intent" and r["payload"]["intent_id"] == intent.intent_id
                       for r in audit_records(audit))


def _ccxt(kafka, tmp_path: Path) -> tuple[StandInThread, Path, dict[str, str]]:
    """The stand-in serving, the owner's key in the store, and A's configuration on them
    (its trail `tmp_path/audit.jsonl`)."""
    store, environ, _ = key_store(tmp_path)
    store.put(OWNER, "binance", ExchangeCredentials(KEY, SECRET))
    venue = spot_venue()
    config = ccxt_config(tmp_path / "a.toml", kafka, venue.standin, tmp_path)
    return venue, config, {**os.environ, MASTER_KEY_ENV: environ[MASTER_KEY_ENV]}


def test_a_fenced_paper_executor_stops_without_its_shutdown(kafka_bootstrap, tmp_path):
    kafka = new_deployment(kafka_bootstrap)
    first_audit, second_audit = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first_log, second_log = tmp_path / "a.log", tmp_path / "b.log"
    first = start_execute(write_config(tmp_path / "a.toml", kafka, first_audit), first_log)
    second = None
    try:
        before = quote_intent("59990.00", "60010.00")
        send(kafka, before)
        wait_for(_took(first_audit, before), "A to take the first intent")
        second = start_execute(write_config(tmp_path / "b.toml", kafka, second_audit), second_log)
        records = ends_fenced(first, first_log, first_audit, kafka)
        # A's orders were never cancelled: no shutdown's cancel-all, no cancel at all.
        assert [r for r in records if r["action"] == "order_request"
                and r["payload"]["request"] == "create"]
        assert not [r for r in records if r["action"] == "order_request"
                    and r["payload"]["request"] == "cancel"]
        # B trades on.
        after = quote_intent("59980.00", "60020.00")
        send(kafka, after)
        wait_for(_took(second_audit, after), "B to take the next intent")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, second_log.read_text()[-3000:]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(30)
    assert verify_anchored(second_audit, topic_links(kafka)).ok


def test_a_fenced_ccxt_executor_leaves_the_venue_to_its_successor(kafka_bootstrap, tmp_path):
    """A's quotes rest at the venue; B starts (adopting them) and fences A. From B's start
    until A's exit the venue receives no cancel (B has no intent to act on): A's shutdown
    would have cancelled everything open on the account. B then moves the quotes to the
    next intent, and its own shutdown cancels them."""
    kafka = new_deployment(kafka_bootstrap)
    venue, first_config, env = _ccxt(kafka, tmp_path)
    standin = venue.standin
    first_audit = tmp_path / "audit.jsonl"
    second_config, second_audit = successor_config(first_config, tmp_path)
    first_log, second_log = tmp_path / "a.log", tmp_path / "b.log"
    first = start_execute(first_config, first_log, env)
    second = None
    try:
        before, after = quote_intent("59990.00", "60010.00"), quote_intent("59980.00", "60020.00")
        send(kafka, before)
        wait_for(lambda: open_quotes(standin) == desired_quotes(before), "A's quotes")
        seen = len(standin.requests)
        second = start_execute(second_config, second_log, env)
        records = ends_fenced(first, first_log, first_audit, kafka)
        # Between B's start and A's exit: no cancel reached the venue, and A's quotes rest.
        assert CANCEL not in standin.requests[seen:]
        assert open_quotes(standin) == desired_quotes(before)
        assert not [r for r in records if r["action"] == "order_request"
                    and r["payload"]["request"] == "cancel"]
        # B trades on: the quotes it adopted from A move to the next intent's.
        send(kafka, after)
        wait_for(lambda: open_quotes(standin) == desired_quotes(after),
                 "B to quote the next intent")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, second_log.read_text()[-3000:]
        orders = list(standin.orders.values())
        still_open = standin.open_orders()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(30)
        venue.close()
    assert len(orders) == 4 and max(Counter(o.client_order_id for o in orders).values()) == 1
    assert still_open == []  # B's (normal) shutdown still cancels everything
    second_records = audit_records(second_audit)
    adopted = {r["payload"]["order"]["client_order_id"] for r in second_records
               if r["action"] == "reconcile"
               and r["payload"]["difference"] == "UNKNOWN_OPEN_ORDER"}
    assert adopted == {o.client_order_id for o in orders[:2]}  # A's quotes
    assert verify_anchored(second_audit, topic_links(kafka)).ok


def test_an_executor_fenced_by_its_group_member_alone_cancels_and_publishes_nothing(
    kafka_bootstrap, tmp_path
):
    """Fenced by the consumer group first (a process joined with its instance id, its
    producer not fenced yet): the producer could still publish and the venue still answers,
    yet A sends no cancel and its open transaction is aborted. Before, this was the case in
    which the shutdown's cancel-all reached the venue; when the producer was fenced first,
    the shutdown's first audit record failed to publish and cut it short."""
    kafka = new_deployment(kafka_bootstrap)
    venue, config, env = _ccxt(kafka, tmp_path)
    standin = venue.standin
    audit, log = tmp_path / "audit.jsonl", tmp_path / "a.log"
    member = membership(ROLE, kafka)
    first = start_execute(config, log, env)
    try:
        quotes = quote_intent("59990.00", "60010.00")
        send(kafka, quotes)
        wait_for(lambda: open_quotes(standin) == desired_quotes(quotes), "A's quotes")
        seen = len(standin.requests)
        successor = EventConsumer(kafka, member.group_id, ORDER_TOPICS, eof=True,
                                  **member.consumer_settings())
        try:
            while first.poll() is None:
                successor.poll(10, 0.1)
            records = ends_fenced(first, log, audit, kafka)
        finally:
            successor.close()
        assert CANCEL not in standin.requests[seen:]
        assert open_quotes(standin) == desired_quotes(quotes)
        assert not [r for r in records if r["action"] == "order_request"
                    and r["payload"]["request"] == "cancel"]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
        venue.close()
