"""models.command_signing: what the executor acts on, and why it refuses the rest."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.command_signing import (
    BAD_SIGNATURE,
    FROM_THE_FUTURE,
    REPLAYED,
    STALE,
    UNKNOWN_KEY,
    UNSIGNED,
    CommandVerifier,
    parse_public_key,
    public_key_text,
    sign,
)
from models.events import ControlCommand, decode, encode

S = 1_000_000_000
NOW = 1_800_000_000 * S
KEY = Ed25519PrivateKey.generate()


def command(**fields) -> ControlCommand:
    return ControlCommand(**({"command_id": "c1", "ts": NOW, "issued_by": "alice",
                              "action": "kill", "target": "*"} | fields))


def verifier() -> CommandVerifier:
    return CommandVerifier([KEY.public_key()], max_age_ns=30 * S, max_skew_ns=5 * S)


def test_a_signed_fresh_command_passes_once_and_survives_the_wire():
    signed = decode(encode(sign(command(), KEY, "n1")))
    check = verifier()
    assert signed.v == 2
    assert check.refusal(signed, NOW + S) is None
    assert check.refusal(signed, NOW + 2 * S) == REPLAYED


@pytest.mark.parametrize("change", [
    {"action": "resume"}, {"target": "binance:BTC/USDT"}, {"issued_by": "root"},
    {"ts": NOW + 1}, {"params": {"max_position": "off"}}, {"nonce": "n2"},
])
def test_any_changed_field_breaks_the_signature(change):
    tampered = msgspec.structs.replace(sign(command(), KEY, "n1"), **change)
    assert verifier().refusal(tampered, NOW) == BAD_SIGNATURE


def test_unsigned_unknown_key_stale_and_future_commands_are_refused():
    check = verifier()
    assert check.refusal(command(), NOW) == UNSIGNED
    assert check.refusal(sign(command(), Ed25519PrivateKey.generate(), "n"), NOW) == UNKNOWN_KEY
    assert check.refusal(sign(command(ts=NOW - 31 * S), KEY, "n"), NOW) == STALE
    assert check.refusal(sign(command(ts=NOW + 6 * S), KEY, "n"), NOW) == FROM_THE_FUTURE
    garbage = msgspec.structs.replace(sign(command(), KEY, "n"), signature="!!" * 40)
    assert check.refusal(garbage, NOW) == BAD_SIGNATURE


def test_a_nonce_is_forgotten_only_once_its_command_is_stale_anyway():
    check = verifier()
    first = sign(command(), KEY, "n1")
    assert check.refusal(first, NOW) is None
    later = sign(command(ts=NOW + 40 * S, command_id="c2"), KEY, "n2")
    assert check.refusal(later, NOW + 40 * S) is None  # the first nonce is dropped now
    assert check.refusal(first, NOW + 40 * S) == STALE


def test_public_keys_round_trip_as_text():
    text = public_key_text(KEY.public_key())
    assert parse_public_key(text).public_bytes_raw() == KEY.public_key().public_bytes_raw()
    with pytest.raises(ValueError, match="32 raw Ed25519 bytes"):
        parse_public_key("bm90IGEga2V5")


def test_nonces_spent_by_an_earlier_run_are_refused_while_fresh():
    earlier = sign(command(ts=NOW - 10 * S), KEY, "n-earlier")
    old = sign(command(ts=NOW - 31 * S, command_id="c0"), KEY, "n-old")
    check = verifier()
    check.spend([("n-earlier", earlier.ts), ("n-old", old.ts)], NOW)
    assert check.refusal(earlier, NOW) == REPLAYED
    assert check.refusal(old, NOW) == STALE  # not kept: too old to pass anyway
    assert check.refusal(sign(command(command_id="c2"), KEY, "n-new"), NOW) is None
