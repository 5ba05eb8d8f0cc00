"""Validation of Keycloak-issued access tokens for the control API.

`TokenValidator(issuer_url, audience).validate(token)` returns the caller's `Principal` or
raises the `AuthError` subclass that says why not (see `errors`). The checks: RS256
signature by a key the realm publishes, issuer, audience, expiry and not-before (with a small
leeway for clock skew), and that it is an access token rather than an ID token.
"""

from __future__ import annotations

import jwt

from connectors.keycloak.errors import (
    InvalidSignature,
    MalformedToken,
    MissingToken,
    TokenExpired,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from connectors.keycloak.jwks import SIGNING_ALGORITHM, JwksCache
from connectors.keycloak.principal import Principal

API_AUDIENCE = "quoteflow-api"
# Keycloak marks access tokens with typ "Bearer"; ID tokens ("ID") for the same client carry
# the same audience and must not open the API.
_ACCESS_TOKEN_TYPE = "Bearer"
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "typ"]


def certs_url(issuer_url: str) -> str:
    return f"{issuer_url.rstrip('/')}/protocol/openid-connect/certs"


def bearer_token(authorization: str | None) -> str:
    """The token in an `Authorization: Bearer …` header value."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingToken("expected an Authorization: Bearer header")
    return token.strip()


class TokenValidator:
    __slots__ = ("_decoder", "audience", "issuer", "jwks", "leeway_s")

    def __init__(
        self,
        issuer_url: str,
        audience: str = API_AUDIENCE,
        *,
        leeway_s: float = 10.0,
        jwks: JwksCache | None = None,
    ) -> None:
        self.issuer = issuer_url.rstrip("/")
        self.audience = audience
        self.leeway_s = leeway_s
        self.jwks = jwks or JwksCache(certs_url(self.issuer))
        self._decoder = jwt.PyJWT(options={"require": _REQUIRED_CLAIMS})

    def validate(self, token: str | None) -> Principal:
        if not token:
            raise MissingToken("no bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise MalformedToken("not a JWT") from None
        if header.get("alg") != SIGNING_ALGORITHM:
            raise InvalidSignature(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise MalformedToken("token header has no key id")
        key = self.jwks.key(kid)
        try:
            claims = self._decoder.decode(
                token,
                key,
                algorithms=[SIGNING_ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
            )
        except jwt.InvalidSignatureError:
            raise InvalidSignature("signature does not match the realm's key") from None
        except jwt.ExpiredSignatureError:
            raise TokenExpired("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenNotYetValid("token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise WrongAudience(f"token is not meant for {self.audience}") from None
        except jwt.InvalidIssuerError:
            raise WrongIssuer(f"token was not issued by {self.issuer}") from None
        except jwt.MissingRequiredClaimError as error:
            raise MalformedToken(f"token lacks the {error.claim!r} claim") from None
        except jwt.PyJWTError as error:
            raise MalformedToken(f"invalid token: {type(error).__name__}") from None
        if claims["typ"] != _ACCESS_TOKEN_TYPE:
            raise WrongTokenType(f"a {claims['typ']!r} token is not an access token")
        return Principal.from_claims(claims)
