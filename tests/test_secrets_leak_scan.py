"""The canary scanner: every disguise is found, in bytes, files, directories and gzip files,
and the real recorded exchange traffic (a large haystack with no canary) gives no false hit."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.parse
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.secrets.leak_scan import _CHUNK, canary_forms, scan_bytes, scan_paths
from tests.conftest import BINANCE_FILES, CRYPTOFEED_DIR

CANARY = "QF-CANARY-" + "Zq9/x+Yv7=wK"  # base64 and URL-special characters on purpose


def _found(data: bytes, canary: str = CANARY) -> set[str]:
    return {hit.form for hit in scan_bytes(data, canary)}


@pytest.mark.parametrize(
    ("encoded", "form"),
    [
        (CANARY.encode(), "plain"),
        (CANARY.encode().hex().encode(), "hex"),
        (CANARY.encode().hex().upper().encode(), "HEX"),
        (urllib.parse.quote(CANARY, safe="").encode(), "url"),
        (urllib.parse.quote_plus(CANARY).encode(), "url+"),
        (CANARY.encode("utf-16-le"), "utf-16-le"),
    ],
)
def test_each_encoding_is_found(encoded, form):
    # Forms that coincide for this canary (url and url+) are searched once, under one name.
    assert encoded in canary_forms(CANARY).values()
    assert _found(b"log line: " + encoded + b" end")


def test_json_escaped_canary_is_found():
    canary = 'QF"CANARY\\with/quote'
    assert "json" in _found(json.dumps({"apiKey": canary}).encode(), canary)


@given(prefix=st.binary(max_size=20), suffix=st.binary(max_size=20), urlsafe=st.booleans())
def test_base64_is_found_at_any_alignment_inside_a_longer_value(prefix, suffix, urlsafe):
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    assert _found(encode(prefix + CANARY.encode() + suffix))


def test_unrelated_data_gives_no_hit():
    assert _found(b"QF-CANARY-" + b"Zq9/x+Yv7=wX" + CANARY[:-1].encode()) == set()
    assert scan_bytes(b"", CANARY) == []


def test_a_short_canary_is_refused():
    with pytest.raises(ValueError, match="at least 8"):
        canary_forms("abc")


def test_directories_are_searched_recursively_with_offsets(tmp_path):
    (tmp_path / "logs" / "deep").mkdir(parents=True)
    (tmp_path / "logs" / "deep" / "app.log").write_bytes(b"x" * 100 + CANARY.encode())
    (tmp_path / "clean.txt").write_text("nothing here")
    hits = scan_paths([tmp_path], CANARY)
    assert [(hit.where.endswith("app.log"), hit.form, hit.offset) for hit in hits] == [
        (True, "plain", 100)
    ]


def test_a_canary_straddling_a_read_chunk_is_found_at_its_true_offset(tmp_path):
    offset = _CHUNK - 5
    (tmp_path / "big.bin").write_bytes(b"\0" * offset + CANARY.encode() + b"\0" * 10)
    (hit,) = scan_paths([tmp_path / "big.bin"], CANARY)
    assert (hit.form, hit.offset) == ("plain", offset)


def test_gzip_files_are_searched_decompressed_and_truncated_ones_partly(tmp_path):
    payload = b"a" * 5000 + base64.b64encode(CANARY.encode()) + b"b" * 300_000
    whole = gzip.compress(payload)
    (tmp_path / "ok.gz").write_bytes(whole)
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "fake.gz").write_bytes(b"not gzip " + CANARY.encode())
    where = {hit.where.rsplit("/", 1)[-1] for hit in scan_paths([tmp_path], CANARY)}
    assert where == {"ok.gz (decompressed)", "cut.gz (decompressed)", "fake.gz"}


def test_symlinks_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(CANARY)
    scanned = tmp_path / "scanned"
    scanned.mkdir()
    (scanned / "link.txt").symlink_to(outside / "secret.txt")
    assert scan_paths([scanned], CANARY) == []


def test_real_recordings_give_no_false_positive(shared_data):
    canary = "canary-" + uuid.uuid4().hex
    assert scan_paths([CRYPTOFEED_DIR, BINANCE_FILES[0]], canary) == []
    # ...and a canary that is really there is found in them: a price level from the file.
    with gzip.open(BINANCE_FILES[0], "rt") as file:
        line = file.readline()
    needle = line.split()[1][:40]
    hits = scan_paths([BINANCE_FILES[0]], needle)
    assert [hit.offset for hit in hits if hit.where.endswith("(decompressed)")] == [
        len(line.split()[0]) + 1
    ]
