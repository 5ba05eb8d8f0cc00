"""Audit files checked against their anchor: what was published when each record was appended.

The file alone cannot show a cut tail, a chain recomputed whole, or a record appended by
someone else. Unit tests run the pure check (`models.audit.check_anchor`); the integration
tests anchor in a real PostgreSQL `audit` table (as the persist flow fills it) and run the
API's restart and `quoteflow audit verify` against it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.audit_store import (
    AuditStore,
    AuditStoreError,
    database_links,
    read_audit,
    refuse_if_behind,
    verify_anchored,
)
from connectors.timescale import EventWriter, TimescaleConfig, connect, migrate
from models.audit import AuditChain, Link, encode_line, parse_line
from quoteflow.api.services import Database, open_audit_store
from quoteflow.cli import app
from tests.postgres_service import fresh_database


def _write_chain(path: Path, count: int, actor: str = "alice") -> list:
    with AuditStore(path) as store:
        return [store.append(n, actor, "control", {"n": n}) for n in range(count)]


def _links(records) -> list[Link]:
    return [Link(r.seq, r.hash, r.prev_hash) for r in records]


def _other_chain() -> list[Link]:
    chain = AuditChain()
    return _links([chain.append(n, "executor", "intent", {"m": n}) for n in range(4)])


def _cut(path: Path, keep: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep]))


def test_an_intact_published_chain_is_anchored(tmp_path):
    path = tmp_path / "a.jsonl"
    records = _write_chain(path, 5)
    result = verify_anchored(path, _other_chain() + _links(records))
    assert result.ok and "anchored at seq 5" in str(result)


def test_a_cut_tail_is_detected(tmp_path):
    path = tmp_path / "a.jsonl"
    records = _write_chain(path, 5)
    _cut(path, 3)
    result = verify_anchored(path, _links(records))
    assert not result.ok and result.reason == "CUT_BEFORE_ANCHOR", result
    # The anchor's records of this chain expired up to seq 2: still followed from seq 3.
    assert verify_anchored(path, _links(records[2:])).reason == "CUT_BEFORE_ANCHOR"


def test_a_recomputed_chain_is_detected(tmp_path):
    path = tmp_path / "a.jsonl"
    records = _write_chain(path, 4)
    rewritten = tmp_path / "b.jsonl"
    chain = AuditChain()
    rewritten.write_bytes(b"".join(
        encode_line(chain.append(r.ts, r.actor, r.action, {"n": 99})) for r in records))
    result = verify_anchored(rewritten, _links(records))
    assert result.reason == "NOT_ANCHORED", result
    # Recomputed from seq 3 on: the anchor goes on from seq 2 with another record.
    chain = AuditChain(records[1].seq, records[1].hash)
    partly = tmp_path / "c.jsonl"
    partly.write_bytes(b"".join(encode_line(r) for r in records[:2]) + b"".join(
        encode_line(chain.append(r.ts, r.actor, r.action, {"n": 99})) for r in records[2:]))
    assert verify_anchored(partly, _links(records)).reason == "CUT_BEFORE_ANCHOR"


def test_a_forged_record_appended_at_the_end_is_detected(tmp_path):
    path = tmp_path / "a.jsonl"
    records = _write_chain(path, 3)
    chain = AuditChain(records[-1].seq, records[-1].hash)
    with path.open("ab") as file:
        file.write(encode_line(chain.append(9, "mallory", "control", {"action": "resume"})))
    result = verify_anchored(path, _links(records))
    assert result.reason == "UNANCHORED_TAIL" and "records 4..4" in result.detail


def test_a_restart_on_a_cut_file_is_refused(tmp_path):
    path = tmp_path / "a.jsonl"
    records = _write_chain(path, 5)
    _cut(path, 3)
    store = AuditStore(path)
    try:
        with pytest.raises(AuditStoreError, match="ends at seq 3, but its anchor holds seq 4"):
            refuse_if_behind(store, _links(records))
        refuse_if_behind(store, _links(records[:3]))  # an anchor that lags is no reason
    finally:
        store.close()


@pytest.mark.integration
def test_api_restart_and_audit_verify_against_the_database(postgres_dsn, tmp_path):
    with fresh_database(postgres_dsn) as dsn:
        config = TimescaleConfig(dsn=dsn)
        with connect(config) as conn:  # not migrated yet: an empty anchor, nothing behind
            assert database_links(conn) == []
            migrate(conn)
        path = tmp_path / "api-audit.jsonl"
        store = open_audit_store(str(path), Database(dsn))
        records = [store.append(n, "alice", "control", {"n": n}) for n in range(5)]
        store.close()
        with connect(config) as conn:  # what the persist flow stores from the audit topic
            writer = EventWriter(conn, config)
            writer.write(records)
            writer.flush()
            assert len(database_links(conn)) == 5

        toml = tmp_path / "q.toml"
        toml.write_text(f"[postgres]\ndsn = '{dsn}'\n")
        runner = CliRunner()
        ok = runner.invoke(app, ["audit", "verify", str(path), "--config", str(toml)])
        assert ok.exit_code == 0 and "anchored at seq 5" in ok.output, ok.output

        _cut(path, 3)  # the attack: the tail removed, then a restart
        with pytest.raises(AuditStoreError, match="anchor holds seq 4"):
            open_audit_store(str(path), Database(dsn))
        assert [r.seq for r in read_audit(path)] == [1, 2, 3]  # nothing re-issued
        cut = runner.invoke(app, ["audit", "verify", str(path), "--config", str(toml)])
        assert cut.exit_code == 1 and "CUT_BEFORE_ANCHOR" in cut.output, cut.output
        plain = runner.invoke(app, ["audit", "verify", str(path), "--anchor", "none"])
        assert plain.exit_code == 0  # the file alone cannot tell

        down = tmp_path / "down.toml"
        down.write_text("[postgres]\ndsn = 'postgresql://u:pw@127.0.0.1:9/x'\n")
        refused = runner.invoke(app, ["audit", "verify", str(path), "--config", str(down)])
        assert refused.exit_code == 2 and "anchor cannot be read" in refused.output
        assert parse_line(path.read_bytes().splitlines(keepends=True)[-1]).seq == 3
