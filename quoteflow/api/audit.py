"""Every mutating call, as a hash-chained record: the API's audit file and the `audit` topic.

The file is the record of truth and is written first; the topic is its replica for the
persist flow and other readers. A record the broker did not take stays in the file and is
counted (`quoteflow_api_audit_publish_failures`): a gap the chain's head exposes
(`quoteflow audit verify --expected-head`), never a lost record.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaException

from connectors.kafka import KafkaDeliveryError, KafkaUnavailable, MissingTopicsError
from connectors.keycloak import Principal
from models.audit import AuditRecord
from quoteflow.api.metrics import ApiMetrics
from quoteflow.api.services import ApiServices

log = logging.getLogger(__name__)

_PUBLISH_ERRORS = (KafkaUnavailable, KafkaDeliveryError, MissingTopicsError, KafkaException)


class AuditTrail:
    __slots__ = ("_lock", "_metrics", "_services")

    def __init__(self, services: ApiServices, metrics: ApiMetrics) -> None:
        self._services = services
        self._metrics = metrics
        # The file's chain and the topic's order must agree: one writer at a time.
        self._lock = threading.Lock()

    def record(self, who: Principal, action: str, payload: dict[str, Any]) -> AuditRecord:
        """`payload` must hold no secret: callers pass ids, targets and masked keys only."""
        store = self._services.audit_store.get()
        with self._lock:
            record = store.append(
                time.time_ns(), who.username, action, {"subject": who.subject, **payload}
            )
            try:
                self._services.publisher.audit(record)
            except _PUBLISH_ERRORS as error:
                self._metrics.audit_publish_failures.inc()
                log.warning("audit record %d kept in the file only: %s", record.seq, error)
        return record
