"""`quoteflow bus principals|signing-key`: what ./dev stack up runs, on a real broker."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from connectors.kafka import EventProducer, KafkaDeliveryError
from connectors.kafka.acls import PRINCIPALS
from models.events import ControlCommand
from quoteflow.cli import app
from tests.kafka_service import kafka_toml, new_deployment


def test_principals_get_private_password_files_and_only_their_rights(kafka_bootstrap, tmp_path):
    deployment = new_deployment(kafka_bootstrap)
    config = tmp_path / "quoteflow.toml"
    config.write_text(kafka_toml(deployment))
    out = tmp_path / "bus"

    result = CliRunner().invoke(app, ["bus", "principals", "-c", str(config), "--out", str(out)])

    assert result.exit_code == 0, result.output
    # The deployment's own users, `<prefix>.<process>`, each with its password file.
    users = json.loads(result.output)["users"]
    assert users == {p.name: f"{deployment.prefix}.{p.name}" for p in PRINCIPALS}
    files = {path.name.removesuffix(".password"): path for path in out.iterdir()}
    assert sorted(files) == sorted(users.values())
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files.values())

    def as_(name: str):
        return dataclasses.replace(deployment, username=users[name],
                                   password_file=str(files[users[name]]))

    command = ControlCommand(command_id="c", ts=1, issued_by="x", action="pause")
    api = EventProducer(as_("api"))
    api.send(command)
    api.close(20)
    quote = EventProducer(as_("quote"), **{"message.timeout.ms": 10_000})
    quote.send(command)
    with pytest.raises(KafkaDeliveryError):
        quote.close(20)


def test_signing_key_is_made_once_and_its_public_key_printed(tmp_path):
    key = tmp_path / "command.pem"
    first = CliRunner().invoke(app, ["bus", "signing-key", "--out", str(key)])
    assert first.exit_code == 0 and len(first.output.strip()) == 44  # base64 of 32 bytes
    assert key.stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(app, ["bus", "signing-key", "--out", str(key)])
    assert again.exit_code == 2 and "never overwritten" in again.output


def test_principals_with_refused_credentials_is_a_one_line_error(kafka_bootstrap, tmp_path):
    deployment = new_deployment(kafka_bootstrap)
    wrong = tmp_path / "wrong.password"
    wrong.write_text("nope\n")
    wrong.chmod(0o600)
    config = tmp_path / "quoteflow.toml"
    config.write_text(kafka_toml(dataclasses.replace(deployment, password_file=str(wrong),
                                                     connect_timeout_s=5)))
    result = CliRunner().invoke(app, ["bus", "principals", "-c", str(config),
                                      "--out", str(tmp_path / "bus")])
    assert result.exit_code == 2
    assert "refused us as admin" in result.output and "Traceback" not in result.output
