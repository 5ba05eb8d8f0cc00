"""Where Kafka is, who we are on it, and how quoteflow names things on it, checked once at
start-up.

A bad bootstrap string or topic prefix, a broker that does not answer or credentials it
refuses, is a configuration error: it stops the process before any flow starts, with a
message that says what to fix, instead of surfacing later as a librdkafka retry loop.

Security (docs/security.md): `SASL_SSL` with SCRAM-SHA-512 (the dev and test brokers), or
`SSL` with a client certificate (mTLS). The password is a secret and never comes from the
configuration file: `QUOTEFLOW_KAFKA__PASSWORD` in the environment, or `password_file` (a
file readable by its owner only, as Kubernetes and Vault agents mount secrets).
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# Kafka allows [A-Za-z0-9._-] in topic names, but warns that '.' and '_' collide in metric
# names; quoteflow's own names are dotted, so prefixes stay off '_'.
_PREFIX = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
_MAX_PREFIX_LENGTH = 200  # topic names stop at 249 characters; the longest base name is 14
_HOST_PORT = re.compile(r"^(?P<host>[^\s:,]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


_REFUSED = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})


class KafkaConfigError(ValueError):
    """The Kafka settings cannot work; the message says which one and why."""


class KafkaUnavailable(ConnectionError):
    """The broker did not answer in time."""


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """Connection and naming for one deployment.

    `prefix` namespaces every topic (`prod` → `prod.md.book`) so deployments can share a
    cluster. `account` keys the order topics: one account's acks, fills and positions stay
    in order on one partition.
    """

    bootstrap: str = "127.0.0.1:9092"
    prefix: str = ""
    account: str = "default"
    client_id: str = "quoteflow"
    connect_timeout_s: float = 10.0
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    # Never from the configuration file (quoteflow.config refuses it there); never printed.
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    ca_file: str | None = None  # the CA that signed the broker's certificate (PEM)
    cert_file: str | None = None  # client certificate for mTLS (PEM)
    key_file: str | None = None  # its private key (PEM), readable by its owner only

    def __post_init__(self) -> None:
        validate_bootstrap(self.bootstrap)
        validate_prefix(self.prefix)
        if not self.account:
            raise KafkaConfigError("Kafka account must not be empty (it keys orders.events)")
        if self.connect_timeout_s <= 0:
            raise KafkaConfigError(
                f"Kafka connect timeout must be > 0 s, got {self.connect_timeout_s}"
            )
        self._validate_security()

    def _validate_security(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise KafkaConfigError(
                f"kafka.security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)}, "
                f"not {self.security_protocol!r} (SASL without TLS would send credentials "
                "in the clear)"
            )
        if self.security_protocol == "SASL_SSL":
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise KafkaConfigError(
                    f"kafka.sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}, "
                    f"not {self.sasl_mechanism!r}"
                )
            if not self.username:
                raise KafkaConfigError("kafka.username is required with SASL_SSL")
            if self.password is None and not self.password_file:
                raise KafkaConfigError(
                    "Kafka SASL needs a password: set QUOTEFLOW_KAFKA__PASSWORD or "
                    "kafka.password_file (never kafka.password in the file)"
                )
        if (self.cert_file is None) != (self.key_file is None):
            raise KafkaConfigError("kafka.cert_file and kafka.key_file go together (mTLS)")
        if self.security_protocol == "PLAINTEXT" and (self.username or self.cert_file):
            raise KafkaConfigError(
                "kafka credentials are set but kafka.security_protocol is PLAINTEXT; "
                "set it to SASL_SSL (or SSL for mTLS)"
            )

    def client_settings(self) -> dict[str, str | bool]:
        """librdkafka settings every client of this deployment shares, credentials included.

        Nagle off: librdkafka batches by itself (`linger.ms`), and Nagle holding a small
        request for the ACK of the previous one put 25-150 ms tails on a loopback ping
        (p99 3-11 ms without it; docs/benchmarks.md, Kafka end to end).
        """
        settings: dict[str, str | bool] = {
            "bootstrap.servers": self.bootstrap, "client.id": self.client_id,
            "socket.nagle.disable": True, "security.protocol": self.security_protocol,
        }
        if self.security_protocol == "PLAINTEXT":
            return settings
        # The broker's name is checked against its certificate (librdkafka's default, kept
        # explicit): TLS without it would accept any certificate the CA ever signed.
        settings["ssl.endpoint.identification.algorithm"] = "https"
        if self.ca_file:
            settings["ssl.ca.location"] = _readable(self.ca_file, "kafka.ca_file")
        if self.cert_file and self.key_file:
            settings["ssl.certificate.location"] = _readable(self.cert_file, "kafka.cert_file")
            settings["ssl.key.location"] = _owner_only(self.key_file, "kafka.key_file")
        if self.security_protocol == "SASL_SSL":
            settings |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.username or "",
                "sasl.password": self._password(),
            }
        return settings

    def toml_section(self) -> str:
        """This configuration as the `[kafka]` section of a configuration file, for the
        processes a script or test starts: never the password (only its file)."""
        if self.password is not None:
            raise KafkaConfigError("a password never goes into a configuration file; "
                                   "use password_file or QUOTEFLOW_KAFKA__PASSWORD")
        lines = ["[kafka]"]
        for name in ("bootstrap", "prefix", "account", "client_id", "security_protocol",
                     "sasl_mechanism", "username", "password_file", "ca_file", "cert_file",
                     "key_file"):
            value = getattr(self, name)
            if value is not None:
                lines.append(f"{name} = {json.dumps(value)}")
        lines.append(f"connect_timeout_s = {self.connect_timeout_s}")
        return "\n".join(lines) + "\n"

    def _password(self) -> str:
        if self.password is not None:
            return self.password
        path = _owner_only(self.password_file or "", "kafka.password_file")
        with open(path, encoding="utf-8") as file:
            password = file.read().strip()
        if not password:
            raise KafkaConfigError(f"kafka.password_file {path} is empty")
        return password


def read_client_env(path: str | os.PathLike) -> dict[str, str]:
    """The variables of a `KEY=value` file such as the `client.env` kafka.sh writes (the
    admin's QUOTEFLOW_KAFKA__* settings), for quoteflow.config.load_config."""
    with open(path, encoding="utf-8") as file:
        return dict(line.rstrip("\n").split("=", 1) for line in file
                    if "=" in line and not line.startswith("#"))


def _readable(path: str, setting: str) -> str:
    expanded = os.path.expanduser(path)
    if not os.path.isfile(expanded):
        raise KafkaConfigError(f"{setting} {path} does not exist or is not a file")
    return expanded


def _owner_only(path: str, setting: str) -> str:
    """A secret's file, refused when group or others may read it."""
    expanded = _readable(path, setting)
    mode = stat.S_IMODE(os.stat(expanded).st_mode)
    if mode & 0o077:
        raise KafkaConfigError(
            f"{setting} {path} has mode {mode:04o}; a secret must be readable by its owner "
            "only (chmod 600)"
        )
    return expanded


def validate_bootstrap(bootstrap: str) -> None:
    servers = bootstrap.split(",")
    for server in servers:
        match = _HOST_PORT.match(server.strip())
        if match is None or not 0 < int(match["port"]) < 65536:
            raise KafkaConfigError(
                f"invalid Kafka bootstrap {bootstrap!r}: expected host:port[,host:port...], "
                f"got {server!r}"
            )


def validate_prefix(prefix: str) -> None:
    if not prefix:
        return
    if len(prefix) > _MAX_PREFIX_LENGTH:
        raise KafkaConfigError(
            f"Kafka topic prefix is {len(prefix)} characters; at most {_MAX_PREFIX_LENGTH}"
        )
    if not _PREFIX.match(prefix):
        raise KafkaConfigError(
            f"invalid Kafka topic prefix {prefix!r}: use letters, digits and '-' in "
            "'.'-separated parts (e.g. 'prod' or 'eu.paper')"
        )


def connect_admin(config: KafkaConfig) -> AdminClient:
    """An AdminClient on a broker that has answered within `config.connect_timeout_s`."""
    # librdkafka would print a line per failed connect attempt; the exception below says it once.
    refused: list[str] = []

    def on_error(error: KafkaError) -> None:
        if error.code() in _REFUSED:
            refused.append(error.str())

    admin = AdminClient({**config.client_settings(), "log_level": 0, "error_cb": on_error})
    try:
        admin.list_topics(timeout=config.connect_timeout_s)
    except KafkaException as exc:
        admin.poll(0)  # serves the error callbacks: was it the credentials?
        if refused:
            raise KafkaConfigError(
                f"Kafka at {config.bootstrap} refused us as {config.username or 'anonymous'} "
                f"({config.security_protocol}): {refused[-1]}; check kafka.username, the "
                "password and kafka.ca_file"
            ) from None
        raise KafkaUnavailable(
            f"cannot reach Kafka at {config.bootstrap} within {config.connect_timeout_s:g} s "
            f"({exc.args[0].str()}); is the broker running? (`./dev kafka` starts one) Does "
            f"kafka.security_protocol ({config.security_protocol}) match its listener?"
        ) from None
    return admin


# A new topic's partitions may still be electing leaders, a new broker loading its group
# coordinator, for a moment: that settles.
_SETTLING = (
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
)
_T = TypeVar("_T")


def settled(call: Callable[[], _T], timeout_s: float) -> _T:
    """`call()`, asked again while the cluster is still settling (leaders, coordinators) for
    up to `timeout_s`; any other error, or one that outlasts it, is raised."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except KafkaException as error:
            if error.args[0].code() not in _SETTLING or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
