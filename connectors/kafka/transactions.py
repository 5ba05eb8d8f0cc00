"""A producer whose output becomes visible all at once, with the consumer offsets it came from.

Everything sent between two `commit`s is one Kafka transaction: consumers reading committed
data (librdkafka's default `isolation.level`) see all of it or none of it, and the
consumer's offsets are committed in the same transaction (`send_offsets_to_transaction`).
A process killed mid-transaction leaves nothing visible of it: the next producer with the
same `transactional.id` fences the dead one and aborts its transaction when it starts
(`init_transactions`), so a restart knows exactly what was published — the last committed
transaction — and can publish the rest again from its own durable record (the executor's
audit file).
"""

from __future__ import annotations

import contextlib

from confluent_kafka import KafkaError, KafkaException

from connectors.kafka.config import KafkaConfig
from connectors.kafka.consumer import EventConsumer, KafkaFenced
from connectors.kafka.producer import EventProducer, KafkaDeliveryError

# How long a dead producer's open transaction may hold back committed readers (after it,
# the broker aborts it); a live one commits far more often.
TRANSACTION_TIMEOUT_MS = 10_000
# A newer producer with our transactional id, or a newer consumer with the group instance id
# whose offsets we commit (`membership`), started: what we send can never become visible.
# `_FATAL` is what `produce` says of a producer fenced before (a transactional producer's
# fatal error is its fencing; the others abort only the transaction).
_FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                     KafkaError.INVALID_PRODUCER_EPOCH, KafkaError.FENCED_INSTANCE_ID,
                     KafkaError._FATAL})


def role_scope(name: str, prefix: str) -> str:
    """What every id of role `name` in the deployment with topic `prefix` begins with,
    `<name>.<prefix>.` (`-` for the empty prefix): the ACLs grant a deployment's principal
    this prefix only, never another deployment's ids."""
    return f"{name}.{prefix or '-'}."


def transactional_id(name: str, config: KafkaConfig) -> str:
    """One id per process role, deployment and account, under `role_scope`; two processes
    with the same id fence each other, as one executor per account should. It is also the
    executor's consumer group and static instance id (`membership`)."""
    return f"{role_scope(name, config.prefix)}{config.account or '-'}"


class TransactionalProducer(EventProducer):
    """`EventProducer` in transactions: begun by the first send, ended by `commit`."""

    __slots__ = ("_fenced", "_id", "_open", "_timeout_s")

    def __init__(self, config: KafkaConfig, transactional_id: str, timeout_s: float = 30.0):
        super().__init__(config, **{"transactional.id": transactional_id,
                                    "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS})
        self._id = transactional_id
        self._timeout_s = timeout_s
        self._open = False
        self._fenced: KafkaFenced | None = None  # raised again by whatever comes after it
        # Fences an earlier producer with this id (a killed process) and aborts what it left
        # open, so committed readers see past it from now on.
        self._producer.init_transactions(timeout_s)

    def _produce(self, topic: str, key: str | None, value: bytes, partition: int = -1) -> None:
        if self._fenced is not None:
            raise self._fenced
        self._begin()
        try:
            super()._produce(topic, key, value, partition)
        except KafkaException as error:
            if error.args[0].code() in _FENCED:
                raise self._failed(error) from None
            raise

    @property
    def in_transaction(self) -> bool:
        return self._open

    def commit(self, consumer: EventConsumer | None = None) -> None:
        """Make everything sent since the last commit visible, with `consumer`'s positions as
        its group's committed offsets. Any failure raises: what was sent is then not
        visible, and the caller's restart publishes it again."""
        if self._fenced is not None:
            raise self._fenced
        offsets = consumer.positions() if consumer is not None else []
        try:
            if offsets:
                self._begin()
                self._producer.send_offsets_to_transaction(
                    offsets, consumer.group_metadata(), self._timeout_s)  # type: ignore[union-attr]
            if self._open:
                self._producer.commit_transaction(self._timeout_s)
                self._open = False
        except KafkaException as error:
            raise self._failed(error) from None
        if self.stats.failed:
            self.flush()  # raises: a failed delivery fails the transaction too

    def flush(self, timeout_s: float = 30.0) -> None:
        if self._fenced is not None:
            return  # nothing sent since can become visible; the newer process publishes it
        if self._open:
            self.commit()
        super().flush(timeout_s)

    def abandon(self, fenced: KafkaFenced) -> None:
        """Fenced, wherever it was noticed (its consumer's group member may be the first to
        hear): the open transaction is aborted, never committed, and nothing more is sent.
        A producer fenced itself cannot abort: the newer one's start already did."""
        if self._fenced is None:
            self._fenced = fenced
        if self._open:
            self._open = False
            with contextlib.suppress(KafkaException):
                self._producer.abort_transaction(self._timeout_s)

    def _begin(self) -> None:
        if not self._open:
            try:
                self._producer.begin_transaction()
            except KafkaException as error:
                raise self._failed(error) from None
            self._open = True

    def _failed(self, error: KafkaException) -> KafkaDeliveryError | KafkaFenced:
        kafka_error: KafkaError = error.args[0]
        if kafka_error.code() in _FENCED:
            self._fenced = KafkaFenced(f"another process started with transactional id "
                                       f"{self._id}, this one's: it is fenced and stops")
            return self._fenced
        return KafkaDeliveryError(f"a Kafka transaction failed ({kafka_error.str()}); nothing "
                                  "of it is visible, a restart publishes it again")
