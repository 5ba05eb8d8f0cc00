"""models.flow_control and QuoteSession.on_control: what the quote flow does with operators'
commands (verified, validated, applied, acknowledged), with no broker."""

from __future__ import annotations

import pickle
from decimal import Decimal as D

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.venues.market_cache import instrument_for
from models.command_signing import REPLAYED, STALE, UNSIGNED, CommandVerifier, sign
from models.events import BBO, ControlAck, ControlCommand
from models.flow_control import (
    APPLIED,
    REFUSED,
    CommandGate,
    FlowControl,
    InstrumentControl,
    StrategyChoice,
    control_of,
)
from models.quote_engine import ModelFallbacks
from models.quote_session import QuoteSessionOptions, build_quote_session

S = 1_000_000_000
NOW = 1_800_000_000 * S
KEY = Ed25519PrivateKey.generate()
BTC = instrument_for("binance", "BTC/USDT")
CONFIGURED = StrategyChoice(strategy="fixed-offset", params={"offset_ticks": "0"})
OTHER = "binance:ETH/USDT"
# Quotes from the first event on: the estimators' warm-up is not what these tests are about.
FALLBACKS = ModelFallbacks(sigma=5.0, A=1.0, k=0.5)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def command(action: str, target: str = "*", n: int = 1, ts: int = NOW, **params: str):
    unsigned = ControlCommand(command_id=f"c{n}", ts=ts, issued_by="alice", action=action,
                              target=target, params=params)
    return sign(unsigned, KEY, f"nonce-{n}")


def gate(clock: Clock | None = None) -> CommandGate:
    verifier = CommandVerifier([KEY.public_key()], max_age_ns=30 * S, max_skew_ns=5 * S)
    return CommandGate("quote", verifier, CONFIGURED, [BTC.key, OTHER], clock or Clock())


def acks(out: list) -> list[ControlAck]:
    return [item for item in out if type(item) is ControlAck]


def test_applied_commands_are_acked_with_the_state_and_sent_to_every_instrument():
    g = gate()
    out = g.on_event(command("set_params", BTC.key, strategy="glft", gamma="0.2"))
    (ack,) = acks(out)
    assert (ack.status, ack.reason, ack.issued_by, ack.command_id) == (APPLIED, None, "alice", "c1")
    assert ack.key == f"quote:{BTC.key}:set_params"
    controls = [item for item in out if type(item) is InstrumentControl]
    assert [f"{c.venue}:{c.symbol}" for c in controls] == [BTC.key, OTHER]
    state = control_of(ack)
    assert state.version == 1
    assert state.choice_for(BTC.key).strategy == "glft"
    assert state.choice_for(BTC.key).params == {"gamma": "0.2"}
    assert state.choice_for(OTHER) == CONFIGURED

    g.on_event(command("pause", "binance", n=2))
    g.on_event(command("pause", "*", n=3))
    (ack,) = acks(g.on_event(command("resume", "*", n=4)))
    state = control_of(ack)
    assert state.version == 4 and state.paused == ["binance"]
    assert state.is_paused(BTC.key) and not state.is_paused("binanceusdm:BTC/USDT:USDT")


def test_unsigned_stale_replayed_and_out_of_range_commands_are_refused_and_change_nothing():
    clock = Clock()
    g = gate(clock)
    applied = command("pause", BTC.key, n=1)
    assert acks(g.on_event(applied))[0].status == APPLIED
    unsigned = ControlCommand(command_id="u", ts=NOW, issued_by="mallory", action="resume",
                              target=BTC.key)
    forged = command("resume", BTC.key, n=5).__copy__()
    forged.issued_by = "mallory"
    cases = [
        (unsigned, UNSIGNED),
        (forged, "bad_signature"),
        (command("resume", BTC.key, n=6, ts=NOW - 31 * S), STALE),
        (applied, REPLAYED),
        (command("set_params", "*", n=7, strategy="ladder", levels="30000000"), "bad_params"),
        (command("set_params", "*", n=8, strategy="nope"), "bad_params"),
    ]
    for bad, reason in cases:
        out = g.on_event(bad)
        assert len(out) == 1, reason  # the ack alone: no instrument hears of it
        (ack,) = out
        assert ack.status == REFUSED and ack.reason.startswith(reason), (reason, ack.reason)
        assert control_of(ack).version == 1 and control_of(ack).paused == [BTC.key]
    assert g.refused == len(cases)


def test_commands_for_the_executor_alone_pass_unanswered():
    assert gate().on_event(command("kill")) == []


def test_a_restored_gate_keeps_its_state_and_still_refuses_spent_nonces():
    clock = Clock()
    g = gate(clock)
    first = command("pause", BTC.key, n=1)
    g.on_event(first)
    restored = pickle.loads(pickle.dumps(g))
    assert restored.control == g.control
    assert acks(restored.on_event(first))[0].reason == REPLAYED
    assert acks(restored.on_event(command("resume", BTC.key, n=2)))[0].status == APPLIED


def bbo(ts: int, bid: str, ask: str) -> BBO:
    return BBO(venue=BTC.venue, symbol=BTC.symbol, exchange_ts=ts, receive_ts=ts,
               bid_price=D(bid), bid_size=D(1), ask_price=D(ask), ask_size=D(1))


def control(version: int, **fields) -> InstrumentControl:
    state = FlowControl(configured=CONFIGURED, version=version, **fields)
    return InstrumentControl(BTC.venue, BTC.symbol, state)


def test_session_switches_pauses_and_resumes_at_once_on_the_book_it_has():
    options = QuoteSessionOptions(strategy="fixed-offset", params={"offset_ticks": "0"},
                                  fallbacks=FALLBACKS)
    session = build_quote_session(BTC, options)
    (first,) = session.on_event(bbo(1, "50000.00", "50000.02"))
    assert first.bids[0].price == D("50000.00") and not first.intent_id.endswith(":c1")

    offset = StrategyChoice(strategy="fixed-offset", params={"offset_ticks": "5"})
    (moved,) = session.on_event(control(1, strategies={"*": offset}))
    assert moved.bids[0].price == D("49999.95") and moved.asks[0].price == D("50000.07")
    assert moved.intent_id.endswith(":c1") and moved.ts == 1
    assert session.on_event(control(1, strategies={"*": offset})) == []  # repeated

    (withdrawn,) = session.on_event(control(2, strategies={"*": offset}, paused=[BTC.key]))
    assert withdrawn.bids == [] and withdrawn.asks == []
    assert session.on_event(bbo(2, "50000.10", "50000.12")) == []  # paused: the book moves on

    (back,) = session.on_event(control(3, strategies={"*": offset}))
    assert back.bids[0].price == D("50000.05")  # on the book as it is now
    assert session.inventory == 0

    ladder = StrategyChoice(strategy="ladder", params={"levels": "2", "level_spacing_bps": "5"})
    (switched,) = session.on_event(control(4, strategies={BTC.key: ladder}))
    assert switched.strategy == "ladder" and len(switched.bids) == 2


def test_a_control_state_before_any_market_data_quotes_with_the_first_event():
    session = build_quote_session(BTC, QuoteSessionOptions(strategy="fixed-offset",
                                                                   fallbacks=FALLBACKS))
    assert session.on_event(control(1, paused=["*"])) == []
    assert session.on_event(bbo(1, "50000.00", "50000.02")) == []
    (intent,) = session.on_event(control(2))
    assert intent.bids and intent.intent_id.endswith(":c2")
