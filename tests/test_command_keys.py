"""Where command keys and the Kafka password come from, and the API's signed publishing."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.kafka.command_keys import (
    CommandKeyError,
    CommandsConfig,
    load_signer,
    load_verifier,
    new_signing_key_file,
)
from models.events import ControlCommand, decode
from quoteflow.api.services import Publisher
from quoteflow.config import ConfigError, load_config
from tests.kafka_service import new_deployment, read_topic


def test_a_signing_key_file_must_be_private(tmp_path):
    path = tmp_path / "command.pem"
    public = new_signing_key_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_signer(CommandsConfig(signing_key_file=str(path))).public_key == public
    path.chmod(0o644)
    with pytest.raises(CommandKeyError, match="mode 0644"):
        load_signer(CommandsConfig(signing_key_file=str(path)))
    with pytest.raises(FileExistsError):
        new_signing_key_file(path)  # never overwritten


def test_a_signing_key_from_the_environment_and_none_configured():
    seed = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    config = load_config(None, {"QUOTEFLOW_COMMANDS__SIGNING_KEY": seed})
    assert load_signer(config.commands) is not None
    assert "signing_key" not in repr(config.commands).replace("signing_key_file", "")
    assert load_signer(CommandsConfig()) is None
    with pytest.raises(CommandKeyError, match="base64 of a 32-byte"):
        load_signer(CommandsConfig(signing_key="c2hvcnQ="))


@pytest.mark.parametrize("section, key", [("kafka", "password"), ("commands", "signing_key")])
def test_secrets_are_refused_in_the_config_file(tmp_path, section, key):
    path = tmp_path / "quoteflow.toml"
    path.write_text(f'[{section}]\n{key} = "hunter2"\n')
    with pytest.raises(ConfigError, match=f"{section}.{key} is a secret") as error:
        load_config(path, {})
    assert "hunter2" not in str(error.value)


def test_the_kafka_password_comes_from_the_environment_verbatim():
    config = load_config(None, {
        "QUOTEFLOW_KAFKA__SECURITY_PROTOCOL": "SASL_SSL", "QUOTEFLOW_KAFKA__USERNAME": "api",
        "QUOTEFLOW_KAFKA__PASSWORD": "123456",
    })
    assert config.kafka.client_settings()["sasl.password"] == "123456"
    assert "123456" not in repr(config.kafka)


def test_the_api_publishes_commands_signed_with_its_key(kafka_bootstrap, tmp_path):
    kafka = new_deployment(kafka_bootstrap)
    path = tmp_path / "command.pem"
    public = new_signing_key_file(path)
    publisher = Publisher(kafka, load_signer(CommandsConfig(signing_key_file=str(path))))
    try:
        sent = publisher.command(ControlCommand(command_id="c1", ts=time.time_ns(),
                                                issued_by="alice", action="pause"))
    finally:
        publisher.close()
    [(_, _, value)] = read_topic(kafka, "control")
    received = decode(value)
    assert received == sent and received.issued_by == "alice" and received.nonce
    assert load_verifier(CommandsConfig(public_keys=(public,))).refusal(
        received, time.time_ns()) is None
