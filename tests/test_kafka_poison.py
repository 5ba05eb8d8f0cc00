"""Poison messages on every topic become dead letters with a reason, never events.

For each topic, one valid message of each type it carries is spoiled in each way a hostile
or broken producer could: NaN, Infinity, huge numbers, 400-digit numbers, huge strings, NUL
bytes, wrong types, oversized values. The decoder (the edge every process reads through)
must answer each with a dead letter whose reason says what was wrong, and the dead letter
must itself be small enough to publish.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from connectors.kafka import TOPICS, WireDecoder, topic_name
from connectors.kafka.wire import MAX_DEAD_LETTER_BYTES, MAX_VALUE_BYTES
from models.audit import AuditChain, encode_line
from models.event_bounds import decimal_problem, problem
from models.events import (
    BBO,
    BookDelta,
    BookSnapshot,
    ControlCommand,
    DeadLetter,
    Trade,
    encode,
)
from tests.event_samples import sample_events

D = Decimal
TS = 1_723_161_254_000_000_000
MARKET = {"venue": "binance", "symbol": "BTC/USDT", "exchange_ts": TS, "receive_ts": TS}


def valid_events() -> list:
    return [
        BookSnapshot(bids=[(D("58000.1"), D("1.5"))], asks=[(D("58000.2"), D("0.3"))], **MARKET),
        BookDelta(bids=[(D("58000.1"), D("0"))], asks=[], **MARKET),
        BBO(bid_price=D("58000.1"), bid_size=D("1"), ask_price=D("58000.2"), ask_size=D("2"),
            **MARKET),
        Trade(price=D("58000.1"), size=D("0.01"), side="buy", trade_id="7", **MARKET),
        *sample_events(),
    ]


def _is_decimal(text: str) -> bool:
    try:
        D(text)
    except ArithmeticError:
        return False
    return True


def _poisoned(event) -> list[tuple[str, bytes]]:
    """(what, bytes) for every poison that applies to this event's fields."""
    wire = json.loads(encode(event))
    cases: list[tuple[str, bytes]] = []

    def with_field(kind: str, make) -> None:
        path = _first_field(wire, kind)
        if path is None:
            return
        for label, replacement in make():
            spoiled = json.loads(json.dumps(wire))
            _set(spoiled, path, replacement)
            cases.append((f"{kind} {label}", json.dumps(spoiled).encode()))

    with_field("number", lambda: [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Inf", "-Inf"),
                                  ("sNaN", "sNaN"), ("1e1000000", "1e1000000"),
                                  ("400 digits", "9" * 400)])
    with_field("int", lambda: [("2**63", 2**63), ("400 digits", int("9" * 400)),
                               ("a string", "12"), ("a float", 1.5)])
    with_field("float", lambda: [("1e999", "1e999"), ("a string", "0.5")])
    with_field("text", lambda: [("NUL", "a\x00b"), ("huge", "x" * 200_000),
                                ("a number", 12), ("a list", ["x"])])
    cases.append(("oversized", b'{"pad":"' + b"x" * MAX_VALUE_BYTES + b'"}'))
    return cases


def _first_field(data, kind: str, path: tuple = ()) -> tuple | None:
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        if key in ("type", "v", "raw_encoding", "side", "kind", "action", "state", "liquidity"):
            continue
        here = (*path, key)
        if kind == "number" and isinstance(value, str) and _is_decimal(value):
            return here
        if kind == "text" and isinstance(value, str) and not _is_decimal(value):
            return here
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return here
        if kind == "float" and isinstance(value, float):
            return here
        if isinstance(value, dict | list):
            found = _first_field(value, kind, here)
            if found is not None:
                return found
    return None


def _set(data, path: tuple, value) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _cases():
    for spec in TOPICS:
        for event in valid_events():
            if type(event) in spec.event_types:
                for what, value in _poisoned(event):
                    yield pytest.param(spec.name, value, id=f"{spec.name}-{type(event).__name__}-"
                                                           f"{what}")


@pytest.mark.parametrize(("topic", "value"), list(_cases()))
def test_every_poison_on_every_topic_is_a_dead_letter_with_a_reason(topic, value):
    decoder = WireDecoder("prod")
    letter = decoder.decode(value, topic_name("prod", topic), 0, 9)
    assert type(letter) is DeadLetter, letter
    assert letter.reason.split(":")[0] in (
        "invalid", "out_of_bounds", "oversized", "undecodable", "unknown_type"
    ), letter.reason
    assert len(encode(letter)) < 2 * MAX_DEAD_LETTER_BYTES  # publishable


def test_valid_messages_pass_on_their_topics():
    decoder = WireDecoder()
    by_type = {t: spec.name for spec in TOPICS for t in spec.event_types}
    for event in valid_events():
        assert decoder.decode(encode(event), by_type[type(event)], 0, 0) == event
    assert decoder.dead_letters == 0


def test_a_nan_trade_is_a_dead_letter_naming_the_field():
    trade = encode(Trade(price=D("1"), size=D("1"), side="buy", **MARKET))
    letter = WireDecoder().decode(trade.replace(b'"price":"1"', b'"price":"NaN"'),
                                  "md.trades", 0, 0)
    assert letter.reason == "out_of_bounds: $.price: NaN is not a finite number"


def test_a_huge_pause_command_is_refused_unread_and_its_dead_letter_stays_small():
    """999,900 bytes of reason once made the executor write an audit record too large to
    publish; commands are bounded at 16 KiB and the dead letter keeps a prefix."""
    command = ControlCommand(command_id="c", ts=TS, issued_by="x", action="pause",
                             params={"reason": "r" * 999_900})
    value = encode(command)
    letter = WireDecoder().decode(value, "control", 0, 3)
    assert type(letter) is DeadLetter
    assert letter.reason.startswith(f"oversized: {len(value)} bytes, at most 16384 on control")
    assert "sha256" in letter.reason and len(letter.raw) == MAX_DEAD_LETTER_BYTES


def test_a_nul_in_a_command_target_is_refused():
    command = ControlCommand(command_id="c", ts=TS, issued_by="x", action="kill",
                             target="binance\x00")
    letter = WireDecoder().decode(encode(command), "control", 0, 0)
    assert letter.reason == "out_of_bounds: $.target: holds a NUL character"


def test_audit_records_are_bounded_too():
    record = AuditChain().append(TS, "api", "control", {"note": "a\x00"})
    letter = WireDecoder().decode(encode_line(record), "audit", 0, 0)
    assert type(letter) is DeadLetter and "NUL" in letter.reason


@pytest.mark.parametrize(("number", "ok"), [
    ("58000.12345678", True), ("0", True), ("-0.5", True), ("1e30", True), ("1e-30", True),
    ("1e31", False), ("1e-31", True), ("1e-1000000", True), ("NaN", False), ("-Infinity", False),
    ("1.0000000000000000000000000000001", True),
])
def test_decimal_bounds(number, ok):
    assert (decimal_problem(D(number)) is None) is ok


def test_bounds_of_plain_values():
    assert problem({"a": [1, 2.5, "x"]}) is None
    assert "int64" in problem([2**64])
    assert "not finite" in problem({"x": float("inf")})
