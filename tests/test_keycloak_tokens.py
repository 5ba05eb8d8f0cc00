"""Access-token validation against real tokens from a real Keycloak running the project's realm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.keycloak import (
    InsufficientRole,
    InvalidSignature,
    JwksCache,
    JwksUnavailable,
    MalformedToken,
    MissingToken,
    Principal,
    TokenExpired,
    TokenValidator,
    UnknownSigningKey,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
    bearer_token,
    certs_url,
)
from connectors.keycloak.jwks import fetch_json
from tests.keycloak_service import TestRealm

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def validator(keycloak_realm: TestRealm) -> TokenValidator:
    return TokenValidator(keycloak_realm.issuer)


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class CountingFetch:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, url: str) -> dict:
        self.calls += 1
        return fetch_json(url)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("viewer", {"viewer"}),
        ("trader", {"viewer", "trader"}),
        ("admin", {"viewer", "trader", "admin"}),
    ],
)
def test_real_tokens_give_the_role_hierarchy(
    keycloak_realm: TestRealm, validator: TokenValidator, role: str, expected: set[str]
) -> None:
    principal = validator.validate(keycloak_realm.access_token(role))
    user = keycloak_realm.role_user(role)
    assert principal == Principal(user.username, principal.subject, frozenset(expected))
    assert principal.subject == _claims(keycloak_realm.access_token(role))["sub"]


def test_viewer_reads_but_cannot_trade(keycloak_realm: TestRealm, validator: TokenValidator):
    viewer = validator.validate(keycloak_realm.access_token("viewer"))
    viewer.require("viewer")
    with pytest.raises(InsufficientRole) as refused:
        viewer.require("trader")
    assert refused.value.status_code == 403
    validator.validate(keycloak_realm.access_token("trader")).require("trader")
    validator.validate(keycloak_realm.access_token("admin")).require("admin")


def test_unknown_role_name_is_a_programming_error(
    keycloak_realm: TestRealm, validator: TokenValidator
) -> None:
    with pytest.raises(ValueError, match="unknown role 'traders'"):
        validator.validate(keycloak_realm.access_token("admin")).require("traders")


def test_user_without_roles_is_authenticated_with_no_roles(
    keycloak_realm: TestRealm, validator: TokenValidator
) -> None:
    user = keycloak_realm.add_user(None, otp=False)
    principal = validator.validate(keycloak_realm.login(user)["access_token"])
    assert principal.username == user.username
    assert principal.roles == frozenset()


def test_missing_token(validator: TokenValidator) -> None:
    for token in (None, ""):
        with pytest.raises(MissingToken) as refused:
            validator.validate(token)
        assert refused.value.status_code == 401


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwdw==", "tok"])
def test_bearer_header_without_a_token(header: str | None) -> None:
    with pytest.raises(MissingToken):
        bearer_token(header)


def test_bearer_header_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("  Bearer abc.def.ghi ") == "abc.def.ghi"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 2000, "e30.e30.e30"])
def test_malformed_tokens(validator: TokenValidator, token: str) -> None:
    with pytest.raises((MalformedToken, InvalidSignature)) as refused:
        validator.validate(token)
    assert refused.value.status_code == 401


def test_tampered_payload_is_rejected(keycloak_realm: TestRealm, validator: TokenValidator):
    header, _, signature = _segments(keycloak_realm.access_token("viewer"))
    claims = _claims(keycloak_realm.access_token("viewer"))
    claims["realm_access"]["roles"].append("admin")
    with pytest.raises(InvalidSignature):
        validator.validate(f"{header}.{_b64(claims)}.{signature}")


def test_token_resigned_with_another_key_is_rejected(
    keycloak_realm: TestRealm, validator: TokenValidator
) -> None:
    real = keycloak_realm.access_token("viewer")
    forged = jwt.encode(
        _claims(real), _other_key(), algorithm="RS256", headers=jwt.get_unverified_header(real)
    )
    with pytest.raises(InvalidSignature):
        validator.validate(forged)


def test_unsigned_and_symmetric_tokens_are_rejected(
    keycloak_realm: TestRealm, validator: TokenValidator
) -> None:
    real = keycloak_realm.access_token("viewer")
    _, payload, _ = _segments(real)
    kid = jwt.get_unverified_header(real)["kid"]
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload}."
    # The classic confusion attack: HS256 keyed with the realm's (public) RSA key.
    public_pem = validator.jwks.key(kid).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{payload}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    symmetric = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    for token in (unsigned, symmetric):
        with pytest.raises(InvalidSignature, match="not accepted"):
            validator.validate(token)


def test_unknown_key_id_refetches_the_keys_once(
    keycloak_realm: TestRealm, validator: TokenValidator
) -> None:
    fetch, clock = CountingFetch(), ManualClock()
    cache = JwksCache(certs_url(keycloak_realm.issuer), fetch=fetch, clock=clock)
    validating = TokenValidator(keycloak_realm.issuer, jwks=cache)
    validating.validate(keycloak_realm.access_token("viewer"))
    assert fetch.calls == 1
    real = keycloak_realm.access_token("viewer")
    stranger = jwt.encode(
        _claims(real), _other_key(), algorithm="RS256", headers={"kid": "rotated"}
    )

    clock.now += cache.min_refetch_interval_s
    with pytest.raises(UnknownSigningKey):
        validating.validate(stranger)
    assert fetch.calls == 2, "an unknown key id triggers a refetch (Keycloak may have rotated)"
    with pytest.raises(UnknownSigningKey):
        validating.validate(stranger)
    assert fetch.calls == 2, "but made-up key ids cannot make every request hit Keycloak"

    validating.validate(real)
    assert fetch.calls == 2, "known keys are served from the cache"
    clock.now += cache.ttl_s
    validating.validate(real)
    assert fetch.calls == 3, "and refreshed after the TTL"


def test_cached_keys_survive_a_keycloak_outage(
    keycloak_realm: TestRealm, validator: TokenValidator
) -> None:
    clock = ManualClock()
    failing = {"on": False}

    def fetch(url: str) -> dict:
        if failing["on"]:
            raise ConnectionRefusedError("keycloak is down")
        return fetch_json(url)

    cache = JwksCache(certs_url(keycloak_realm.issuer), fetch=fetch, clock=clock)
    validating = TokenValidator(keycloak_realm.issuer, jwks=cache)
    real = keycloak_realm.access_token("trader")
    validating.validate(real)
    failing["on"] = True
    clock.now += cache.ttl_s
    assert validating.validate(real).has_role("trader")


def test_unreachable_keycloak_is_a_503(keycloak_realm: TestRealm) -> None:
    closed_port_issuer = "http://127.0.0.1:9/realms/quoteflow"
    validating = TokenValidator(closed_port_issuer)
    with pytest.raises(JwksUnavailable) as refused:
        validating.validate(keycloak_realm.access_token("viewer"))
    assert refused.value.status_code == 503


def test_token_for_another_client_is_rejected(
    keycloak_realm: TestRealm, validator: TokenValidator
) -> None:
    grafana = keycloak_realm.tokens("viewer", "grafana")
    assert "quoteflow-api" not in _claims(grafana["access_token"]).get("aud", [])
    for token in (grafana["access_token"], grafana["id_token"]):
        with pytest.raises(WrongAudience) as refused:
            validator.validate(token)
        assert refused.value.status_code == 401


def test_id_token_is_not_an_access_token(
    keycloak_realm: TestRealm, validator: TokenValidator
) -> None:
    id_token = keycloak_realm.tokens("viewer")["id_token"]
    assert _claims(id_token)["aud"] == "quoteflow-api"
    with pytest.raises(WrongTokenType):
        validator.validate(id_token)


def test_token_from_another_issuer_is_rejected(keycloak_realm: TestRealm) -> None:
    # Same server and keys, reached under another host name: the issuer no longer matches.
    other_issuer = keycloak_realm.issuer.replace("127.0.0.1", "localhost")
    with pytest.raises(WrongIssuer):
        TokenValidator(other_issuer).validate(keycloak_realm.access_token("viewer"))


def test_expired_token_is_rejected_beyond_the_leeway(keycloak_realm: TestRealm) -> None:
    lifespan = keycloak_realm.admin.realm_settings()["accessTokenLifespan"]
    keycloak_realm.admin.update_realm(accessTokenLifespan=1)
    try:
        user = keycloak_realm.add_user("viewer", otp=False)
        token = keycloak_realm.login(user)["access_token"]
    finally:
        keycloak_realm.admin.update_realm(accessTokenLifespan=lifespan)
    claims = _claims(token)
    assert claims["exp"] - claims["iat"] == 1
    time.sleep(max(0.0, claims["exp"] + 1.5 - time.time()))
    with pytest.raises(TokenExpired) as refused:
        TokenValidator(keycloak_realm.issuer, leeway_s=0).validate(token)
    assert refused.value.status_code == 401
    assert TokenValidator(keycloak_realm.issuer, leeway_s=600).validate(token).username == (
        user.username
    )


def test_errors_never_echo_the_token(keycloak_realm: TestRealm, validator: TokenValidator):
    real = keycloak_realm.access_token("viewer")
    header, payload, signature = _segments(real)
    attempts = [f"{header}.{payload}.{signature[::-1]}", f"{header}.{payload}", real[:-5]]
    for token in attempts:
        with pytest.raises(Exception) as refused:
            validator.validate(token)
        message = str(refused.value)
        assert payload not in message and signature[:20] not in message
