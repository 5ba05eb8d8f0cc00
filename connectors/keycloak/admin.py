"""Administration of the quoteflow realm through Keycloak's admin API (python-keycloak).

For operations and tests: create users with roles (and an OTP credential, so a trader can
log in non-interactively), read a confidential client's generated secret, adjust a client or
the realm. The realm itself is code (`REALM_FILE`) and is imported at start-up; this helper
only manages what changes at run time. Secrets it returns are never logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection

REALM = "quoteflow"
REALM_FILE = Path(__file__).with_name("realm-quoteflow.json")

# Keycloak's stored form of a TOTP credential. The realm's OTP policy must agree: these are
# the values realm-quoteflow.json sets (and the authenticator apps' defaults).
_TOTP_CREDENTIAL_DATA = json.dumps(
    {"subType": "totp", "digits": 6, "period": 30, "algorithm": "HmacSHA1", "counter": 0}
)


class RealmAdmin:
    def __init__(
        self,
        server_url: str,
        username: str,
        password: str,
        *,
        realm: str = REALM,
        timeout_s: float = 30.0,
    ) -> None:
        connection = KeycloakOpenIDConnection(
            server_url=server_url,
            username=username,
            password=password,
            realm_name=realm,
            user_realm_name="master",
            client_id="admin-cli",
            timeout=timeout_s,
        )
        self.realm = realm
        self.api = KeycloakAdmin(connection=connection)

    def create_user(
        self,
        username: str,
        password: str,
        roles: Iterable[str] = (),
        *,
        otp_secret: str | None = None,
        email: str | None = None,
    ) -> str:
        """Create an enabled user and return its id.

        `otp_secret` is the TOTP shared secret as Keycloak stores it (the raw string whose
        UTF-8 bytes are the HMAC key; authenticator apps see it base32-encoded).
        """
        credentials: list[dict[str, Any]] = [
            {"type": "password", "value": password, "temporary": False}
        ]
        if otp_secret is not None:
            credentials.append(
                {
                    "type": "otp",
                    "userLabel": "provisioned",
                    "secretData": json.dumps({"value": otp_secret}),
                    "credentialData": _TOTP_CREDENTIAL_DATA,
                }
            )
        user_id = self.api.create_user(
            {
                "username": username,
                "enabled": True,
                "email": email or f"{username}@quoteflow.invalid",
                "emailVerified": True,
                "firstName": username,
                "lastName": "quoteflow",
                "credentials": credentials,
            }
        )
        role_names = list(roles)
        if role_names:
            self.api.assign_realm_roles(
                user_id, [self.api.get_realm_role(name) for name in role_names]
            )
        return user_id

    def delete_user(self, username: str) -> None:
        user_id = self.api.get_user_id(username)
        if user_id is not None:
            self.api.delete_user(user_id)

    def set_enabled(self, username: str, enabled: bool) -> None:
        """Disable (or re-enable) a user: its tokens stop passing introspection at once."""
        self.api.update_user(self._user_id(username), {"enabled": enabled})

    def remove_roles(self, username: str, roles: Iterable[str]) -> None:
        self.api.delete_realm_roles_of_user(
            self._user_id(username), [self.api.get_realm_role(name) for name in roles])

    def login_failures(self, username: str) -> int:
        """Failed logins Keycloak's brute-force detection has booked for the user (0 after a
        successful login or once its failure reset time has passed)."""
        status = self.api.get_bruteforce_detection_status(self._user_id(username))
        return int(status.get("numFailures", 0))

    def _user_id(self, username: str) -> str:
        user_id = self.api.get_user_id(username)
        if user_id is None:
            raise LookupError(f"no user {username!r} in realm {self.realm}")
        return user_id

    def client_secret(self, client_id: str) -> str:
        return self.api.get_client_secrets(self._client_uuid(client_id))["value"]

    def update_client(self, client_id: str, **fields: Any) -> None:
        """Change top-level fields of a client, e.g. `directAccessGrantsEnabled=True`."""
        uuid = self._client_uuid(client_id)
        self.api.update_client(uuid, {**self.api.get_client(uuid), **fields})

    def realm_settings(self) -> dict[str, Any]:
        return self.api.get_realm(self.realm)

    def update_realm(self, **fields: Any) -> None:
        """Change realm settings, e.g. `accessTokenLifespan=60`."""
        self.api.update_realm(self.realm, fields)

    def _client_uuid(self, client_id: str) -> str:
        uuid = self.api.get_client_id(client_id)
        if uuid is None:
            raise LookupError(f"no client {client_id!r} in realm {self.realm}")
        return uuid
