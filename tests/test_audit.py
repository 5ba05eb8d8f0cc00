"""The hash-chained audit trail: records from a real replay, tampering named precisely."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from itertools import islice

import pytest

from connectors.audit_store import AuditStore, AuditStoreError, verify_audit
from connectors.replay.recordings import Recordings
from models.audit import GENESIS_HASH, AuditChain, record_hash, verify_lines
from models.events import Fill
from tests.conftest import BINANCE_FILES

RECORDS = 200


@pytest.fixture(scope="module")
def real_events():
    """Normalized events of a real recording: the payloads an executor would audit."""
    usdm = next(f for f in BINANCE_FILES if "usdm" in str(f))
    return list(islice(Recordings([usdm]).events(), RECORDS))


def write_chain(path, events, **store_options):
    with AuditStore(path, **store_options) as store:
        for event in events:
            store.append(event.receive_ts, "ingest", type(event).__name__, event)
    return path


@pytest.fixture
def chain_file(tmp_path, shared_data, real_events):
    # Batched fsyncs: one per record would make each test wait on the disk 200 times.
    return write_chain(tmp_path / "audit.jsonl", real_events, sync_every=100)


def lines_of(path):
    return path.read_bytes().splitlines(keepends=True)


def test_intact_chain_verifies(chain_file):
    result = verify_audit(chain_file)
    assert result.ok, str(result)
    assert result.records == RECORDS
    assert str(result).startswith(f"OK: {RECORDS} records")


def test_records_are_canonical_json_with_decimals_as_strings(chain_file):
    first = json.loads(lines_of(chain_file)[0])
    assert list(first) == sorted(first)
    assert first["seq"] == 1 and first["prev_hash"] == GENESIS_HASH
    assert isinstance(first["payload"]["bids"][0][0], str)
    body = {k: v for k, v in first.items() if k != "hash"}
    assert first["hash"] == record_hash(**body)


def test_edited_payload_is_a_bad_hash(chain_file):
    lines = lines_of(chain_file)
    record = json.loads(lines[41])
    record["payload"]["symbol"] = "ETH/USDT:USDT"
    lines[41] = (json.dumps(record) + "\n").encode()
    chain_file.write_bytes(b"".join(lines))
    result = verify_audit(chain_file)
    assert (result.ok, result.reason, result.line, result.seq) == (False, "BAD_HASH", 42, 42)
    assert result.records == 41


def test_edited_payload_with_recomputed_hash_breaks_the_next_link(chain_file):
    lines = lines_of(chain_file)
    record = json.loads(lines[9])
    record["payload"]["venue"] = "elsewhere"
    record["hash"] = record_hash(**{k: v for k, v in record.items() if k != "hash"})
    lines[9] = (json.dumps(record) + "\n").encode()
    chain_file.write_bytes(b"".join(lines))
    result = verify_audit(chain_file)
    assert (result.reason, result.line, result.seq) == ("BAD_PREV_LINK", 11, 11)


def test_deleted_record_is_a_seq_gap(chain_file):
    lines = lines_of(chain_file)
    del lines[99]
    chain_file.write_bytes(b"".join(lines))
    result = verify_audit(chain_file)
    assert (result.reason, result.line, result.seq) == ("SEQ_GAP", 100, 101)
    assert "100..100 are missing" in result.detail


def test_reordered_records_are_named(chain_file):
    lines = lines_of(chain_file)
    lines[5], lines[6] = lines[6], lines[5]
    chain_file.write_bytes(b"".join(lines))
    result = verify_audit(chain_file)
    assert (result.reason, result.line, result.seq) == ("REORDERED", 6, 7)
    assert "line 7" in result.detail


def test_duplicated_record_is_a_seq_repeat(chain_file):
    lines = lines_of(chain_file)
    lines.insert(3, lines[2])
    chain_file.write_bytes(b"".join(lines))
    result = verify_audit(chain_file)
    assert (result.reason, result.line, result.seq) == ("SEQ_REPEAT", 4, 3)


def test_truncated_last_line_is_a_clear_error(chain_file):
    data = chain_file.read_bytes()
    chain_file.write_bytes(data[:-40])
    result = verify_audit(chain_file)
    assert (result.reason, result.line) == ("TRUNCATED", RECORDS)
    assert result.records == RECORDS - 1
    assert "cut-off" in str(result)


def test_garbage_line_is_unparseable(chain_file):
    lines = lines_of(chain_file)
    lines[20] = b'{"seq": 21, "oops"\n'
    chain_file.write_bytes(b"".join(lines))
    result = verify_audit(chain_file)
    assert (result.reason, result.line) == ("UNPARSEABLE", 21)


def test_unknown_field_is_unparseable(chain_file):
    lines = lines_of(chain_file)
    record = json.loads(lines[0])
    record["note"] = "added later"
    lines[0] = (json.dumps(record) + "\n").encode()
    chain_file.write_bytes(b"".join(lines))
    assert verify_audit(chain_file).reason == "UNPARSEABLE"


def test_cut_end_is_caught_only_with_the_expected_head(chain_file):
    head = verify_audit(chain_file).last_hash
    lines = lines_of(chain_file)
    chain_file.write_bytes(b"".join(lines[:-3]))
    assert verify_audit(chain_file).ok  # a chain alone cannot know its own end
    result = verify_audit(chain_file, expected_head=head)
    assert (result.ok, result.reason) == (False, "BAD_HEAD")
    assert verify_audit(chain_file, expected_head=verify_audit(chain_file).last_hash).ok


def test_missing_file_is_unreadable(tmp_path):
    result = verify_audit(tmp_path / "nope.jsonl")
    assert (result.ok, result.reason) == (False, "UNREADABLE")


def test_empty_chain_is_ok():
    assert verify_lines([]).ok


def test_reopen_continues_the_chain(tmp_path, shared_data, real_events):
    path = tmp_path / "audit.jsonl"
    write_chain(path, real_events[:50], sync_every=7)
    before = path.read_bytes()
    write_chain(path, real_events[50:], sync_every=0)
    assert path.read_bytes().startswith(before)  # appended, never rewritten
    result = verify_audit(path)
    assert result.ok and result.records == RECORDS
    with AuditStore(path) as store:
        assert (store.last_seq, store.last_hash) == (RECORDS, result.last_hash)


def test_reopen_refuses_a_cut_off_file(chain_file):
    data = chain_file.read_bytes()
    chain_file.write_bytes(data[:-1])
    with pytest.raises(AuditStoreError, match="cut-off"):
        AuditStore(chain_file)
    assert chain_file.read_bytes() == data[:-1]


def test_reopen_refuses_an_unreadable_last_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"not json\n")
    with pytest.raises(AuditStoreError, match="unreadable"):
        AuditStore(path)


def test_one_writer_per_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditStore(path), pytest.raises(AuditStoreError, match="another writer"):
        AuditStore(path)


def test_closed_store_refuses_appends(tmp_path):
    store = AuditStore(tmp_path / "audit.jsonl")
    store.close()
    with pytest.raises(AuditStoreError, match="closed"):
        store.append(0, "me", "x", {})


def test_long_last_record_is_found_from_the_end(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditStore(path) as store:
        store.append(1, "me", "small", {})
        store.append(2, "me", "big", {"blob": "x" * 200_000})
    with AuditStore(path) as store:
        assert store.last_seq == 2
        store.append(3, "me", "after", {})
    assert verify_audit(path).records == 3


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="sync_every"):
        AuditStore(tmp_path / "a.jsonl", sync_every=-1)


def test_store_file_is_private(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditStore(path).close()
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_payload_hash_is_independent_of_key_order_and_types():
    chain = AuditChain()
    fill = Fill(
        venue="binance", symbol="BTC/USDT", ts=1, client_order_id="c1", trade_id="t1",
        side="buy", price=Decimal("60000.10"), size=Decimal("0.001"), fee=Decimal("0.06"),
        fee_currency="USDT", liquidity="maker",
    )
    record = chain.append(5, "executor", "fill", fill)
    assert record.payload["price"] == "60000.10"
    again = AuditChain().append(5, "executor", "fill", dict(reversed(record.payload.items())))
    assert again.hash == record.hash
