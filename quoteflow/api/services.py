"""The outside systems the control API reaches, built once per app from the configuration.

Everything is opened on first use, not at start-up: the API must come up (and answer
health, readiness and the reads that still work) while Kafka, PostgreSQL or the secret
store are down. A call that needs a missing system answers 503 saying which and why.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from connectors.audit_store import (
    AuditStore,
    AuditStoreError,
    database_links,
    refuse_if_behind,
)
from connectors.kafka import EventProducer, KafkaConfig, topic_name
from connectors.kafka.command_keys import CommandSigner, load_signer
from connectors.keycloak import Principal, TokenValidator
from connectors.keycloak.introspection import IntrospectionUnavailable, TokenIntrospector
from connectors.secrets.config import open_secret_store
from connectors.timescale import StorageUnavailable, TimescaleConfig, connect
from connectors.timescale.config import InvalidDsn
from connectors.trace_context import current_trace_id
from models.audit import AuditRecord, canonical
from models.events import ControlCommand
from quoteflow.config import Config

# The quoteflow-api client's secret, for token introspection: from the environment only.
CLIENT_SECRET_ENV = "QUOTEFLOW_API_CLIENT_SECRET"
# Reads must fail fast when the database is down; libpq counts whole seconds.
_DB_CONNECT_TIMEOUT_S = 3.0
_FLUSH_TIMEOUT_S = 10.0
_log = logging.getLogger(__name__)


class Database:
    """A connection per request: the API is low-traffic, and it survives database restarts."""

    __slots__ = ("_config",)

    def __init__(self, dsn: str) -> None:
        self._config = TimescaleConfig(dsn=dsn, connect_timeout_s=_DB_CONNECT_TIMEOUT_S)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with connect(self._config) as conn:
            yield conn


class Publisher:
    """Control commands and audit records onto Kafka, each delivered before the call returns.

    One lock orders the two streams as the API produced them, and the producer is shared:
    librdkafka connections are costly to open per request.
    """

    __slots__ = ("_audit_topic", "_config", "_lock", "_producer", "_sign")

    def __init__(self, config: KafkaConfig, signer: CommandSigner | None = None) -> None:
        self._config = config
        if signer is None:
            _log.warning("no commands.signing_key: control commands go out unsigned, and the "
                         "executor refuses them (docs/security.md)")
        self._sign = signer
        self._audit_topic = topic_name(config.prefix, "audit")
        self._lock = threading.Lock()
        self._producer: EventProducer | None = None

    def _ready(self) -> EventProducer:
        if self._producer is None:
            self._producer = EventProducer(self._config)
        return self._producer

    def command(self, command: ControlCommand) -> ControlCommand:
        """Sign `command` (user, time, a nonce, the request's trace id) and deliver it; the
        command as sent."""
        if command.trace_id is None and current_trace_id() is not None:
            command = msgspec.structs.replace(command, trace_id=current_trace_id())
        _log.info("control command %s: %s on %s by %s", command.command_id, command.action,
                  command.target, command.issued_by)
        if self._sign is not None:
            command = self._sign(command)
        with self._lock:
            producer = self._ready()
            producer.send(command)
            producer.flush(_FLUSH_TIMEOUT_S)
        return command

    def audit(self, record: AuditRecord) -> None:
        # Keyed by actor: the topic has one partition, the key is for readers' filtering.
        with self._lock:
            producer = self._ready()
            producer.send_bytes(self._audit_topic, record.actor, canonical(record))
            producer.flush(_FLUSH_TIMEOUT_S)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(_FLUSH_TIMEOUT_S)
                self._producer = None


class Lazy:
    """A value made on first use under a lock; a failed attempt is retried on the next use."""

    __slots__ = ("_factory", "_lock", "_value")

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._value: Any = None

    def get(self) -> Any:
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value

    @property
    def opened(self) -> Any:
        """The value if it was made, else None (for shutting down)."""
        return self._value


@dataclasses.dataclass
class ApiServices:
    """What the routes use. Tests build the real ones from a Config pointing at test servers;
    `exchange_overrides` (ccxt constructor settings per exchange id) point the key test at a
    local stand-in instead of the exchange."""

    config: Config
    validator: TokenValidator
    database: Database
    publisher: Publisher
    secrets: Lazy  # SecretStore
    audit_store: Lazy  # AuditStore
    exchange_overrides: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    introspector: TokenIntrospector | None = None

    def check_revocation(self, token: str | None, principal: Principal, role: str) -> None:
        """For mutating calls: the token still active and the role still held, per Keycloak."""
        if not self.config.keycloak.introspect:
            return
        if self.introspector is None or token is None:
            raise IntrospectionUnavailable(
                f"actions need token revocation checks: set {CLIENT_SECRET_ENV} to the "
                f"{self.config.keycloak.client_id} client's secret (or keycloak.introspect = "
                "false to rely on token expiry alone)")
        self.introspector.require_active(token, principal, role)

    @classmethod
    def from_config(
        cls,
        config: Config,
        environ: Mapping[str, str] | None = None,
        *,
        exchange_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ApiServices:
        environ = os.environ if environ is None else environ
        database = Database(config.postgres.dsn)
        secret = environ.get(CLIENT_SECRET_ENV)
        keycloak = config.keycloak
        return cls(
            config=config,
            validator=TokenValidator(config.keycloak.issuer, config.keycloak.audience),
            database=database,
            publisher=Publisher(config.kafka, load_signer(config.commands)),
            secrets=Lazy(lambda: open_secret_store(config.secrets, environ)),
            audit_store=Lazy(lambda: open_audit_store(config.api.audit_path, database)),
            exchange_overrides=exchange_overrides or {},
            introspector=TokenIntrospector(keycloak.issuer, keycloak.client_id, secret)
            if secret else None,
        )

    def close(self) -> None:
        self.publisher.close()
        store = self.audit_store.opened
        if store is not None:
            store.close()


def open_audit_store(path: str, database: Database | None = None) -> AuditStore:
    """The API's audit file, continued only if its anchor (the database's copy of what was
    published) holds nothing after its last record; an unreadable anchor refuses too."""
    file = Path(path).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = AuditStore(file)
    if database is None:
        return store
    try:
        with database.connection() as conn:
            refuse_if_behind(store, database_links(conn, after=store.last_hash))
    except (StorageUnavailable, InvalidDsn, psycopg.Error) as error:
        store.close()
        raise AuditStoreError(f"its anchor in the database cannot be read: {error}") from None
    except AuditStoreError:
        store.close()
        raise
    return store
