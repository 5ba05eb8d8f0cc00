"""Where Kafka is and how quoteflow names things on it, checked once at start-up.

A bad bootstrap string or topic prefix, or a broker that does not answer, is a
configuration error: it stops the process before any flow starts, with a message that
says what to fix, instead of surfacing later as a librdkafka retry loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

# Kafka allows [A-Za-z0-9._-] in topic names, but warns that '.' and '_' collide in metric
# names; quoteflow's own names are dotted, so prefixes stay off '_'.
_PREFIX = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
_MAX_PREFIX_LENGTH = 200  # topic names stop at 249 characters; the longest base name is 14
_HOST_PORT = re.compile(r"^(?P<host>[^\s:,]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")



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

    def __post_init__(self) -> None:
        validate_bootstrap(self.bootstrap)
        validate_prefix(self.prefix)
        if not self.account:
            raise KafkaConfigError("Kafka account must not be empty (it keys orders.events)")
        if self.connect_timeout_s <= 0:
            raise KafkaConfigError(
                f"Kafka connect timeout must be > 0 s, got {self.connect_timeout_s}"
            )

    def client_settings(self) -> dict[str, str | bool]:
        """librdkafka settings every client of this deployment shares.

        Nagle off: librdkafka batches by itself (`linger.ms`), and Nagle holding a small
        request for the ACK of the previous one put 25-150 ms tails on a loopback ping
        (p99 3-11 ms without it; docs/benchmarks.md, Kafka end to end).
        """
        return {"bootstrap.servers": self.bootstrap, "client.id": self.client_id,
                "socket.nagle.disable": True}


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
    admin = AdminClient({**config.client_settings(), "log_level": 0})
    try:
        admin.list_topics(timeout=config.connect_timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {config.bootstrap} within {config.connect_timeout_s:g} s "
            f"({exc.args[0].str()}); is the broker running? (`./dev kafka` starts one)"
        ) from None
    return admin
