"""Bearer-token authentication and role checks as FastAPI dependencies.

`caller(role)` validates the request's Keycloak access token (signature, issuer, audience,
expiry, token type: `connectors.keycloak.TokenValidator`) and requires the role; a mutating
call also asks Keycloak's introspection endpoint that the token is still active and the
role still held. A refused mutating call is itself audited, with whoever the token proved
the caller to be.

FastAPI parses a JSON body before it runs dependencies, so a request with an unreadable
body and no token would learn about its body (422) before its token (401).
`authenticate_first` gives the error handler the route's own check, so the token is always
judged first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from connectors.keycloak import InsufficientRole, Principal, bearer_token

# auto_error off: a missing token reaches the validator, so every failure goes through the
# one AuthError handler (401 with WWW-Authenticate). Declared for OpenAPI's "Authorize".
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT",
                           description="A Keycloak access token for quoteflow-api")

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def caller(role: str) -> Callable[[Request], Principal]:
    def authenticated(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ) -> Principal:
        state = request.app.state
        token = credentials.credentials if credentials is not None else None
        principal = state.services.validator.validate(token)
        try:
            principal.require(role)
            if request.method not in _SAFE_METHODS:
                # A token outlives a disabled or demoted user by up to its lifetime: every
                # action asks the realm whether it still stands (docs/auth.md).
                state.services.check_revocation(token, principal, role)
        except InsufficientRole:
            if request.method not in _SAFE_METHODS:
                state.audit.record(principal, "denied", {
                    "method": request.method, "path": request.url.path, "required_role": role,
                })
            raise
        return principal

    authenticated.__name__ = f"{role}_caller"
    authenticated.required_role = role  # type: ignore[attr-defined]
    return authenticated


def authenticate_first(request: Request) -> None:
    """Run the route's token and role check (raising its AuthError), if it has one."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    for dependency in getattr(dependant, "dependencies", ()):
        role = getattr(dependency.call, "required_role", None)
        if role is not None:
            credentials = request.headers.get("authorization")
            token = bearer_token(credentials) if credentials else None
            request.app.state.services.validator.validate(token).require(role)
            return
