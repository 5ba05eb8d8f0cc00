"""The local encrypted store: file format, tampering, wrong keys, rotation and interruptions.

Every failed operation is checked to leave the store file byte-for-byte as it was.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from connectors.secrets import (
    AmbiguousKeyError,
    CorruptStoreError,
    ExchangeCredentials,
    InvalidIdentifierError,
    InvalidKeyMaterialError,
    LocalSecretStore,
    MasterKey,
    RecordNotFoundError,
    TamperedRecordError,
    UnknownExchangeError,
    WrongMasterKeyError,
)
from connectors.secrets.leak_scan import scan_paths
from tests.conftest import ROOT

CREDS = [
    ExchangeCredentials(f"api-key-{n:02d}-{'k' * 20}", f"secret-{n:02d}-{'s' * 40}", f"pw-{n:02d}")
    for n in range(6)
]


@pytest.fixture
def key() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def store(tmp_path, key) -> LocalSecretStore:
    return LocalSecretStore(tmp_path / "vault" / "keys.json", key)


def _fill(store: LocalSecretStore) -> dict[str, tuple[str, str, ExchangeCredentials]]:
    """Six records over two owners and three exchanges, by key id."""
    placed = {}
    for n, credentials in enumerate(CREDS):
        owner, exchange = ("alice", "bob")[n % 2], ("binance", "okx", "kraken")[n % 3]
        placed[store.put(owner, exchange, credentials).key_id] = (owner, exchange, credentials)
    return placed


def _all_readable(store: LocalSecretStore, placed) -> bool:
    return all(store.get(o, e, key_id) == c for key_id, (o, e, c) in placed.items())


def _edit(path: Path, change) -> None:
    state = json.loads(path.read_bytes())
    change(state)
    path.write_text(json.dumps(state))


def test_file_is_private_json_with_no_plaintext(store, tmp_path):
    placed = _fill(store)
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    assert os.stat(store.path.parent).st_mode & 0o777 == 0o700
    state = json.loads(store.path.read_bytes())
    assert state["format"] == "quoteflow-secrets" and state["generation"] == 1
    assert len({record["nonce"] for record in state["records"]}) == len(placed)
    for credentials in CREDS:
        for canary in (credentials.api_key, credentials.secret):
            assert scan_paths([tmp_path], canary) == []


def test_the_same_credentials_twice_give_different_ciphertexts(store):
    store.put("alice", "binance", CREDS[0])
    store.put("alice", "binance", CREDS[0])
    first, second = json.loads(store.path.read_bytes())["records"]
    assert first["nonce"] != second["nonce"] and first["ciphertext"] != second["ciphertext"]
    with pytest.raises(AmbiguousKeyError, match=r"several binance keys.*pass key_id"):
        store.get("alice", "binance")


def test_a_wrong_master_key_is_detected_before_anything_is_read_or_written(store, tmp_path):
    placed = _fill(store)
    before = store.path.read_bytes()
    with pytest.raises(WrongMasterKeyError, match=r"does not open .*generation 1"):
        LocalSecretStore(store.path, MasterKey.generate())
    # A second handle opened before the file existed meets the key check on first use.
    wrong = LocalSecretStore(tmp_path / "vault" / "keys.json.other", MasterKey.generate())
    os.replace(store.path, wrong.path)
    for attempt in (
        lambda: wrong.put("alice", "binance", CREDS[0]),
        lambda: wrong.get("alice", "binance", next(iter(placed))),
        lambda: wrong.list("alice"),
        lambda: wrong.delete("alice", "binance", next(iter(placed))),
        lambda: wrong.rotate_master_key(MasterKey.generate()),
    ):
        with pytest.raises(WrongMasterKeyError):
            attempt()
    assert wrong.path.read_bytes() == before


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_a_flipped_byte_is_detected_and_other_records_still_read(store, field):
    placed = _fill(store)
    victim = next(iter(placed))

    def flip(state):
        record = next(r for r in state["records"] if r["key_id"] == victim)
        raw = bytearray(base64.b64decode(record[field]))
        raw[len(raw) // 2] ^= 0x01
        record[field] = base64.b64encode(bytes(raw)).decode()

    _edit(store.path, flip)
    tampered = store.path.read_bytes()
    owner, exchange, _ = placed.pop(victim)
    with pytest.raises(TamperedRecordError, match=f"record {victim} .*failed authentication"):
        store.get(owner, exchange, victim)
    assert _all_readable(store, placed)
    assert store.path.read_bytes() == tampered


@pytest.mark.parametrize("value", ["not base64!", "abc"])  # a number fails the field check
def test_a_nonce_that_is_not_base64_is_refused_as_corrupt(store, value):
    placed = _fill(store)
    victim = next(iter(placed))

    def garble(state):
        next(r for r in state["records"] if r["key_id"] == victim)["nonce"] = value

    _edit(store.path, garble)
    owner, exchange, _ = placed[victim]
    with pytest.raises(CorruptStoreError, match="nonce is not"):
        store.get(owner, exchange, victim)


@pytest.mark.parametrize(
    ("field", "value"),
    [("owner", "bob"), ("exchange", "okx"), ("key_id", "0" * 32)],
)
def test_a_record_moved_to_another_owner_exchange_or_id_fails_authentication(store, field, value):
    info = store.put("alice", "binance", CREDS[0])
    _edit(store.path, lambda state: state["records"][0].update({field: value}))
    moved = {"owner": "alice", "exchange": "binance", "key_id": info.key_id, field: value}
    with pytest.raises(TamperedRecordError, match="failed authentication"):
        store.get(moved["owner"], moved["exchange"], moved["key_id"])


def test_ciphertexts_swapped_between_owners_fail_authentication(store):
    alice = store.put("alice", "binance", CREDS[0])
    bob = store.put("bob", "binance", CREDS[1])

    def swap(state):
        first, second = state["records"]
        first["ciphertext"], second["ciphertext"] = second["ciphertext"], first["ciphertext"]
        first["nonce"], second["nonce"] = second["nonce"], first["nonce"]

    _edit(store.path, swap)
    for owner, info in (("alice", alice), ("bob", bob)):
        with pytest.raises(TamperedRecordError):
            store.get(owner, "binance", info.key_id)


def test_bad_input_changes_nothing(store):
    placed = _fill(store)
    before = store.path.read_bytes()
    key_id = next(iter(placed))
    failures = [
        (UnknownExchangeError, lambda: store.put("alice", "binanse", CREDS[0])),
        (InvalidIdentifierError, lambda: store.put("../bob", "binance", CREDS[0])),
        (TypeError, lambda: store.put("alice", "binance", {"apiKey": "x", "secret": "y"})),
        (
            InvalidKeyMaterialError,
            lambda: store.put("alice", "binance", ExchangeCredentials("", "s")),
        ),
        (RecordNotFoundError, lambda: store.delete("alice", "binance", "f" * 32)),
        (RecordNotFoundError, lambda: store.delete("carol", placed[key_id][1], key_id)),
        (InvalidIdentifierError, lambda: store.delete("alice", "binance", "../../etc")),
        (TypeError, lambda: store.rotate_master_key(os.urandom(32))),
    ]
    for error, attempt in failures:
        with pytest.raises(error):
            attempt()
        assert store.path.read_bytes() == before


def test_a_corrupt_file_is_reported_and_never_overwritten(store):
    _fill(store)
    good = store.path.read_bytes()
    for corrupt in (
        good[: len(good) // 2],
        b"",
        b"\xff\xfe",
        b"[]",
        json.dumps({"format": "quoteflow-secrets", "version": 99}).encode(),
        good.replace(b'"has_uid":false', b'"has_uid":"no"', 1),
        good.replace(b'"owner":"alice"', b'"owner":7', 1),
    ):
        store.path.write_bytes(corrupt)
        with pytest.raises(CorruptStoreError):
            store.put("alice", "binance", CREDS[0])
        with pytest.raises(CorruptStoreError):
            store.list("alice")
        assert store.path.read_bytes() == corrupt


def test_rotation_re_encrypts_every_record_under_the_new_key(store, key):
    placed = _fill(store)
    before = json.loads(store.path.read_bytes())
    new_key = MasterKey.generate()
    seen = []
    assert store.rotate_master_key(new_key, progress=lambda done, total: seen.append(done)) == 6
    assert seen == [1, 2, 3, 4, 5, 6]
    after = json.loads(store.path.read_bytes())
    assert after["generation"] == 2 and after["salt"] != before["salt"]
    assert {r["nonce"] for r in after["records"]}.isdisjoint(r["nonce"] for r in before["records"])
    assert _all_readable(store, placed)  # the same handle switched keys
    assert _all_readable(LocalSecretStore(store.path, new_key), placed)
    with pytest.raises(WrongMasterKeyError, match="if a rotation just finished, use the new key"):
        LocalSecretStore(store.path, key)


def test_rotation_interrupted_between_records_loses_nothing(store, key):
    placed = _fill(store)
    before = store.path.read_bytes()

    def fail_after_three(done, total):
        if done == 3:
            raise KeyboardInterrupt  # an operator's ^C half way through

    with pytest.raises(KeyboardInterrupt):
        store.rotate_master_key(MasterKey.generate(), progress=fail_after_three)
    assert store.path.read_bytes() == before
    assert _all_readable(LocalSecretStore(store.path, key), placed)
    assert _all_readable(store, placed)  # the handle kept the old key


def test_rotation_with_a_tampered_record_aborts_without_writing(store, key):
    placed = _fill(store)
    _edit(store.path, lambda state: state["records"][-1].update(owner="mallory"))
    before = store.path.read_bytes()
    with pytest.raises(TamperedRecordError):
        store.rotate_master_key(MasterKey.generate())
    assert store.path.read_bytes() == before
    placed.popitem()
    assert _all_readable(LocalSecretStore(store.path, key), placed)


# A child process rotates and is killed (SIGKILL: no cleanup, no finally) at a chosen point.
_KILLED_ROTATION = """
import os, signal, sys
from connectors.secrets import LocalSecretStore, MasterKey
path, old, new, point = sys.argv[1:]
store = LocalSecretStore(path, MasterKey.from_base64(old, "old"))
def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "between-records":
    new_key = MasterKey.from_base64(new, "new")
    store.rotate_master_key(new_key, progress=lambda done, total: done == 4 and die())
else:  # after the new generation is fsynced beside the old one, before the rename
    os.replace = die
    store.rotate_master_key(MasterKey.from_base64(new, "new"))
"""


@pytest.mark.parametrize("point", ["between-records", "before-rename"])
def test_rotation_killed_mid_way_leaves_every_record_readable(store, key, point):
    placed = _fill(store)
    before = store.path.read_bytes()
    new_key = MasterKey.generate()
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_ROTATION,
            str(store.path),
            key.to_base64(),
            new_key.to_base64(),
            point,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert store.path.read_bytes() == before
    leftovers = [p for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == (1 if point == "before-rename" else 0)
    # On restart the old key opens everything; the next write clears the dead temp file.
    restarted = LocalSecretStore(store.path, key)
    assert _all_readable(restarted, placed)
    with pytest.raises(WrongMasterKeyError):
        LocalSecretStore(store.path, new_key)
    assert restarted.rotate_master_key(new_key) == len(placed)
    assert not [p for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert _all_readable(LocalSecretStore(store.path, new_key), placed)


def test_a_failed_rename_removes_its_temp_file_and_keeps_the_old_file(store, monkeypatch):
    _fill(store)
    before = store.path.read_bytes()

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.put("alice", "binance", CREDS[0])
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["keys.json", "keys.json.lock"]


def test_concurrent_writers_lose_no_record(tmp_path, key):
    path = tmp_path / "keys.json"
    stores = [LocalSecretStore(path, key) for _ in range(4)]

    def add(store, owner):
        for credentials in CREDS:
            store.put(owner, "binance", credentials)

    threads = [
        threading.Thread(target=add, args=(store, f"owner{n}")) for n, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [len(stores[0].list(f"owner{n}")) for n in range(4)] == [len(CREDS)] * 4


def test_a_second_process_sees_a_rotation_as_a_clear_error(store, key):
    placed = _fill(store)
    reader = LocalSecretStore(store.path, key)  # e.g. the executor, started before rotation
    store.rotate_master_key(MasterKey.generate())
    owner, exchange, _ = next(iter(placed.values()))
    with pytest.raises(WrongMasterKeyError, match="generation 2"):
        reader.get(owner, exchange, next(iter(placed)))
