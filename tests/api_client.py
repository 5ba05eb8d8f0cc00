"""The control API seen from a client, for the tests that drive it (tests/test_api.py,
tests/test_no_key_leaks.py): a FastAPI test client with real Keycloak logins, and a record
of every response body for the leak scans.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.keycloak_service import TestRealm, TestUser


class Recorder:
    """Every response body the tests saw, for the leak scan at the end."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []


class Api:
    """The control API through a FastAPI test client, logged in as users of its own in a test
    realm (one per test module); `call` records every response body in `recorder`."""

    def __init__(self, client: TestClient, recorder: Recorder, realm: TestRealm) -> None:
        self.client = client
        self.recorder = recorder
        self.realm = realm
        self._tokens: dict[tuple[str, str], dict] = {}
        self._users: dict[tuple[str, str], TestUser] = {}

    def call(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)
        self.recorder.bodies.append(response.content)
        return response

    def tokens(self, role: str, client_id: str = "quoteflow-api") -> dict:
        """This client's own logins: the realm's session cache would hand later modules
        tokens that expired while the rest of the suite ran."""
        if (role, client_id) not in self._tokens:
            user = self.user(role, client_id)
            otp = user.fresh_otp() if user.otp_secret else ""
            self._tokens[role, client_id] = self.realm.login(user, client_id, otp=otp)
        return self._tokens[role, client_id]

    def user(self, role: str, client_id: str = "quoteflow-api") -> TestUser:
        """This client's user with `role` for `client_id`: users of its own, so that no login
        here comes right after the realm fixture's login of the same user (Keycloak refuses a
        user's login while the one before is being booked, `TestRealm.wait_booked`)."""
        if (role, client_id) not in self._users:
            self._users[role, client_id] = self.realm.add_user(
                role, otp=role in ("trader", "admin")
            )
        return self._users[role, client_id]

    def token(self, role: str) -> str:
        return self.tokens(role)["access_token"]
