"""Poison messages on a real broker: the real quote flow and executor carry on, twice.

The issue's two crash loops, end to end: a trade with price "NaN" on md.trades made the quote
flow raise on every restart; a 999,900-byte `pause` made the executor write an audit record
too large to publish and exit 1 on every restart. Both now go to the dead-letter topic with
their reason at the decode edge (`connectors.kafka.wire`), and a second run over the same
topics (a restart replaying them) finishes too. The per-topic poison cases are unit-tested
through the decoder in tests/test_kafka_poison.py.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from bytewax.testing import run_main
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.audit_store import verify_audit
from connectors.kafka import EventProducer, topic_name
from connectors.kafka.command_keys import CommandsConfig
from flows.execute_kafka import run_execute
from flows.processes import build_flow
from models.command_signing import public_key_text, sign
from models.events import ControlCommand, DeadLetter, Trade, encode
from quoteflow.config import Config
from tests.execute_runs import (
    WAIT_S,
    audit_records,
    deployment_with_intents,
    events_on,
    paper_settings,
    wait_for,
)

pytestmark = pytest.mark.integration


def _dead_letters(kafka) -> list[DeadLetter]:
    return [e for e in events_on(kafka, "deadletter") if type(e) is DeadLetter]


def _execute_until_acted_on(config, producer, key, run: int, audit) -> None:
    """Run the executor until it has acted on a signed kill sent after the poison."""
    stop = threading.Event()
    outcome: dict = {}
    runner = threading.Thread(
        target=lambda: outcome.setdefault("stats", run_execute(config, stop=stop)))
    runner.start()
    command_id = f"kill-{run}"
    try:
        command = ControlCommand(command_id=command_id, ts=time.time_ns(), issued_by="test",
                                 action="kill", target="*")
        producer.send(sign(command, key, f"nonce-{run}"))
        producer.flush()
        wait_for(lambda: any(r["action"] == "control"
                             and r["payload"].get("command_id") == command_id
                             for r in audit_records(audit)),
                 "the executor to act on the kill after the poison")
    finally:
        stop.set()
        runner.join(WAIT_S)
    assert not runner.is_alive() and "stats" in outcome  # it ran to a clean stop


def test_poison_is_dead_lettered_and_the_flow_and_executor_carry_on(kafka_bootstrap, tmp_path):
    kafka = deployment_with_intents(kafka_bootstrap)
    producer = EventProducer(kafka)
    first = events_on(kafka, "md.trades")[0]
    nan_trade = encode(Trade(venue=first.venue, symbol=first.symbol,
                             exchange_ts=first.exchange_ts, receive_ts=first.receive_ts,
                             price=Decimal(1), size=Decimal(1), side="buy"))
    nan_trade = nan_trade.replace(b'"price":"1"', b'"price":"NaN"')
    producer.send_bytes(topic_name(kafka.prefix, "md.trades"), first.key, nan_trade)
    huge_pause = encode(ControlCommand(command_id="huge", ts=time.time_ns(), issued_by="x",
                                       action="pause", params={"reason": "r" * 999_700}))
    assert 999_000 < len(huge_pause) < 1_000_000  # what the attacker sent, under the limit
    producer.send_bytes(topic_name(kafka.prefix, "control"), "*:pause", huge_pause)
    producer.flush()

    for _ in range(2):  # the second run is a restart replaying the same topics
        run_main(build_flow("quote", Config(kafka=kafka), tail=False))
    nan_letters = [d for d in _dead_letters(kafka) if "NaN is not a finite number" in d.reason]
    assert nan_letters and nan_letters[0].reason.startswith("out_of_bounds: $.price")

    key = Ed25519PrivateKey.generate()
    config = Config(kafka=kafka, execute=paper_settings(tmp_path),
                    commands=CommandsConfig(public_keys=(public_key_text(key.public_key()),)))
    audit = tmp_path / "audit.jsonl"
    for run in range(2):  # the second run is a restart replaying the control topic
        _execute_until_acted_on(config, producer, key, run, audit)
    assert verify_audit(audit).ok
    assert max(len(line) for line in audit.read_bytes().splitlines()) < 64 * 1024
    oversized = [d for d in _dead_letters(kafka) if d.reason.startswith("oversized")]
    assert oversized and len(oversized[0].raw) <= 64 * 1024
    producer.close()
