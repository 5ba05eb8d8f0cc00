"""Key material, identifiers and the master key: what is accepted, what is refused and how."""

from __future__ import annotations

import base64
import os
import pickle

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.secrets import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    ExchangeCredentials,
    InvalidIdentifierError,
    InvalidKeyMaterialError,
    MasterKey,
    MasterKeyError,
    UnknownExchangeError,
    load_master_key,
    mask_api_key,
    read_master_key_file,
)
from connectors.secrets.validation import check_exchange, check_key_id, check_owner

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
PEM = (
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB0000000000000000000000\n-----END EC PRIVATE KEY-----"
)

printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=16, max_size=80)


@given(api_key=printable, secret=printable, password=printable, uid=printable)
def test_repr_and_str_never_show_the_secret_parts(api_key, secret, password, uid):
    credentials = ExchangeCredentials(api_key, secret, password, uid)
    for shown in (repr(credentials), str(credentials), f"{credentials}"):
        for value in (secret, password, uid, api_key):
            assert value not in shown
        assert repr(mask_api_key(api_key)) in shown


def test_masking_shows_only_the_edges_of_a_long_api_key():
    assert mask_api_key(API_KEY) == "vmPU…Eh8A"
    assert mask_api_key("short-key-123") == "***"  # edges would reveal most of it


def test_credentials_are_immutable_unpicklable_and_map_to_ccxt_config():
    credentials = ExchangeCredentials(API_KEY, SECRET, password="passphrase1")
    with pytest.raises(AttributeError):
        credentials.secret = "other-secret-value"  # type: ignore[misc]
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(credentials)
    assert credentials.to_ccxt_config() == {
        "apiKey": API_KEY,
        "secret": SECRET,
        "password": "passphrase1",
    }
    assert ExchangeCredentials(API_KEY, SECRET, uid="12345").to_ccxt_config()["uid"] == "12345"


def test_a_pem_secret_may_span_lines_but_an_api_key_may_not():
    assert ExchangeCredentials("organizations/abc/apiKeys/def", PEM).secret == PEM
    with pytest.raises(InvalidKeyMaterialError, match="api_key has a non-printable"):
        ExchangeCredentials("abcdefgh\nijkl", SECRET)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_key": "", "secret": SECRET}, "api_key is empty"),
        ({"api_key": API_KEY, "secret": "   \t "}, "secret is only whitespace"),
        ({"api_key": f" {API_KEY}", "secret": SECRET}, "api_key has leading or trailing"),
        ({"api_key": API_KEY, "secret": f"{SECRET}\n"}, "secret has leading or trailing"),
        ({"api_key": API_KEY.encode(), "secret": SECRET}, "api_key must be a string, not bytes"),
        ({"api_key": API_KEY, "secret": None}, "secret must be a string, not NoneType"),
        ({"api_key": API_KEY, "secret": 12345678}, "secret must be a string, not int"),
        ({"api_key": "abc", "secret": SECRET}, "api_key is 3 characters long; expected 8 to 512"),
        ({"api_key": API_KEY, "secret": "x" * 1_000_000}, "secret is 1000000 characters long"),
        ({"api_key": API_KEY, "secret": SECRET, "password": ""}, "password is empty"),
        ({"api_key": API_KEY, "secret": SECRET, "uid": "u" * 300}, "uid is 300 characters"),
        ({"api_key": API_KEY, "secret": "abc\x00defghij"}, "secret has a non-printable .* 3"),
        ({"api_key": API_KEY, "secret": "abc\tdefghij"}, "secret has a non-printable"),
        ({"api_key": "clé-api-12345", "secret": SECRET}, "api_key has a non-printable .* 2"),
        ({"api_key": API_KEY, "secret": SECRET, "password": "p\u200bass"}, "password has a non"),
        ({"api_key": API_KEY, "secret": "secret\r\nsecret"}, "secret has a non-printable"),
    ],
)
def test_malformed_key_material_gives_a_specific_error_without_the_value(kwargs, message):
    with pytest.raises(InvalidKeyMaterialError, match=message) as caught:
        ExchangeCredentials(**kwargs)
    for value in kwargs.values():
        if isinstance(value, str) and len(value) >= 8:
            assert value not in str(caught.value)


@pytest.mark.parametrize(
    "owner", ["alice", "a", "0f8d3c1e-5b7a-4f3e-9c2d-1a2b3c4d5e6f", "a.b@c-d_e"]
)
def test_owner_ids_accepted(owner):
    assert check_owner(owner) == owner


@pytest.mark.parametrize(
    "owner", ["", "../bob", "alice/bob", ".hidden", "a" * 129, "al ice", "alice\x00", 7, None]
)
def test_owner_ids_that_could_escape_a_path_or_confuse_the_aad_are_refused(owner):
    with pytest.raises(InvalidIdentifierError, match="owner must be"):
        check_owner(owner)


@pytest.mark.parametrize("key_id", ["", "A" * 32, "0" * 31, "../" + "0" * 29, 5])
def test_malformed_key_ids_are_refused(key_id):
    with pytest.raises(InvalidIdentifierError, match="key_id must be 32"):
        check_key_id(key_id)


def test_every_ccxt_exchange_id_is_accepted():
    assert [check_exchange(exchange) for exchange in ccxt.exchanges] == ccxt.exchanges


@pytest.mark.parametrize(
    ("exchange", "message"),
    [
        ("binanse", "unknown exchange id 'binanse'.*did you mean binance"),
        ("Binance", "unknown exchange id 'Binance'"),
        ("nosuchvenue", "not one of ccxt's \\d+ exchanges$"),
        ("", "unknown exchange id ''"),
        (None, "must be a ccxt exchange id string, not NoneType"),
    ],
)
def test_unknown_exchange_ids_are_refused_with_a_hint(exchange, message):
    with pytest.raises(UnknownExchangeError, match=message):
        check_exchange(exchange)


# -- master key -----------------------------------------------------------------------------


def test_master_key_from_the_environment():
    key = MasterKey.generate()
    loaded = load_master_key({MASTER_KEY_ENV: key.to_base64()})
    assert loaded.material == key.material
    assert key.to_base64() not in repr(loaded)
    assert loaded.fingerprint in repr(loaded)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no master key: set QUOTEFLOW_MASTER_KEY"),
        ({MASTER_KEY_ENV: "not base64!"}, "QUOTEFLOW_MASTER_KEY is not valid base64"),
        (
            {MASTER_KEY_ENV: base64.b64encode(b"k" * 16).decode()},
            "decodes to 16 bytes; a master key is 32",
        ),
        ({MASTER_KEY_ENV: "a", MASTER_KEY_FILE_ENV: "/x"}, "not both"),
    ],
)
def test_master_key_environment_errors(environ, message):
    with pytest.raises(MasterKeyError, match=message):
        load_master_key(environ)


def _key_file(tmp_path, mode, content=None):
    path = tmp_path / "master.key"
    path.write_text(content if content is not None else MasterKey.generate().to_base64() + "\n")
    path.chmod(mode)
    return path


def test_master_key_file_with_mode_0600_is_read(tmp_path):
    path = _key_file(tmp_path, 0o600)
    key = load_master_key({MASTER_KEY_FILE_ENV: str(path)})
    assert key.to_base64() == path.read_text().strip()
    assert read_master_key_file(tmp_path / ".." / tmp_path.name / "master.key").material == (
        key.material
    )


def test_a_symlinked_key_file_is_judged_by_the_file_it_points_to(tmp_path):
    # Kubernetes mounts secret files as symlinks into a timestamped directory.
    target = _key_file(tmp_path, 0o400)
    link = tmp_path / "link.key"
    link.symlink_to(target)
    assert read_master_key_file(link).to_base64() == target.read_text().strip()
    target.chmod(0o644)
    with pytest.raises(MasterKeyError, match="has mode 0644"):
        read_master_key_file(link)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_master_key_file_readable_by_others_is_refused(tmp_path, mode):
    path = _key_file(tmp_path, mode)
    with pytest.raises(MasterKeyError, match=f"has mode {mode:04o}.*chmod 600"):
        read_master_key_file(path)


def test_master_key_file_problems(tmp_path):
    with pytest.raises(MasterKeyError, match="does not exist"):
        read_master_key_file(tmp_path / "missing.key")
    unreadable = _key_file(tmp_path, 0o000)
    if os.geteuid() != 0:  # root reads anything
        with pytest.raises(MasterKeyError, match="cannot open master key file"):
            read_master_key_file(unreadable)
    directory = tmp_path / "dir.key"
    directory.mkdir(mode=0o700)
    with pytest.raises(MasterKeyError, match="not a regular file"):
        read_master_key_file(directory)
    with pytest.raises(MasterKeyError, match="is not base64 text"):
        read_master_key_file(_key_file(tmp_path, 0o600, content="é" * 10))
    with pytest.raises(MasterKeyError, match="decodes to 3 bytes"):
        read_master_key_file(_key_file(tmp_path, 0o600, content="YWJj"))


def test_master_key_is_exactly_32_bytes_and_unpicklable():
    with pytest.raises(MasterKeyError, match="exactly 32 bytes"):
        MasterKey(os.urandom(16))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(MasterKey.generate())
