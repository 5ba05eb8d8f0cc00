"""`quoteflow execute` on a real Kafka broker.

The paper venue: a Binance spot recording replayed into md.* (`run_ingest`), the quote flow
turning it into intents, then the executor matching them on the same market data. The ccxt
venue: the owner's key from the secret store signing requests that `tests/ccxt_standin.py`
(a local stand-in for Binance spot's REST API, with its HMAC signing) verifies — real
exchanges are not reachable from the test machines.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from connectors.audit_store import verify_audit
from connectors.execution.keys import NoExchangeKey
from connectors.kafka import EventProducer, KafkaConfig, topic_name
from connectors.kafka.command_keys import CommandsConfig
from connectors.secrets import ExchangeCredentials
from flows.execute_kafka import run_execute
from flows.processes import MARKET_TOPICS
from models.command_signing import public_key_text, sign
from models.events import ControlCommand, Fill, OrderEvent, OrderIntent, Position
from quoteflow.cli import app
from quoteflow.config import Config, ConfigError, ExecuteConfig, load_config
from tests.ccxt_standin import BinanceSpotStandIn
from tests.execute_runs import (
    OWNER,
    START,
    WAIT_S,
    audit_records,
    deployment_with_intents,
    events_on,
    key_store,
    paper_settings,
    quote_intent,
    wait_for,
    write_config,
)
from tests.kafka_service import new_deployment, read_topic

pytestmark = pytest.mark.integration

TERMINAL = {"fill", "cancel", "reject"}


def signed_position(fills: list[Fill]) -> Decimal:
    return sum((f.size if f.side == "buy" else -f.size for f in fills), Decimal(0))


def final_kinds(events: list[OrderEvent]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for event in events:
        kinds[event.client_order_id] = event.kind
    return kinds


# -- the paper venue --------------------------------------------------------------------------


def test_execute_command_trades_the_quote_flows_intents_on_the_paper_venue(
    kafka_bootstrap, tmp_path
):
    kafka = deployment_with_intents(kafka_bootstrap)
    intents = events_on(kafka, "orders.intents")
    producer = EventProducer(kafka)
    producer.send_bytes(topic_name(kafka.prefix, "orders.intents"), "binance:BTC/USDT", b"{oops")
    producer.close()
    audit = tmp_path / "audit.jsonl"
    config = write_config(tmp_path / "quoteflow.toml", kafka, audit)

    result = CliRunner().invoke(app, ["execute", "--config", str(config), "--until-end"])

    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["intents"] == len(intents) > 100
    assert stats["dead_letters"] == 1
    assert len(events_on(kafka, "deadletter")) == 1
    out = events_on(kafka, "orders.events")
    orders = [e for e in out if type(e) is OrderEvent]
    fills = [e for e in out if type(e) is Fill]
    positions = [e for e in out if type(e) is Position]
    kinds = Counter(e.kind for e in orders)
    assert kinds["ack"] > 10 and kinds["fill"] + kinds["partial_fill"] > 10
    # Every fill is followed by the position it leads to: the sum of the fills so far.
    assert len(positions) == len(fills)
    for n, position in enumerate(positions, 1):
        assert position.quantity == signed_position(fills[:n])
    assert len({f.trade_id for f in fills}) == len(fills)
    # Shutting down at the end cancelled what was still open.
    assert set(final_kinds(orders).values()) <= TERMINAL
    assert verify_audit(audit).ok
    on_topic = [json.loads(value) for _, _, value in read_topic(kafka, "audit")]
    assert on_topic == audit_records(audit)
    # Every intent was acted on at its own market time, none as part of a backlog.
    drops = Counter(r["payload"]["reason"] for r in on_topic if r["action"] == "intent_dropped")
    assert drops["SUPERSEDED"] == 0


def test_kill_on_control_cancels_everything_and_blocks_new_orders(kafka_bootstrap, tmp_path):
    kafka = deployment_with_intents(kafka_bootstrap)
    intents = events_on(kafka, "orders.intents")
    audit = tmp_path / "audit.jsonl"
    key = Ed25519PrivateKey.generate()
    config = Config(kafka=kafka, execute=paper_settings(tmp_path),
                    commands=CommandsConfig(public_keys=(public_key_text(key.public_key()),)))
    stop = threading.Event()
    outcome: dict = {}
    runner = threading.Thread(
        target=lambda: outcome.setdefault("stats", run_execute(config, stop=stop))
    )
    runner.start()
    try:
        wait_for(lambda: sum(r["action"] == "intent" for r in audit_records(audit))
                 == len(intents), "the executor to act on every intent")
        open_before = {cid for cid, kind in final_kinds(_order_events(kafka)).items()
                       if kind not in TERMINAL}
        assert open_before  # the last quotes rest at the venue
        producer = EventProducer(kafka)
        producer.send(sign(ControlCommand(command_id="kill-1", ts=time.time_ns(),
                                          issued_by="test", action="kill", target="*"),
                           key, "nonce-1"))
        producer.flush()
        wait_for(lambda: all(final_kinds(_order_events(kafka)).get(cid) in TERMINAL
                             for cid in open_before), "the kill to cancel every order")
        last = intents[-1]
        # Decided at the market's end, where the paper venue's clock now stands: fresh, so
        # only the kill can refuse it (the last intent is older than intent_max_age_s there).
        end = max(e.receive_ts for t in MARKET_TOPICS for e in events_on(kafka, t))
        late = OrderIntent(
            intent_id=f"after-kill-{uuid.uuid4().hex}", venue=last.venue, symbol=last.symbol,
            ts=end, strategy=last.strategy, bids=last.bids, asks=last.asks,
            reference_mid=last.reference_mid, trigger_receive_ts=end,
        )
        producer.send(late)
        producer.close()
        dropped = wait_for(lambda: [r for r in audit_records(audit)
                                    if r["action"] == "intent_dropped"
                                    and r["payload"]["intent_id"] == late.intent_id],
                           "the intent after the kill")
        assert dropped[0]["payload"]["reason"] == "HALTED"
    finally:
        stop.set()
        runner.join(WAIT_S)
    assert not runner.is_alive() and outcome["stats"].commands == 1
    records = audit_records(audit)
    kill_at = next(i for i, r in enumerate(records) if r["action"] == "control")
    assert not [r for r in records[kill_at:]
                if r["action"] == "order_request" and r["payload"]["request"] != "cancel"]
    assert [json.loads(v) for _, _, v in read_topic(kafka, "risk.events")]  # the state change
    assert verify_audit(audit).ok


def test_only_signed_fresh_unused_commands_are_acted_on(kafka_bootstrap, tmp_path):
    """Whoever can write `control` (here the admin, as with a stolen credential) cannot make
    the executor act without the API's key: unsigned, stale, replayed, other-key and
    tampered commands are refused and audited; the one valid command is acted on."""
    kafka = new_deployment(kafka_bootstrap)
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = time.time_ns()

    def command(action: str, ts: int = now) -> ControlCommand:
        return ControlCommand(command_id=uuid.uuid4().hex, ts=ts, issued_by="alice",
                              action=action, target="*")

    valid = sign(command("pause"), key, "n-valid")
    sent = {
        "unsigned": command("kill"),
        "valid": valid,
        "stale": sign(command("kill", now - 120 * 10**9), key, "n-stale"),
        "from_the_future": sign(command("kill", now + 120 * 10**9), key, "n-future"),
        "replayed": valid,
        "unknown_key": sign(command("kill"), stranger, "n-stranger"),
        "bad_signature": msgspec.structs.replace(sign(command("resume"), key, "n-t"),
                                                 action="kill"),
    }
    producer = EventProducer(kafka)
    producer.send_all(sent.values())
    producer.close()
    audit = tmp_path / "audit.jsonl"
    config = Config(kafka=kafka, execute=paper_settings(tmp_path),
                    commands=CommandsConfig(public_keys=(public_key_text(key.public_key()),),
                                            max_age_s=60))

    stats = run_execute(config, until_end=True)

    records = audit_records(audit)
    acted = [r["payload"]["command_id"] for r in records if r["action"] == "control"]
    assert acted == [valid.command_id]
    refused = [r["payload"] for r in records if r["action"] == "command_refused"]
    assert sorted(r["reason"] for r in refused) == sorted(set(sent) - {"valid"})
    assert stats.refused_commands == len(sent) - 1
    risk = [json.loads(v) for _, _, v in read_topic(kafka, "risk.events")]
    assert sorted(e["reason_code"] for e in risk if e["reason_code"].startswith("command_")) \
        == sorted(f"command_{reason}" for reason in set(sent) - {"valid"})
    assert verify_audit(audit).ok


def _order_events(kafka: KafkaConfig) -> list[OrderEvent]:
    return [e for e in events_on(kafka, "orders.events") if type(e) is OrderEvent]


# -- the ccxt venue and the owner's keys ------------------------------------------------------

OTHER = "trader-subject-2"  # an owner besides OWNER


def ccxt_settings(tmp_path: Path, standin: BinanceSpotStandIn) -> ExecuteConfig:
    return ExecuteConfig(
        venue="ccxt", exchange="binance", symbols=["BTC/USDT"], owner=OWNER, sandbox=True,
        ccxt_options=standin.ccxt_config(),
        key_poll_interval_s=0.2, intent_max_age_s=60, rate_limit_capacity=50,
        audit_path=str(tmp_path / "audit.jsonl"),
    )


def rekey(standin: BinanceSpotStandIn, api_key: str, secret: str) -> None:
    """The exchange account's key is replaced: the stand-in accepts only the new one."""
    standin.api_key = api_key
    standin._secret = secret.encode()


def test_ccxt_executor_signs_with_the_owners_key_and_reloads_it_on_change(
    kafka_bootstrap, tmp_path
):
    kafka = new_deployment(kafka_bootstrap)
    store, environ, secrets = key_store(tmp_path)
    first = store.put(OWNER, "binance", ExchangeCredentials("owner-key-1-abcdefgh", "owner-sec-1"))
    theirs = store.put(OTHER, "binance", ExchangeCredentials("other-key-zzzzzzzz", "other-sec"))
    audit = tmp_path / "audit.jsonl"

    def send(*events) -> None:
        producer = EventProducer(kafka)
        producer.send_all(events)
        producer.close()

    def key_ids() -> list[str | None]:
        return [r["payload"]["key_id"] for r in audit_records(audit)
                if r["action"] == "exchange_key"]

    async def scenario() -> None:
        async with BinanceSpotStandIn("owner-key-1-abcdefgh", "owner-sec-1", START) as standin:
            config = Config(kafka=kafka, secrets=secrets, execute=ccxt_settings(tmp_path, standin))
            stop = threading.Event()
            running = asyncio.ensure_future(asyncio.to_thread(
                run_execute, config, stop=stop, environ=environ
            ))
            try:
                await _scenario_steps(standin, store, first, send, key_ids, audit)
            finally:
                stop.set()
            stats = await running
            assert stats.key_changes[0] == first.key_id and stats.key_changes[-1] == "removed"
            assert theirs.key_id not in stats.key_changes

    asyncio.run(scenario())
    records = audit_records(audit)
    assert theirs.key_id not in json.dumps(records)
    assert verify_audit(audit).ok


async def _scenario_steps(standin, store, first, send, key_ids, audit) -> None:
    async def until(condition, what):
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            await asyncio.sleep(0.1)

    send(quote_intent("59990.00", "60010.00"))
    await until(lambda: len(standin.open_orders()) == 2, "orders signed with the first key")
    # The owner replaces the key: a new one is added, then the old one is deleted.
    second = store.put(OWNER, "binance",
                       ExchangeCredentials("owner-key-2-ijklmnop", "owner-sec-2"))
    store.delete(OWNER, "binance", first.key_id)
    rekey(standin, "owner-key-2-ijklmnop", "owner-sec-2")
    await until(lambda: key_ids()[-1:] == [second.key_id], "the executor to reload")
    send(quote_intent("59980.00", "60020.00"))
    await until(lambda: {o.price for o in standin.orders.values() if o.status == "NEW"}
                == {Decimal("59980.00"), Decimal("60020.00")}, "orders signed with the new key")
    # A store that cannot be read for a while is no key change: trading goes on.
    saved = store.path.read_bytes()
    store.path.write_bytes(b"{not json")
    await until(lambda: any(r["action"] == "exchange_key_unreadable"
                            for r in audit_records(audit)), "the unreadable store")
    store.path.write_bytes(saved)
    assert key_ids()[-1] == second.key_id and len(standin.open_orders()) == 2
    # The owner deletes the last key: everything is cancelled, then nothing can be sent.
    store.delete(OWNER, "binance", second.key_id)
    await until(lambda: key_ids()[-1:] == [None], "the executor to drop the key")
    assert standin.open_orders() == []
    orders_before = len(standin.orders)
    send(quote_intent("59970.00", "60030.00"))
    await until(lambda: any(r["action"] == "order_response"
                            and r["payload"].get("error") == "AuthenticationError"
                            for r in audit_records(audit)),
                "orders refused for want of a key")
    assert len(standin.orders) == orders_before


def test_ccxt_executor_without_a_key_for_its_owner_does_not_start(kafka_bootstrap, tmp_path):
    kafka = new_deployment(kafka_bootstrap)
    store, environ, secrets = key_store(tmp_path)
    store.put(OTHER, "binance", ExchangeCredentials("other-key-zzzzzzzz", "other-sec"))
    settings = ExecuteConfig(venue="ccxt", symbols=["BTC/USDT"], owner=OWNER,
                             audit_path=str(tmp_path / "audit.jsonl"))
    with pytest.raises(NoExchangeKey, match="has no binance key"):
        run_execute(Config(kafka=kafka, secrets=secrets, execute=settings), environ=environ,
                    until_end=True)


def test_execute_configuration_errors_are_clear(tmp_path):
    def load(text: str):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        return load_config(path, {})

    with pytest.raises(ConfigError, match=r"execute\.owner is required"):
        load('[execute]\nvenue = "ccxt"\nsymbols = ["BTC/USDT"]\n')
    with pytest.raises(ConfigError, match="'paper' or 'ccxt'"):
        load('[execute]\nvenue = "live"\nsymbols = ["BTC/USDT"]\n')
    with pytest.raises(ConfigError, match="at least one symbol"):
        load("[execute]\n")
    with pytest.raises(ConfigError, match="price_tolerance"):
        load('[execute]\nsymbols = ["BTC/USDT"]\nprice_tolerance = "-1"\n')
    result = CliRunner().invoke(app, ["execute", "--config", str(tmp_path / "bad.toml")])
    assert result.exit_code == 2
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    result = CliRunner().invoke(app, ["execute", "--config", str(empty)])
    assert result.exit_code == 2 and "no [execute] section" in result.output
