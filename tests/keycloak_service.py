"""A real Keycloak 26 for the test session, serving the project's realm, started on first use.

`scripts/services/keycloak.sh` does the work (fetching the distribution from Maven Central
once into the user cache, building it once, starting it on 127.0.0.1 with
connectors/keycloak/realm-quoteflow.json imported); `keycloak_url` picks a free port, starts
it and stops it at the end. Set `QUOTEFLOW_KEYCLOAK_URL` to test against one you already run
(`./dev keycloak`).

`keycloak_realm` then prepares the realm for tests through the admin API, with what the
realm file deliberately leaves out:
- direct access grants (the password grant) on the `quoteflow-api` and `grafana` clients, so
  tests log in without a browser; in the realm file both clients are browser-only;
- no quick-login lockout (tests fail logins on purpose, back to back);
- one user per role with a random password, and for trader and admin (who must present an
  OTP) a TOTP credential whose codes the tests compute with `totp_code`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from keycloak import KeycloakOpenID

from connectors.keycloak.admin import REALM, RealmAdmin

ROOT = Path(__file__).resolve().parents[1]
KEYCLOAK_SCRIPT = ROOT / "scripts" / "services" / "keycloak.sh"
ENV_URL = "QUOTEFLOW_KEYCLOAK_URL"
ADMIN_USERNAME = os.environ.get("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
# The admin password: the caller's, else the one keycloak.sh generated for the instance
# (DIR/admin.password); an instance run elsewhere (QUOTEFLOW_KEYCLOAK_URL) needs it set.
ADMIN_PASSWORD_ENV = "KC_BOOTSTRAP_ADMIN_PASSWORD"
_admin_passwords: dict[str, str] = {}
INSTANCE_DIRS: dict[str, Path] = {}  # url → the instance's directory, for the tests started here
# A cold start on a busy 2-core machine takes minutes; the first one also downloads and builds.
_START_TIMEOUT_S = 900
TEST_CLIENTS = ("quoteflow-api", "grafana")
OTP_PERIOD_S = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def keycloak_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get(ENV_URL)
    if existing:
        _admin_passwords[existing.rstrip("/")] = os.environ.get(ADMIN_PASSWORD_ENV, "")
        yield existing.rstrip("/")
        return
    directory = tmp_path_factory.mktemp("keycloak")
    start = subprocess.run(
        [str(KEYCLOAK_SCRIPT), "start", str(directory), str(_free_port())],
        capture_output=True, text=True, timeout=_START_TIMEOUT_S, check=False,
    )
    try:
        if start.returncode != 0:
            pytest.fail(f"could not start Keycloak:\n{start.stderr[-4000:]}", pytrace=False)
        url = start.stdout.strip().splitlines()[-1]
        INSTANCE_DIRS[url] = directory
        _admin_passwords[url] = os.environ.get(ADMIN_PASSWORD_ENV) or (
            directory / "admin.password").read_text().strip()
        yield url
    finally:
        subprocess.run([str(KEYCLOAK_SCRIPT), "stop", str(directory)], check=False, timeout=120)


def admin_password(url: str) -> str:
    return _admin_passwords[url]


def totp_code(secret: str, time_step: int) -> str:
    """RFC 6238 TOTP (HMAC-SHA1, 6 digits) as Keycloak computes it for a stored secret."""
    digest = hmac.new(secret.encode(), struct.pack(">Q", time_step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


@dataclass
class TestUser:
    __test__ = False  # not a pytest test class

    username: str
    password: str
    roles: tuple[str, ...]
    otp_secret: str | None
    # Keycloak refuses a code twice; with its look-around window of one period, three steps
    # (previous, current, next) are usable at any moment.
    used_steps: set[int] = field(default_factory=set)

    def fresh_otp(self) -> str:
        assert self.otp_secret is not None, f"{self.username} has no OTP credential"
        while True:
            now = int(time.time() // OTP_PERIOD_S)
            for step in (now, now + 1, now - 1):
                if step not in self.used_steps:
                    self.used_steps.add(step)
                    return totp_code(self.otp_secret, step)
            time.sleep(OTP_PERIOD_S - time.time() % OTP_PERIOD_S + 0.1)


# A token is fetched again when less than this is left of its lifetime.
TOKEN_MARGIN_S = 90
# A login attempt is booked by Keycloak within milliseconds; this only bounds a broken realm.
BOOKING_DEADLINE_S = 30.0


class TestRealm:
    """The running quoteflow realm with test users and password-grant logins."""

    __test__ = False

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.issuer = f"{base_url}/realms/{REALM}"
        self.admin = RealmAdmin(base_url, ADMIN_USERNAME, admin_password(base_url))
        for client_id in TEST_CLIENTS:
            self.admin.update_client(client_id, directAccessGrantsEnabled=True)
        # Brute-force protection stays on, but its quick-login check (two failures within a
        # second lock the user for a minute) would trip tests that fail logins on purpose.
        self.admin.update_realm(quickLoginCheckMilliSeconds=0)
        self._openid = {
            client_id: KeycloakOpenID(
                server_url=base_url,
                realm_name=REALM,
                client_id=client_id,
                client_secret_key=self.admin.client_secret(client_id),
            )
            for client_id in TEST_CLIENTS
        }
        self.users: dict[str, TestUser] = {}
        # The session's user per role and client, apart from the ones tests add to disable or
        # demote: whichever test asks first, the same untouched user answers. Per client too:
        # Keycloak refuses a user's login while the one before is being booked (`wait_booked`),
        # so two clients' first tokens asked for in one breath must not be one user's.
        self._role_users: dict[tuple[str, str], TestUser] = {}
        self._tokens: dict[tuple[str, str], tuple[float, dict]] = {}

    def add_user(self, role: str | None, *, otp: bool) -> TestUser:
        # A random suffix: the realm may outlive the session (QUOTEFLOW_KEYCLOAK_URL).
        user = TestUser(
            username=f"test-{role or 'norole'}-{secrets.token_hex(4)}",
            password=secrets.token_urlsafe(16),
            roles=(role,) if role else (),
            otp_secret=secrets.token_hex(10) if otp else None,
        )
        self.admin.create_user(
            user.username, user.password, user.roles, otp_secret=user.otp_secret
        )
        self.users[user.username] = user
        return user

    def login(self, user: TestUser, client_id: str = "quoteflow-api", *, otp: str = "") -> dict:
        """Password grant; raises a keycloak.KeycloakError (400 invalid_grant) when refused."""
        return self._openid[client_id].token(user.username, user.password, totp=otp or None)

    def wait_booked(self, user: TestUser, failures: int) -> None:
        """Wait until Keycloak has booked the user's last login attempt: `failures` failed
        logins on record (0 after a successful login, which clears them).

        Keycloak 26 books each login attempt, failed or successful, on a thread of its own
        after answering, and refuses the same user's next login as `user_temporarily_disabled`
        until that booking is done (`DefaultBlockingBruteForceProtector`: a login still "in
        progress"). A test whose next login must be judged on its credentials waits here first.
        Only a failure count shows the booking: a success is seen as the count going to 0.
        """
        deadline = time.monotonic() + BOOKING_DEADLINE_S
        while (booked := self.admin.login_failures(user.username)) != failures:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Keycloak booked {booked} failed logins of {user.username}, not {failures}"
                )
            time.sleep(0.02)

    def tokens(self, role: str, client_id: str = "quoteflow-api") -> dict:
        """A token response for the session's user with `role`, made again before it expires.

        A whole suite on a busy machine outlives the realm's 5-minute access tokens.
        """
        obtained_at, response = self._tokens.get((role, client_id), (0.0, {}))
        if time.monotonic() - obtained_at > response.get("expires_in", 0) - TOKEN_MARGIN_S:
            user = self.role_user(role, client_id)
            otp = user.fresh_otp() if user.otp_secret else ""
            response = self.login(user, client_id, otp=otp)
            self._tokens[role, client_id] = (time.monotonic(), response)
        return response

    def access_token(self, role: str, client_id: str = "quoteflow-api") -> str:
        return self.tokens(role, client_id)["access_token"]

    def role_user(self, role: str, client_id: str = "quoteflow-api") -> TestUser:
        """The session's user with `role` whose tokens `tokens(role, client_id)` hands out."""
        if (role, client_id) not in self._role_users:
            self._role_users[role, client_id] = self.add_user(
                role, otp=role in ("trader", "admin")
            )
        return self._role_users[role, client_id]

    def remove_users(self) -> None:
        for username in self.users:
            self.admin.delete_user(username)


@pytest.fixture(scope="session")
def keycloak_realm(keycloak_url: str) -> Iterator[TestRealm]:
    realm = TestRealm(keycloak_url)
    try:
        yield realm
    finally:
        realm.remove_users()
