"""Liveness (no dependency checked) and readiness (every outside system reachable)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from connectors.kafka import connect_admin, require_topics, topic_name
from connectors.keycloak import certs_url
from connectors.keycloak.jwks import fetch_json
from quoteflow.api.context import ApiContext, context
from quoteflow.api.routes import API_PREFIX
from quoteflow.api.schemas import Check, Health, Readiness

router = APIRouter(prefix=API_PREFIX, tags=["health"])
_PROBE_TIMEOUT_S = 3.0


@router.get("/health", response_model=Health)
def health() -> Health:
    return Health()


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(ctx: Annotated[ApiContext, Depends(context)]) -> JSONResponse:
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

    checks = {name: _probe(probe) for name, probe in
              (("database", database), ("kafka", kafka), ("keycloak", keycloak))}
    result = Readiness(ready=all(c.ok for c in checks.values()), checks=checks)
    return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)


def _probe(probe: Callable[[], str]) -> Check:
    try:
        return Check(ok=True, detail=probe())
    except Exception as error:  # a readiness probe reports any failure, it never raises
        reason = " ".join(str(error).split()) or type(error).__name__
        return Check(ok=False, detail=reason[:300])
