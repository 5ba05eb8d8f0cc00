"""Kafka edge without a broker: wire format, dead letters, routing, configuration, schemas."""

from __future__ import annotations

import base64
import json
import typing
from decimal import Decimal
from itertools import islice

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.kafka import (
    SPECS,
    TOPICS,
    KafkaConfig,
    KafkaConfigError,
    WireDecoder,
    routes,
    topic_name,
)
from connectors.kafka.schemas import DEFAULT_DIR, render_schemas, stale_schemas
from connectors.replay.recordings import Recordings
from models.events import (
    BBO,
    AnyEvent,
    BookDelta,
    BookSnapshot,
    ControlCommand,
    DeadLetter,
    Fill,
    OrderEvent,
    OrderIntent,
    Position,
    RiskEvent,
    Trade,
    encode,
)
from quoteflow.config import ConfigError, load_config
from tests.conftest import SHARED_DATA
from tests.event_samples import sample_events

USDM_BTC = SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz"
D = Decimal


@pytest.fixture(scope="module")
def market_events(shared_data) -> list:
    """The first few thousand events of a real USD-M recording: all four market types."""
    events = list(islice(Recordings([USDM_BTC]).events(), 5000))
    assert {type(e) for e in events} >= {BookSnapshot, BookDelta, BBO, Trade}
    return events


def topic_of(event) -> str:
    return routes("", "acct")[type(event)][0]


def test_every_event_type_has_a_topic_and_every_topic_type_is_routed_there():
    table = routes("prod", "acct")
    assert set(table) == set(typing.get_args(AnyEvent))
    for spec in TOPICS:
        for event_type in spec.event_types:
            assert table[event_type][0] == f"prod.{spec.name}"
    assert SPECS["control"].configs() == {"cleanup.policy": "compact", "retention.ms": "-1"}


def test_keys_keep_instruments_and_accounts_in_order(market_events):
    table = routes("", "acct-7")
    for event in market_events[:50]:
        assert table[type(event)][1](event) == event.key == f"{event.venue}:{event.symbol}"
    by_type = {type(e): e for e in sample_events()}
    for account_keyed in (OrderEvent, Fill, Position, RiskEvent):
        assert table[account_keyed][1](by_type[account_keyed]) == "acct-7"
    assert table[OrderIntent][1](by_type[OrderIntent]) == "binanceusdm:BTC/USDT:USDT"
    # A compacted control topic keeps the latest command per key: per action, not per target.
    assert table[ControlCommand][1](by_type[ControlCommand]) == "binanceusdm:BTC/USDT:USDT:pause"
    assert table[DeadLetter][1](by_type[DeadLetter]) is None


def test_real_and_sample_events_round_trip_exactly(market_events):
    decoder = WireDecoder()
    for offset, event in enumerate(market_events + sample_events()):
        decoded = decoder.decode(encode(event), topic_of(event), 0, offset)
        assert decoded == event
    assert decoder.dead_letters == 0


def test_decimals_keep_the_venue_precision_on_the_wire(market_events):
    bbo = next(e for e in market_events if type(e) is BBO)
    wire = json.loads(encode(bbo))
    assert wire["bid_price"] == str(bbo.bid_price) and wire["v"] == 1 and wire["type"] == "bbo"


def _only_dead_letter(value, topic="md.bbo", partition=2, offset=41):
    decoder = WireDecoder()
    letter = decoder.decode(value, topic, partition, offset, receive_ts=7)
    assert type(letter) is DeadLetter and decoder.dead_letters == 1
    assert letter.source == f"kafka:{topic}/{partition}@{offset}" and letter.receive_ts == 7
    return letter


def test_bad_messages_become_dead_letters_with_the_reason_and_exact_bytes(market_events):
    bbo = encode(next(e for e in market_events if type(e) is BBO))
    cases = {
        b"{not json": "undecodable: ",
        bbo.replace(b'"type":"bbo"', b'"type":"tick"'): "unknown_type: Invalid value 'tick'",
        bbo.replace(b'"v":1', b'"v":2'): "schema_version: v=2, this build reads BBO [1]",
        bbo.replace(b'"bid_price":"', b'"bid_price":"x'): "invalid: ",
        b'{"type":"bbo"}': "invalid: Object missing required field",
        b"[1, 2]": "invalid: Expected `object`",
    }
    for value, reason in cases.items():
        letter = _only_dead_letter(value)
        assert letter.reason.startswith(reason), (value, letter.reason)
        assert letter.raw == value.decode() and letter.raw_encoding == "utf-8"


def test_control_commands_are_read_at_v1_and_v2_only():
    command = encode(ControlCommand(command_id="c", ts=1, issued_by="a", action="pause"))
    decoder = WireDecoder()
    for version in (b'"v":1', b'"v":2'):
        event = decoder.decode(command.replace(b'"v":2', version), "control", 0, 0, 7)
        assert type(event) is ControlCommand
    letter = _only_dead_letter(command.replace(b'"v":2', b'"v":3'), topic="control")
    assert letter.reason == "schema_version: v=3, this build reads ControlCommand [1, 2]"


def test_an_event_on_the_wrong_topic_is_a_dead_letter(market_events):
    trade = next(e for e in market_events if type(e) is Trade)
    letter = _only_dead_letter(encode(trade), topic="md.book")
    assert letter.reason == "wrong_topic: Trade does not belong on md.book"


def test_binary_and_empty_values_are_kept_exactly():
    binary = b"\x80\x81\xff{"
    letter = _only_dead_letter(binary)
    assert letter.reason.startswith("undecodable")
    assert letter.raw_encoding == "base64" and base64.b64decode(letter.raw) == binary
    for empty in (None, b""):
        letter = _only_dead_letter(empty)
        assert letter.reason == "empty: message has no value" and letter.raw == ""


def test_prefixed_topics_are_checked_and_foreign_topics_take_any_event(market_events):
    decoder = WireDecoder("prod")
    trade = encode(next(e for e in market_events if type(e) is Trade))
    assert type(decoder.decode(trade, "prod.md.trades", 0, 0)) is Trade
    assert type(decoder.decode(trade, "prod.md.bbo", 0, 1)) is DeadLetter
    assert type(decoder.decode(trade, "someone.elses.topic", 0, 2)) is Trade


@given(st.binary(max_size=300))
def test_decoding_never_raises(value):
    event = WireDecoder().decode(value, "md.book", 0, 0)
    assert isinstance(event, msgspec.Struct)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bootstrap": "localhost"}, "invalid Kafka bootstrap 'localhost'"),
        ({"bootstrap": "a:1,b"}, "got 'b'"),
        ({"bootstrap": "h:99999"}, "invalid Kafka bootstrap"),
        ({"prefix": "prod env"}, "invalid Kafka topic prefix 'prod env'"),
        ({"prefix": "prod_env"}, "invalid Kafka topic prefix"),
        ({"prefix": "prod."}, "invalid Kafka topic prefix"),
        ({"prefix": "p" * 201}, "at most 200"),
        ({"account": ""}, "account must not be empty"),
        ({"connect_timeout_s": 0}, "connect timeout must be > 0"),
    ],
)
def test_configuration_errors_say_what_to_fix(settings, message):
    with pytest.raises(KafkaConfigError, match=message.replace("(", r"\(")):
        KafkaConfig(**settings)


def test_configuration_from_environment():
    env = {
        "QUOTEFLOW_KAFKA__BOOTSTRAP": "k1:9092,[::1]:9093",
        "QUOTEFLOW_KAFKA__PREFIX": "eu.paper",
        "QUOTEFLOW_KAFKA__ACCOUNT": "desk",
    }
    config = load_config(environ=env).kafka
    assert (config.bootstrap, config.prefix, config.account) == ("k1:9092,[::1]:9093",
                                                                 "eu.paper", "desk")
    assert topic_name(config.prefix, "md.book") == "eu.paper.md.book"
    with pytest.raises(ConfigError, match="prefix"):
        load_config(environ={"QUOTEFLOW_KAFKA__PREFIX": "bad prefix"})


def test_committed_json_schemas_are_up_to_date():
    assert stale_schemas() == [], "run: .venv/bin/python -m connectors.kafka.schemas"
    assert sorted(p.name for p in DEFAULT_DIR.glob("*.json")) == sorted(render_schemas())


def test_schemas_describe_the_topic_types_and_accept_real_messages(market_events):
    schemas = {name: json.loads(text) for name, text in render_schemas().items()}
    assert set(schemas) == {f"{s.name}.json" for s in TOPICS if s.event_types}
    book = schemas["md.book.json"]
    assert set(book["discriminator"]["mapping"]) == {"book_snapshot", "book_delta"}
    assert book["x-kafka"]["partitions"] == SPECS["md.book"].partitions
    # Every field a real message carries is declared for its type.
    for event in market_events[:200]:
        definition = schemas[f"{topic_of(event)}.json"]
        props = definition["$defs"][type(event).__name__]["properties"]
        assert set(json.loads(encode(event))) <= set(props)


def test_audit_topic_records_decode_as_audit_records():
    from models.audit import AuditChain, canonical

    record = AuditChain().append(5, "alice", "pause", {"target": "*"})
    decoder = WireDecoder("p")
    assert decoder.decode(canonical(record), "p.audit", 0, 1) == record
    letter = decoder.decode(b'{"seq": "x"}', "p.audit", 0, 2)
    assert isinstance(letter, DeadLetter) and letter.reason.startswith("invalid")
