"""Token revocation for sensitive actions: ask Keycloak whether a token is still active.

A signed access token stays valid until it expires (the realm issues them for 300 s), so a
user disabled, logged out or demoted keeps acting with the token in hand until then. For the
actions where that matters (kill, limits, exchange keys) the API asks the realm's token
introspection endpoint (RFC 7662) on every call: inactive is 401 at once, a role no longer
held is 403. It needs the API client's secret (a confidential client); an introspection
that cannot be made refuses the action (503), it never lets it through.
"""

from __future__ import annotations

from collections.abc import Iterable

from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakConnectionError, KeycloakError

from connectors.keycloak.errors import AuthError, InsufficientRole
from connectors.keycloak.principal import ROLES, Principal


class TokenRevoked(AuthError):
    """The realm says the token is no longer active: revoked, logged out, user disabled."""


class IntrospectionUnavailable(AuthError):
    """The realm could not be asked; the action is refused, the caller is not at fault."""

    status_code = 503


class TokenIntrospector:
    __slots__ = ("_openid",)

    def __init__(self, issuer_url: str, client_id: str, client_secret: str,
                 *, timeout_s: int = 5) -> None:
        server_url, _, realm = issuer_url.rstrip("/").rpartition("/realms/")
        if not server_url or not realm:
            raise ValueError(f"issuer {issuer_url!r} is not <server>/realms/<realm>")
        self._openid = KeycloakOpenID(server_url=server_url, realm_name=realm,
                                      client_id=client_id, client_secret_key=client_secret,
                                      timeout=timeout_s)

    def require_active(self, token: str, principal: Principal, role: str) -> None:
        """Raise TokenRevoked if the token is no longer active, InsufficientRole if the user
        lost `role` since it was issued, IntrospectionUnavailable if the realm cannot say."""
        try:
            answer = self._openid.introspect(token)
        except KeycloakConnectionError:
            raise IntrospectionUnavailable("Keycloak cannot be reached to check the token") \
                from None
        except KeycloakError as error:
            # 401 here means the API's own client credentials were refused: not the caller.
            raise IntrospectionUnavailable(
                f"Keycloak refused the token check (HTTP {error.response_code})") from None
        if not answer.get("active"):
            raise TokenRevoked("the token is no longer active (revoked, logged out, or the "
                               "user was disabled)")
        if answer.get("sub") not in (None, principal.subject):
            raise TokenRevoked("the token was introspected as another subject")
        roles: Iterable[str] = answer.get("realm_access", {}).get("roles", ())
        if role not in ROLES.intersection(roles):
            raise InsufficientRole(f"{principal.username} no longer holds the {role} role")
