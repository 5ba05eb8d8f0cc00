"""Why a request was not authenticated or not authorized, one type per reason.

Each error carries the HTTP status an API should answer with, so a single exception handler
maps them all: 401 when the token does not prove who the caller is (RFC 6750
`invalid_token`), 403 when it does but the caller lacks the role, 503 when the keys to check
it cannot be had. Messages never contain the token or any part of it.
"""

from __future__ import annotations


class AuthError(Exception):
    status_code = 401


class MissingToken(AuthError):
    """No bearer token in the request."""


class MalformedToken(AuthError):
    """Not a JWT, or one without the claims Keycloak always issues."""


class InvalidSignature(AuthError):
    """Not signed with RS256 by the realm's key: forged or tampered with."""


class UnknownSigningKey(AuthError):
    """Signed with a key id the realm does not publish, even after refetching its keys."""


class TokenExpired(AuthError):
    pass


class TokenNotYetValid(AuthError):
    pass


class WrongIssuer(AuthError):
    pass


class WrongAudience(AuthError):
    """Issued for another client, not for this API."""


class WrongTokenType(AuthError):
    """An ID or refresh token where an access token is required."""


class InsufficientRole(AuthError):
    status_code = 403


class JwksUnavailable(AuthError):
    """The realm's keys could not be fetched: the caller is not at fault."""

    status_code = 503
