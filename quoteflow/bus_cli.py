"""`quoteflow bus ...`: the bus's principals and the control API's command key
(docs/security.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from quoteflow.output_paths import output_dir

bus_app = typer.Typer(help="Who may use the Kafka bus, and the key commands are signed with.",
                      no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


def _admin(config: Path | None):
    """The configuration's `[kafka]` section and an admin client on it, or a one-line exit."""
    from connectors.kafka.config import KafkaConfigError, KafkaUnavailable, connect_admin
    from quoteflow.config import ConfigError, load_config

    try:
        kafka = load_config(config).kafka
        return kafka, connect_admin(kafka)
    except (ConfigError, KafkaConfigError, KafkaUnavailable) as error:
        raise _fail(str(error)) from None


@bus_app.command("principals")
def principals(
    out: Annotated[Path, typer.Option("--out", help="Directory for <user>.password files.",
                                      callback=output_dir)],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration; its "
                      "[kafka] section logs in as the broker's admin.")] = None,
) -> None:
    """Create or replace this deployment's SCRAM users (`<prefix>.<process>`, bare for the
    empty prefix; connectors/kafka/acls.py) with new passwords and their ACLs for the
    deployment's prefix; write the passwords to <user>.password files of mode 0600. Another
    deployment's users are never touched."""
    from confluent_kafka import KafkaException

    from connectors.kafka.acls import (
        PRINCIPALS,
        apply_acls,
        nesting_deployments,
        new_password,
        scram_users,
        set_passwords,
        user_name,
    )
    from connectors.kafka.replays import carry_shared_marker

    kafka, admin = _admin(config)
    try:
        nesting = nesting_deployments(scram_users(admin, kafka.connect_timeout_s), kafka.prefix)
    except KafkaException as error:
        raise _fail(f"cannot list the broker's users: {error}") from None
    if nesting:
        raise _fail(f"topic prefix {kafka.prefix!r} nests with the prefix of deployment(s) "
                    f"{', '.join(repr(p) for p in nesting)} on this broker: their executor "
                    "ids could not be told apart (docs/security.md); choose another prefix")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    users = {principal.name: user_name(principal.name, kafka.prefix) for principal in PRINCIPALS}
    passwords = {user: new_password() for user in users.values()}
    # The files first: a password the broker knows is never one nobody kept.
    for user, password in passwords.items():
        path = out / f"{user}.password"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(password + "\n")
    try:
        set_passwords(admin, passwords)
        # Before the grants narrow to the deployment's own groups: as the admin, who may.
        carried = carry_shared_marker(kafka)
        bindings = apply_acls(admin, kafka.prefix)
    except KafkaException as error:
        raise _fail(f"cannot set the deployment's users up: {error}") from None
    typer.echo(json.dumps({"principals": sorted(users), "users": users,
                           "acl_bindings": bindings, "prefix": kafka.prefix,
                           "password_files": str(out),
                           "replay_marker_partitions_carried": carried}))


@bus_app.command("retire")
def retire(
    users: Annotated[list[str], typer.Argument(help="SCRAM user names, e.g. executor.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration; its "
                      "[kafka] section logs in as the broker's admin.")] = None,
) -> None:
    """Delete users' ACLs and SCRAM credentials: the shared bare users (`executor`, ...) once
    no process logs in as them any more (docs/security.md, upgrade to per-deployment users)."""
    from confluent_kafka import KafkaException

    from connectors.kafka.acls import retire_users

    kafka, admin = _admin(config)
    if kafka.username in users:
        raise _fail(f"refusing to retire {kafka.username}, the user this command logs in as")
    try:
        deleted = retire_users(admin, users, kafka.connect_timeout_s)
    except KafkaException as error:
        raise _fail(f"cannot retire {', '.join(users)}: {error}") from None
    typer.echo(json.dumps({"retired": users, "acl_bindings_deleted": deleted}))


@bus_app.command("signing-key")
def signing_key(
    out: Annotated[Path, typer.Option("--out", help="The new private key file (mode 0600).")],
) -> None:
    """Make the control API's Ed25519 command-signing key; print its public key, which goes
    into commands.public_keys of every process that acts on commands."""
    from connectors.kafka.command_keys import new_signing_key_file

    try:
        typer.echo(new_signing_key_file(out))
    except FileExistsError:
        raise _fail(f"{out} exists; a signing key is never overwritten") from None
    except OSError as error:
        raise _fail(f"cannot write {out}: {error.strerror}") from None
