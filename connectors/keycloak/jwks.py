"""The realm's public signing keys, fetched from its JWKS endpoint and cached.

Keys are refetched after `ttl_s`, and early when a token names a key id not seen yet (Keycloak
rotated its keys). Early refetches are spaced by `min_refetch_interval_s` so that tokens with
made-up key ids cannot turn every request into a call to Keycloak. When a scheduled refresh
fails the keys already known stay in use: a short Keycloak outage must not reject every
token that was valid a moment ago.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import jwt

from connectors.keycloak.errors import JwksUnavailable, UnknownSigningKey

log = logging.getLogger(__name__)

SIGNING_ALGORITHM = "RS256"

JwksFetcher = Callable[[str], dict[str, Any]]


def fetch_json(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.load(response)


class JwksCache:
    __slots__ = (
        "_clock",
        "_fetch",
        "_fetched_at",
        "_keys",
        "_lock",
        "certs_url",
        "min_refetch_interval_s",
        "ttl_s",
    )

    def __init__(
        self,
        certs_url: str,
        *,
        ttl_s: float = 300.0,
        min_refetch_interval_s: float = 10.0,
        fetch: JwksFetcher = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.certs_url = certs_url
        self.ttl_s = ttl_s
        self.min_refetch_interval_s = min_refetch_interval_s
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = self._clock()
            if self._fetched_at is None:
                self._refresh(now)
            elif now - self._fetched_at >= self.ttl_s:
                self._refresh_keeping_known_keys(now)
            elif kid not in self._keys and now - self._fetched_at >= self.min_refetch_interval_s:
                self._refresh(now)
            found = self._keys.get(kid)
        if found is None:
            raise UnknownSigningKey(f"no signing key with id {kid!r} at {self.certs_url}")
        return found

    def _refresh_keeping_known_keys(self, now: float) -> None:
        try:
            self._refresh(now)
        except JwksUnavailable as error:
            log.warning("keeping %d cached signing keys: %s", len(self._keys), error)
            self._fetched_at = now  # retry after another TTL, not on every request

    def _refresh(self, now: float) -> None:
        try:
            document = self._fetch(self.certs_url)
        except (OSError, ValueError) as error:  # URLError and JSONDecodeError included
            raise JwksUnavailable(f"cannot fetch {self.certs_url}: {error}") from error
        self._keys = _signing_keys(document)
        self._fetched_at = now
        log.info("fetched %d signing keys from %s", len(self._keys), self.certs_url)


def _signing_keys(document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    """RS256 signature keys by key id; Keycloak also publishes encryption keys, left out."""
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document.get("keys", ()):
        if entry.get("use", "sig") != "sig" or entry.get("kty") != "RSA" or "kid" not in entry:
            continue
        if entry.get("alg", SIGNING_ALGORITHM) != SIGNING_ALGORITHM:
            continue
        keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=SIGNING_ALGORITHM)
    return keys
