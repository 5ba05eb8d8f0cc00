"""The control API application: routers, middleware and the one place errors become HTTP.

Errors map by type, so routes only raise: authentication 401 (with `WWW-Authenticate`) or
403 or 503 (`AuthError.status_code`), judged before the body; invalid input 422 with a
message that says what is wrong and never echoes the input (it may be a secret), or 400 for
a NUL anywhere in the request or a value the database refuses; missing records 404; an
outside system that is down 503 naming which, never with a password, a store path or a key
fingerprint in it. Anything else is a 500 with no detail.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from confluent_kafka import KafkaException
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connectors.audit_store import AuditStoreError
from connectors.kafka import (
    KafkaConfigError,
    KafkaDeliveryError,
    KafkaUnavailable,
    MissingTopicsError,
)
from connectors.keycloak import AuthError
from connectors.secrets import (
    AmbiguousKeyError,
    InvalidIdentifierError,
    InvalidKeyMaterialError,
    RecordNotFoundError,
    SecretStoreError,
    UnknownExchangeError,
)
from connectors.timescale import StorageUnavailable
from connectors.timescale.config import InvalidDsn
from quoteflow.api.audit import AuditTrail
from quoteflow.api.auth import authenticate_first
from quoteflow.api.body_limit import BodySizeLimit
from quoteflow.api.context import ApiContext
from quoteflow.api.input_guard import NulGuard
from quoteflow.api.metrics import ApiMetrics
from quoteflow.api.routes import API_PREFIX, control, data, health, keys
from quoteflow.api.services import ApiServices
from quoteflow.api.tracing import TraceMiddleware
from quoteflow.config import Config

log = logging.getLogger(__name__)

# (error types, status, what the caller is told before the error's own message)
_ERRORS: tuple[tuple[tuple[type[Exception], ...], int, str], ...] = (
    ((InvalidKeyMaterialError, UnknownExchangeError, InvalidIdentifierError), 422, ""),
    ((RecordNotFoundError,), 404, ""),
    ((AmbiguousKeyError,), 409, ""),
    ((StorageUnavailable, InvalidDsn, psycopg.Error), 503, "database unavailable: "),
    # A value the database refuses (out of its range, a bad encoding) is the caller's input.
    ((psycopg.DataError,), 400, "invalid request: the database refuses a value: "),
    ((KafkaUnavailable, KafkaDeliveryError, MissingTopicsError, KafkaConfigError,
      KafkaException), 503, "Kafka unavailable: "),
    ((AuditStoreError,), 503, "audit trail unavailable: "),
)


def create_app(config: Config, services: ApiServices | None = None) -> FastAPI:
    services = services or ApiServices.from_config(config)
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="quoteflow control API",
        version="1",
        description="Steer and watch quoteflow. Bearer tokens from the quoteflow Keycloak "
        "realm: viewer reads, trader acts and manages own exchange keys, admin sets limits.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.state.audit = AuditTrail(services, metrics)
    app.state.context = ApiContext(services, metrics, app.state.audit)
    for router in (health.router, control.router, data.router, keys.router):
        app.include_router(router)
    app.add_api_route("/metrics", metrics.exposition, include_in_schema=False)
    _add_error_handlers(app)
    # Added innermost first: metrics see every answer, the 413s and CORS preflights too.
    app.add_middleware(NulGuard)
    app.add_middleware(BodySizeLimit, max_bytes=config.api.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=config.api.cors_origins,
        # Bearer tokens in a header, never cookies: there are no credentials to share.
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.middleware("http")(metrics.middleware)
    app.add_middleware(TraceMiddleware)  # outermost: everything inside logs under the trace
    return app


def _add_error_handlers(app: FastAPI) -> None:
    async def auth_failed(_request: Request, error: AuthError) -> JSONResponse:
        headers = {}
        if error.status_code == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return JSONResponse({"detail": str(error)}, error.status_code, headers)

    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        try:
            await run_in_threadpool(authenticate_first, request)  # may fetch the realm's keys
        except AuthError as refused:
            return await auth_failed(request, refused)
        # Pydantic's errors carry the offending input; it may be key material, so it goes.
        errors = [
            {"loc": [str(part) for part in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors()
        ]
        message = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": f"invalid request: {message}", "errors": errors}, 422)

    async def secret_store_failed(_request: Request, error: SecretStoreError) -> JSONResponse:
        # The store's messages name its file, the master key's fingerprint or Vault's
        # address: for the operator's log, not for callers.
        log.warning("secret store unavailable: %s", " ".join(str(error).split()))
        return JSONResponse(
            {"detail": f"secret store unavailable ({type(error).__name__}); the API log has "
                       "the details"}, 503)

    app.add_exception_handler(AuthError, auth_failed)
    app.add_exception_handler(SecretStoreError, secret_store_failed)
    app.add_exception_handler(RequestValidationError, invalid_request)
    for types, status, preface in _ERRORS:
        for error_type in types:
            app.add_exception_handler(error_type, _answer(status, preface))


def _answer(status: int, preface: str):
    async def handler(_request: Request, error: Exception) -> JSONResponse:
        reason = " ".join(str(error).split()) or type(error).__name__
        return JSONResponse({"detail": f"{preface}{reason}"}, status)

    return handler
