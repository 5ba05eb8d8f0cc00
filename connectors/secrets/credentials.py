"""Exchange credentials in memory, and the masked view of a stored key.

`ExchangeCredentials` is the only object that holds plaintext key material. It validates on
construction (so malformed material never reaches a store), prints masked, and refuses to be
pickled: Bytewax recovery snapshots and multiprocessing pickle their state, and a secret must
not reach disk that way.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.secrets.validation import check_key_material

HIDDEN = "***"
_MASK_EDGE = 4
# Below this length showing both edges would reveal most of the key.
_MIN_MASKABLE = 16


def mask_api_key(api_key: str) -> str:
    """`abcd…wxyz` for a long key, `***` for a short one."""
    if len(api_key) < _MIN_MASKABLE:
        return HIDDEN
    return f"{api_key[:_MASK_EDGE]}…{api_key[-_MASK_EDGE:]}"


class ExchangeCredentials:
    """An exchange API key with its secret and, where the venue needs them, password and uid.

    `password` is the passphrase some venues require (OKX, Coinbase Exchange, KuCoin);
    `uid` the account id a few require (Coinmate, NDAX). Immutable.
    """

    __slots__ = ("api_key", "password", "secret", "uid")

    api_key: str
    secret: str
    password: str | None
    uid: str | None

    def __init__(
        self, api_key: str, secret: str, password: str | None = None, uid: str | None = None
    ) -> None:
        setter = object.__setattr__
        setter(self, "api_key", check_key_material("api_key", api_key))
        setter(self, "secret", check_key_material("secret", secret))
        setter(
            self, "password", None if password is None else check_key_material("password", password)
        )
        setter(self, "uid", None if uid is None else check_key_material("uid", uid))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ExchangeCredentials is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("ExchangeCredentials is immutable")

    def __reduce__(self) -> object:
        raise TypeError("ExchangeCredentials cannot be pickled: secrets stay in memory")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExchangeCredentials):
            return NotImplemented
        return self.as_tuple() == other.as_tuple()

    __hash__ = None  # type: ignore[assignment]  # a hash of a secret is a guessing oracle

    def __repr__(self) -> str:
        def hidden(value: str | None) -> str:
            return "None" if value is None else HIDDEN

        return (
            f"ExchangeCredentials(api_key={mask_api_key(self.api_key)!r}, secret={HIDDEN}, "
            f"password={hidden(self.password)}, uid={hidden(self.uid)})"
        )

    __str__ = __repr__

    def as_tuple(self) -> tuple[str, str, str | None, str | None]:
        return (self.api_key, self.secret, self.password, self.uid)

    def to_ccxt_config(self) -> dict[str, str]:
        """The keys of a ccxt exchange's constructor config (`apiKey`, `secret`, ...)."""
        config = {"apiKey": self.api_key, "secret": self.secret}
        if self.password is not None:
            config["password"] = self.password
        if self.uid is not None:
            config["uid"] = self.uid
        return config


@dataclass(frozen=True, slots=True)
class KeyRecordInfo:
    """What may be shown about a stored key: never the secret, the api key only masked."""

    owner: str
    exchange: str
    key_id: str
    api_key_masked: str
    has_password: bool
    has_uid: bool
    created_at: str  # ISO 8601, UTC
