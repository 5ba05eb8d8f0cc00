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


@bus_app.command("principals")
def principals(
    out: Annotated[Path, typer.Option("--out", help="Directory for <process>.password files.",
                                      callback=output_dir)],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration; its "
                      "[kafka] section logs in as the broker's admin.")] = None,
) -> None:
    """Create each process's SCRAM user with a new password and its ACLs for the deployment's
    prefix (connectors/kafka/acls.py); write the passwords to files of mode 0600."""
    from connectors.kafka.acls import PRINCIPALS, apply_acls, new_password, set_passwords
    from connectors.kafka.config import KafkaConfigError, KafkaUnavailable, connect_admin
    from quoteflow.config import ConfigError, load_config

    try:
        kafka = load_config(config).kafka
        admin = connect_admin(kafka)
    except (ConfigError, KafkaConfigError, KafkaUnavailable) as error:
        raise _fail(str(error)) from None
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    passwords = {principal.name: new_password() for principal in PRINCIPALS}
    # The files first: a password the broker knows is never one nobody kept.
    for name, password in passwords.items():
        path = out / f"{name}.password"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(password + "\n")
    set_passwords(admin, passwords)
    bindings = apply_acls(admin, kafka.prefix)
    typer.echo(json.dumps({"principals": sorted(passwords), "acl_bindings": bindings,
                           "prefix": kafka.prefix, "password_files": str(out)}))


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
