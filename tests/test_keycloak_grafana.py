"""Grafana's Keycloak login configuration, checked against the realm and real tokens.

No Grafana server can be installed here, so the role mapping is evaluated the way Grafana
does it: its JMESPath `role_attribute_path` applied to the claims of real tokens issued to
the realm's `grafana` client (ID token and userinfo, where Grafana looks).
"""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import jmespath
import pytest
from keycloak import KeycloakOpenID

from connectors.keycloak.admin import REALM_FILE
from tests.keycloak_service import TestRealm

GRAFANA_INI = Path(__file__).resolve().parents[1] / "grafana" / "keycloak-oauth.ini"


@pytest.fixture(scope="module")
def grafana_ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)  # URLs hold '%' escapes
    parser.read(GRAFANA_INI)
    return parser


@pytest.fixture(scope="module")
def oauth(grafana_ini: configparser.ConfigParser) -> configparser.SectionProxy:
    return grafana_ini["auth.generic_oauth"]


def _grafana_role(oauth: configparser.SectionProxy, claims: dict) -> str | None:
    return jmespath.search(oauth["role_attribute_path"], claims) or None


def test_config_points_at_the_realm_and_its_grafana_client(grafana_ini, oauth) -> None:
    realm = json.loads(REALM_FILE.read_text())
    grafana = next(c for c in realm["clients"] if c["clientId"] == "grafana")
    assert oauth["client_id"] == "grafana"
    assert "client_secret" not in oauth, "the secret comes from the environment"
    for key in ("auth_url", "token_url", "api_url"):
        assert f"/realms/{realm['realm']}/protocol/openid-connect/" in oauth[key]
    redirect = grafana_ini["server"]["root_url"].rstrip("/") + "/login/generic_oauth"
    assert redirect in grafana["redirectUris"]
    assert oauth.getboolean("use_pkce") and grafana["attributes"]["pkce.code.challenge.method"]
    assert oauth.getboolean("role_attribute_strict")


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["viewer"], "Viewer"),
        (["viewer", "trader"], "Editor"),
        (["viewer", "trader", "admin"], "Admin"),
        (["offline_access"], None),
        ([], None),
    ],
)
def test_role_mapping_expression(oauth, roles: list[str], expected: str | None) -> None:
    assert _grafana_role(oauth, {"roles": roles}) == expected


@pytest.mark.integration
@pytest.mark.parametrize(
    ("role", "expected"), [("viewer", "Viewer"), ("trader", "Editor"), ("admin", "Admin")]
)
def test_real_grafana_tokens_map_to_grafana_roles(
    keycloak_realm: TestRealm, oauth, role: str, expected: str
) -> None:
    tokens = keycloak_realm.tokens(role, "grafana")
    client = KeycloakOpenID(
        server_url=keycloak_realm.base_url, realm_name="quoteflow", client_id="grafana"
    )
    id_claims = client.decode_token(tokens["id_token"], validate=False)
    assert _grafana_role(oauth, id_claims) == expected
    assert _grafana_role(oauth, client.userinfo(tokens["access_token"])) == expected


@pytest.mark.integration
def test_user_without_a_role_gets_no_grafana_role(keycloak_realm: TestRealm, oauth) -> None:
    user = keycloak_realm.add_user(None, otp=False)
    tokens = keycloak_realm.login(user, "grafana")
    claims = KeycloakOpenID(
        server_url=keycloak_realm.base_url, realm_name="quoteflow", client_id="grafana"
    ).decode_token(tokens["id_token"], validate=False)
    assert _grafana_role(oauth, claims) is None
