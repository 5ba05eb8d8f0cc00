"""Keycloak: the realm as code, access-token validation for the API, realm administration.

The API validates bearer tokens with `TokenValidator(issuer_url).validate(token)` and
authorizes with `Principal.require(role)`; every failure is an `AuthError` carrying its HTTP
status. See docs/auth.md.
"""

from connectors.keycloak.errors import (
    AuthError,
    InsufficientRole,
    InvalidSignature,
    JwksUnavailable,
    MalformedToken,
    MissingToken,
    TokenExpired,
    TokenNotYetValid,
    UnknownSigningKey,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from connectors.keycloak.jwks import JwksCache
from connectors.keycloak.principal import ROLES, Principal
from connectors.keycloak.tokens import API_AUDIENCE, TokenValidator, bearer_token, certs_url

__all__ = [
    "API_AUDIENCE",
    "ROLES",
    "AuthError",
    "InsufficientRole",
    "InvalidSignature",
    "JwksCache",
    "JwksUnavailable",
    "MalformedToken",
    "MissingToken",
    "Principal",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenValidator",
    "UnknownSigningKey",
    "WrongAudience",
    "WrongIssuer",
    "WrongTokenType",
    "bearer_token",
    "certs_url",
]
