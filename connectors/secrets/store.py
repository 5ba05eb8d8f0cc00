"""The one interface every secret backend implements.

Every call is scoped by `owner` (the authenticated user's id): an owner's records are
invisible to every other owner, and another owner's key id looks exactly like a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from connectors.secrets.credentials import ExchangeCredentials, KeyRecordInfo, mask_api_key
from connectors.secrets.validation import check_exchange, check_owner, check_required_fields

# A rotation calls this after each record it re-protects, with (done, total).
RotationProgress = Callable[[int, int], None]


class SecretStore(Protocol):
    def put(self, owner: str, exchange: str, credentials: ExchangeCredentials) -> KeyRecordInfo:
        """Store a new key under a fresh key id; never overwrites an existing record."""
        ...

    def get(self, owner: str, exchange: str, key_id: str | None = None) -> ExchangeCredentials:
        """The plaintext credentials, for the executor's memory only.

        Without `key_id` the owner must have exactly one key for the exchange.
        """
        ...

    def list(self, owner: str) -> list[KeyRecordInfo]:
        """The owner's keys, masked, ordered by exchange then creation time."""
        ...

    def delete(self, owner: str, exchange: str, key_id: str) -> None:
        """Remove the record for good; RecordNotFoundError if the owner has no such key."""
        ...


def new_record_info(owner: str, exchange: str, credentials: ExchangeCredentials) -> KeyRecordInfo:
    """Validate a `put` and describe the record it creates (fresh key id, creation time)."""
    check_owner(owner)
    check_exchange(exchange)
    if not isinstance(credentials, ExchangeCredentials):
        raise TypeError(
            f"credentials must be ExchangeCredentials, not {type(credentials).__name__}"
        )
    has_password, has_uid = credentials.password is not None, credentials.uid is not None
    check_required_fields(exchange, {"password": has_password, "uid": has_uid})
    return KeyRecordInfo(
        owner=owner,
        exchange=exchange,
        key_id=uuid.uuid4().hex,
        api_key_masked=mask_api_key(credentials.api_key),
        has_password=has_password,
        has_uid=has_uid,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
