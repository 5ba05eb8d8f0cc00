"""Liveness (no dependency checked) and readiness (every outside system reachable).

Readiness is up or down for anyone (load balancers probe it without a token); which system
is down, and why, goes only to an admin: the reasons name hosts, topics and realms, and
once carried a database password verbatim from the driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from connectors.kafka import connect_admin, require_topics, topic_name
from connectors.keycloak import AuthError, bearer_token, certs_url
from connectors.keycloak.jwks import fetch_json
from connectors.timescale.config import dsn_secrets
from quoteflow.api.context import ApiContext, context
from quoteflow.api.routes import API_PREFIX
from quoteflow.api.schemas import Check, Health, Readiness

router = APIRouter(prefix=API_PREFIX, tags=["health"])
_PROBE_TIMEOUT_S = 3.0


@router.get("/health", response_model=Health)
def health() -> Health:
    return Health()


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(request: Request, ctx: Annotated[ApiContext, Depends(context)]) -> JSONResponse:
    services = ctx.services

    def database() -> str:
        with services.database.connection() as conn:
            conn.execute("SELECT 1")
        return "connected"

    def kafka() -> str:
        config = dataclasses.replace(services.config.kafka, connect_timeout_s=_PROBE_TIMEOUT_S)
        names = [topic_name(config.prefix, name) for name in ("control", "audit")]
        require_topics(connect_admin(config), names, _PROBE_TIMEOUT_S)
        return f"topics {', '.join(names)} present"

    def keycloak() -> str:
        keys = fetch_json(certs_url(services.validator.issuer), _PROBE_TIMEOUT_S).get("keys", [])
        return f"{len(keys)} signing keys published"

    secrets = dsn_secrets(services.config.postgres.dsn)
    checks = {name: _probe(probe, secrets) for name, probe in
              (("database", database), ("kafka", kafka), ("keycloak", keycloak))}
    up = all(c.ok for c in checks.values())
    result = Readiness(ready=up, checks=checks if _is_admin(request, ctx) else None)
    return JSONResponse(result.model_dump(exclude_none=True), status_code=200 if up else 503)


def _is_admin(request: Request, ctx: ApiContext) -> bool:
    header = request.headers.get("authorization")
    if not header:
        return False
    try:
        return ctx.services.validator.validate(bearer_token(header)).has_role("admin")
    except AuthError:
        return False  # an invalid token reads what anyone reads


def _probe(probe: Callable[[], str], secrets: Iterable[str]) -> Check:
    try:
        return Check(ok=True, detail=probe())
    except Exception as error:  # a readiness probe reports any failure, it never raises
        reason = " ".join(str(error).split()) or type(error).__name__
        for secret in secrets:  # connect() redacts; this holds for any other error too
            reason = reason.replace(secret, "***")
        return Check(ok=False, detail=reason[:300])
