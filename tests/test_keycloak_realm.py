"""The realm as code: what the file says, what Keycloak 26 made of it, and OTP for traders."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets

import pytest
import requests
from keycloak import KeycloakError

from connectors.keycloak.admin import REALM_FILE
from tests.keycloak_service import TestRealm, TestUser

GRAFANA_REDIRECT = "http://localhost:3000/login/generic_oauth"


@pytest.fixture(scope="module")
def realm_file() -> dict:
    return json.loads(REALM_FILE.read_text())


def _client(realm: dict, client_id: str) -> dict:
    return next(c for c in realm["clients"] if c["clientId"] == client_id)


# --- the file itself (no server needed) ---


def test_roles_nest_admin_over_trader_over_viewer(realm_file: dict) -> None:
    roles = {role["name"]: role for role in realm_file["roles"]["realm"]}
    assert set(roles) == {"viewer", "trader", "admin"}
    assert roles["trader"]["composites"]["realm"] == ["viewer"]
    assert roles["admin"]["composites"]["realm"] == ["trader"]


def test_file_holds_no_users_and_no_secrets(realm_file: dict) -> None:
    assert "users" not in realm_file
    for client in realm_file["clients"]:
        assert "secret" not in client, "Keycloak generates client secrets on import"
    google = realm_file["identityProviders"][0]
    assert google["config"]["clientSecret"].startswith("${vault."), "a vault reference only"


def test_clients_are_confidential_and_browser_only(realm_file: dict) -> None:
    for client_id in ("grafana", "quoteflow-api"):
        client = _client(realm_file, client_id)
        assert client["publicClient"] is False
        assert client["directAccessGrantsEnabled"] is False
        assert client["implicitFlowEnabled"] is False
    assert GRAFANA_REDIRECT in _client(realm_file, "grafana")["redirectUris"]


# --- what Keycloak imported ---

integration = pytest.mark.integration


@integration
def test_realm_imports_with_the_flows_bound(keycloak_realm: TestRealm) -> None:
    settings = keycloak_realm.admin.realm_settings()
    assert settings["enabled"] is True
    assert settings["browserFlow"] == "quoteflow browser"
    assert settings["directGrantFlow"] == "quoteflow direct grant"
    api = keycloak_realm.admin.api
    assert {"viewer", "trader", "admin"} <= {role["name"] for role in api.get_realm_roles()}
    assert [r["name"] for r in api.get_composite_realm_roles_of_role("admin")] == ["trader"]
    flows = {flow["alias"] for flow in api.get_authentication_flows()}
    assert {"browser", "registration", "reset credentials", "first broker login"} <= flows, (
        "Keycloak adds its built-in flows beside the realm's own"
    )


@integration
def test_google_identity_provider_is_present_but_disabled(keycloak_realm: TestRealm) -> None:
    providers = {idp["alias"]: idp for idp in keycloak_realm.admin.api.get_idps()}
    assert providers["google"]["providerId"] == "google"
    assert providers["google"]["enabled"] is False


@integration
def test_confidential_clients_got_generated_secrets(keycloak_realm: TestRealm) -> None:
    grafana = keycloak_realm.admin.client_secret("grafana")
    api = keycloak_realm.admin.client_secret("quoteflow-api")
    assert len(grafana) >= 32 and len(api) >= 32 and grafana != api


@integration
def test_api_tokens_carry_the_api_audience(keycloak_realm: TestRealm) -> None:
    claims = _claims(keycloak_realm.access_token("viewer"))
    assert "quoteflow-api" in claims["aud"]
    assert claims["azp"] == "quoteflow-api"


# --- OTP: required for traders and admins ---


@integration
def test_viewer_logs_in_with_password_only(keycloak_realm: TestRealm) -> None:
    user = keycloak_realm.add_user("viewer", otp=False)
    assert keycloak_realm.login(user)["access_token"]


@integration
@pytest.mark.parametrize("role", ["trader", "admin"])
def test_trader_and_admin_need_a_valid_otp(keycloak_realm: TestRealm, role: str) -> None:
    # Each attempt waits for Keycloak to book the one before (`wait_booked`): otherwise the
    # next one can be refused as a login still in progress, whatever its code, and a refusal
    # would not show that the code was judged (the cause of a flake in 2 runs of 5).
    user = keycloak_realm.add_user(role, otp=True)
    _assert_refused(keycloak_realm, user, otp="")
    keycloak_realm.wait_booked(user, failures=1)
    wrong = f"{(int(user.fresh_otp()) + 1) % 1_000_000:06d}"
    _assert_refused(keycloak_realm, user, otp=wrong)
    keycloak_realm.wait_booked(user, failures=2)
    tokens = keycloak_realm.login(user, otp=user.fresh_otp())
    assert role in _claims(tokens["access_token"])["realm_access"]["roles"]


@integration
def test_trader_without_an_otp_credential_cannot_use_the_password_grant(
    keycloak_realm: TestRealm,
) -> None:
    user = keycloak_realm.add_user("trader", otp=False)
    # The direct-grant OTP check cannot send the user to set OTP up (browser logins do, see
    # below), so Keycloak 26 ends the flow with a server-side error: still no token.
    for otp in ("", "123456"):
        _assert_refused(keycloak_realm, user, otp=otp, status=500, error=b"unknown_error")


@integration
def test_otp_code_cannot_be_replayed(keycloak_realm: TestRealm) -> None:
    user = keycloak_realm.add_user("trader", otp=True)
    # A failure first, so that the success's booking is visible (it clears the count): the
    # replay must be judged on its code, not refused as a login still in progress.
    _assert_refused(keycloak_realm, user, otp="")
    keycloak_realm.wait_booked(user, failures=1)
    code = user.fresh_otp()
    keycloak_realm.login(user, otp=code)
    keycloak_realm.wait_booked(user, failures=0)
    _assert_refused(keycloak_realm, user, otp=code)


@integration
def test_browser_login_of_a_viewer_goes_straight_back_to_grafana(
    keycloak_realm: TestRealm,
) -> None:
    user = keycloak_realm.add_user("viewer", otp=False)
    _, response = _browser_password_step(keycloak_realm, user)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"{GRAFANA_REDIRECT}?")
    assert "code=" in response.headers["Location"]


@integration
def test_browser_login_of_a_trader_without_otp_must_set_it_up(
    keycloak_realm: TestRealm,
) -> None:
    user = keycloak_realm.add_user("trader", otp=False)
    session, response = _browser_password_step(keycloak_realm, user)
    assert response.status_code == 302
    assert "required-action" in response.headers["Location"], "no code for Grafana yet"
    setup = session.get(response.headers["Location"], allow_redirects=False, timeout=30)
    assert 'name="totpSecret"' in setup.text, "Keycloak's CONFIGURE_TOTP page"


@integration
def test_browser_login_of_a_trader_with_otp_asks_for_the_code(
    keycloak_realm: TestRealm,
) -> None:
    user = keycloak_realm.add_user("admin", otp=True)
    session, response = _browser_password_step(keycloak_realm, user)
    assert response.status_code == 200
    assert 'name="otp"' in response.text
    accepted = session.post(
        _form_action(response.text),
        data={"otp": user.fresh_otp()},
        allow_redirects=False,
        timeout=30,
    )
    assert accepted.status_code == 302
    assert accepted.headers["Location"].startswith(f"{GRAFANA_REDIRECT}?")


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _assert_refused(
    realm: TestRealm,
    user: TestUser,
    *,
    otp: str,
    status: int = 400,
    error: bytes = b"invalid_grant",
) -> None:
    with pytest.raises(KeycloakError) as refused:
        realm.login(user, otp=otp)
    assert refused.value.response_code == status
    assert error in refused.value.response_body


def _form_action(page: str) -> str:
    match = re.search(r'<form[^>]*\saction="([^"]+)"', page)
    assert match, "no form on Keycloak's page"
    return html.unescape(match.group(1))


def _browser_password_step(
    realm: TestRealm, user: TestUser
) -> tuple[requests.Session, requests.Response]:
    """Grafana's authorization-code login up to submitting username and password."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    session = requests.Session()
    login_page = session.get(
        f"{realm.issuer}/protocol/openid-connect/auth",
        params={
            "client_id": "grafana",
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": GRAFANA_REDIRECT,
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        },
        timeout=30,
    )
    assert login_page.status_code == 200
    # Keycloak marks its cookies Secure; browsers send them to 127.0.0.1 over plain HTTP (a
    # loopback origin counts as a secure context), requests does not unless told.
    for cookie in session.cookies:
        cookie.secure = False
    return session, session.post(
        _form_action(login_page.text),
        data={"username": user.username, "password": user.password, "credentialId": ""},
        allow_redirects=False,
        timeout=30,
    )
