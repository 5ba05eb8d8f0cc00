"""`quoteflow execute` killed with SIGKILL at random points over a replay (paper venue):
no order is sent twice, none is left open, the positions equal the fills and the audit chain
verifies across every run; what reached Kafka is exactly what the audit trail says was
published, nothing lost and nothing twice. A real Kafka broker; the executor runs as its
own OS process.

The audit trail is the executor's record of truth and its outbox, written before anything
reaches Kafka; the executor publishes in Kafka transactions, and a restart publishes again
what its killed predecessor's aborted transaction held (docs/executor.md, "Restarts").
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.audit_store import AuditStore, topic_links, verify_anchored, verify_audit
from connectors.kafka import EventProducer
from connectors.kafka.command_keys import CommandsConfig
from flows.execute_kafka import run_execute
from models.audit import canonical
from models.command_signing import public_key_text, sign
from models.events import ControlCommand, Fill, OrderIntent, decode, encode
from quoteflow.config import Config
from tests.execute_runs import (
    audit_records,
    deployment_with_intents,
    events_on,
    paper_settings,
    resumes_per_run,
    write_config,
)
from tests.flow_runs import QUOTEFLOW
from tests.kafka_service import new_deployment

pytestmark = pytest.mark.integration

SEED = 1104
KILLS = 6
# Each killed run takes up to this many intents: the recording's quote flow makes several
# thousand, so the final run still has most of them to act on.
MAX_INTENTS_PER_KILL = 400
TERMINAL = {"fill", "cancel", "reject"}


def _start(config: Path, log: Path, *args: str) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([str(QUOTEFLOW), "execute", "--config", str(config), *args],
                                stdout=out, stderr=subprocess.STDOUT)


def _intents_audited(audit: Path, since: int) -> int:
    """`intent` records after byte `since` of the file (canonical JSON: one spelling)."""
    if not audit.exists():
        return 0
    with audit.open("rb") as file:
        file.seek(since)
        return file.read().count(b'"action":"intent"')


def _kill_after_progress(process: subprocess.Popen, audit: Path, rng: random.Random) -> int:
    """SIGKILL at a random point once this run has taken a random number of intents (its
    start and reconciliation records come before it has its partitions): the intents it
    handled. A count, not a time: a random delay let a fast run take every intent there was,
    and the next had nothing to do (progress 0)."""
    before = audit.stat().st_size if audit.exists() else 0
    deadline = time.monotonic() + 60
    taken = rng.randint(1, MAX_INTENTS_PER_KILL)
    while (_intents_audited(audit, before) < taken and process.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return _intents_audited(audit, before)


def _handled(records: list[dict]) -> Counter:
    """How often each intent was handled other than as a re-read (`DUPLICATE`). A `drop` is
    two records, `intent` then `intent_dropped`: a kill between them leaves the `intent`
    record last in its run, and if the intent was handled before, it was a re-read."""
    handled: Counter = Counter()
    for at, record in enumerate(records):
        if record["action"] != "intent":
            continue
        intent_id = record["payload"]["intent_id"]
        after = records[at + 1]["payload"] if at + 1 < len(records) else {}
        if after.get("reason") == "DUPLICATE" or (after.get("executor") == "start"
                                                  and handled[intent_id]):
            continue
        handled[intent_id] += 1
    return handled


def test_execute_killed_at_random_points_never_doubles_or_orphans_an_order(
    kafka_bootstrap, tmp_path
):
    rng = random.Random(SEED)
    kafka = deployment_with_intents(kafka_bootstrap)
    intents = {i.intent_id for i in events_on(kafka, "orders.intents") if type(i) is OrderIntent}
    audit = tmp_path / "audit.jsonl"
    config = write_config(tmp_path / "quoteflow.toml", kafka, audit)
    log = tmp_path / "execute.log"
    progress = [_kill_after_progress(_start(config, log), audit, rng) for _ in range(KILLS)]
    final = _start(config, log, "--until-end")
    assert final.wait(timeout=300) == 0, log.read_text()[-3000:]

    assert all(step > 0 for step in progress), progress
    assert verify_audit(audit).ok
    records = audit_records(audit)
    runs = Counter(r["action"] == "state" and r["payload"].get("executor") == "shutdown"
                   for r in records)
    assert runs[True] == 1  # only the final run shut down; every other one was killed
    # Every intent was handled, and acted on by one run only: a re-read one is a DUPLICATE.
    handled = _handled(records)
    assert set(handled) == intents
    assert handled == dict.fromkeys(handled, 1)
    # Every restart acted again on the last intent its killed predecessor took (its orders
    # may not have been sent, and the paper venue went down with them): once, with the next
    # generation's client ids, never dropped.
    assert Counter(resumes_per_run(records)[1:]) == {1: KILLS}
    assert "intent_dropped" not in {records[n + 1]["action"] for n, r in enumerate(records)
                                    if r["action"] == "intent_resumed"}
    # No order was sent twice (client order ids are deterministic per intent and level).
    creates = Counter(r["payload"]["client_order_id"] for r in records
                      if r["action"] == "order_request" and r["payload"]["request"] == "create")
    assert creates and max(creates.values()) == 1
    # No order left open: each one's last event is terminal (cancelled at a restart if the
    # paper venue went down with the process, else at the final shutdown).
    last: dict[str, str] = {}
    for r in records:
        if r["action"] == "order_event":
            last[r["payload"]["event"]["client_order_id"]] = r["payload"]["event"]["kind"]
    assert last and set(last.values()) <= TERMINAL
    # Positions continue across restarts: the final run's equal the sum of every run's fills.
    fills = [r["payload"]["fill"] for r in records
             if r["action"] == "fill" and r["payload"]["news"]]
    assert fills and len({f["trade_id"] for f in fills}) == len(fills)
    signed = sum((Decimal(f["size"]) * (1 if f["side"] == "buy" else -1) for f in fills),
                 Decimal(0))
    shutdown = next(r for r in records if r["action"] == "state"
                    and r["payload"].get("executor") == "shutdown")
    assert [Decimal(q) for q in shutdown["payload"]["positions"].values()] == [signed]
    # What reached Kafka is exactly what the trail says was published: no fill, order event,
    # position or risk event lost to a kill, none published twice; the audit topic holds
    # the whole chain.
    published = [decode(canonical(r["payload"]["event"])) for r in records
                 if r["action"] == "published"]
    on_topics = [e for topic in ("orders.events", "risk.events")
                 for e in events_on(kafka, topic)]
    assert Counter(map(encode, on_topics)) == Counter(map(encode, published))
    on_topic = [e for e in on_topics if type(e) is Fill]
    assert len({f.trade_id for f in on_topic}) == len(on_topic)
    assert {f.trade_id for f in on_topic} == {f["trade_id"] for f in fills}
    assert verify_anchored(audit, topic_links(kafka)).ok


# -- what a restart must remember, and a file that must not be continued ----------------------


def _signed_pause(key: Ed25519PrivateKey) -> ControlCommand:
    return sign(ControlCommand(command_id=uuid.uuid4().hex, ts=time.time_ns(),
                               issued_by="alice", action="pause", target="*"), key, "n-1")


def test_a_signed_command_replayed_after_a_restart_is_refused(kafka_bootstrap, tmp_path):
    """The nonces of the commands acted on come back from the audit trail: the same signed
    bytes sent again after a restart, still fresh, are refused as a replay and audited."""
    kafka = new_deployment(kafka_bootstrap)
    key = Ed25519PrivateKey.generate()
    config = Config(kafka=kafka, execute=paper_settings(tmp_path),
                    commands=CommandsConfig(public_keys=(public_key_text(key.public_key()),),
                                            max_age_s=120))
    command = _signed_pause(key)
    for run in range(2):  # the same bytes, before each run
        producer = EventProducer(kafka)
        producer.send(command)
        producer.close()
        stats = run_execute(config, until_end=True)
        assert stats.refused_commands == run

    records = audit_records(tmp_path / "audit.jsonl")
    assert [r["payload"]["nonce"] for r in records if r["action"] == "control"] == ["n-1"]
    refused = [r["payload"] for r in records if r["action"] == "command_refused"]
    assert [(r["reason"], r["command"]["command_id"]) for r in refused] \
        == [("replayed", command.command_id)]


def _execute(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(QUOTEFLOW), "execute", "--config", str(config), "--until-end"],
                          capture_output=True, text=True, timeout=300)


def _succeeds(config: Path) -> None:
    run = _execute(config)
    assert run.returncode == 0, run.stderr[-3000:]


def test_a_restart_continues_the_published_chain_or_refuses(kafka_bootstrap, tmp_path):
    """At start the executor checks its file against its chain on the `audit` topic: records
    removed from its end or an edited record stop it with one line (exit 1) before it acts
    or appends; records a kill left unpublished are published, and it goes on."""
    kafka = new_deployment(kafka_bootstrap)
    audit = tmp_path / "audit.jsonl"
    config = write_config(tmp_path / "quoteflow.toml", kafka, audit)
    for _ in range(2):
        _succeeds(config)
    intact = audit.read_bytes()
    lines = intact.splitlines(keepends=True)
    assert verify_anchored(audit, topic_links(kafka)).ok

    audit.write_bytes(b"".join(lines[:-2]))  # the tail cut off
    refused = _execute(config)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "CUT_BEFORE_ANCHOR" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert audit.read_bytes() == b"".join(lines[:-2])  # nothing appended

    edited = json.loads(lines[1])
    edited["ts"] += 1
    audit.write_bytes(b"".join([lines[0], canonical(edited) + b"\n", *lines[2:]]))
    refused = _execute(config)
    assert refused.returncode == 1 and "BAD_HASH" in refused.stderr

    # A kill took the last records from the producer's queue: they are on the file only.
    audit.write_bytes(intact)
    with AuditStore(audit) as store:
        for n in range(2):
            store.append(time.time_ns(), "executor", "order_request", {"n": n})
    assert verify_anchored(audit, topic_links(kafka)).reason == "UNANCHORED_TAIL"
    _succeeds(config)
    assert verify_anchored(audit, topic_links(kafka)).ok
    starts = [r["payload"] for r in audit_records(audit)
              if r["action"] == "state" and r["payload"]["executor"] == "start"]
    assert [s["republished"] for s in starts] == [0, 0, 2]
