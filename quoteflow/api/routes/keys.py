"""A trader's own exchange API keys: add, list (masked), test, delete.

The owner of every record is the token's subject (Keycloak's stable user id; a username can
be renamed, a subject cannot). Nothing here can name another owner: a key id of another
user's record is answered exactly like a missing one, 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from connectors.keycloak import Principal
from connectors.secrets import ExchangeCredentials, KeyRecordInfo
from quoteflow.api.auth import caller
from quoteflow.api.context import ApiContext, context
from quoteflow.api.key_check import check_key
from quoteflow.api.routes import API_PREFIX
from quoteflow.api.schemas import KeyCreate, KeyOut, KeyTestOut

router = APIRouter(prefix=f"{API_PREFIX}/keys", tags=["exchange keys"])
Context = Annotated[ApiContext, Depends(context)]
Trader = Annotated[Principal, Depends(caller("trader"))]


@router.post("", response_model=KeyOut, status_code=201)
def add_key(body: KeyCreate, ctx: Context, who: Trader) -> KeyOut:
    credentials = ExchangeCredentials(
        body.api_key.get_secret_value(),
        body.secret.get_secret_value(),
        password=body.password.get_secret_value() if body.password else None,
        uid=body.uid.get_secret_value() if body.uid else None,
    )
    info = ctx.services.secrets.get().put(who.subject, body.exchange, credentials)
    ctx.audit.record(who, "exchange_key_added", _described(info))
    return _out(info)


@router.get("", response_model=list[KeyOut])
def list_keys(ctx: Context, who: Trader) -> list[KeyOut]:
    return [_out(info) for info in ctx.services.secrets.get().list(who.subject)]


@router.post("/{exchange}/{key_id}/test", response_model=KeyTestOut)
async def test_key(exchange: str, key_id: str, ctx: Context, who: Trader) -> KeyTestOut:
    services = ctx.services
    # The store and the audit trail block (file locks, Kafka delivery): off the event loop.
    store = await run_in_threadpool(services.secrets.get)
    credentials = await run_in_threadpool(store.get, who.subject, exchange, key_id)
    outcome, detail = await check_key(
        exchange, credentials,
        sandbox=services.config.api.exchange_sandbox,
        timeout_s=services.config.api.key_test_timeout_s,
        overrides=services.exchange_overrides.get(exchange),
    )
    await run_in_threadpool(ctx.audit.record, who, "exchange_key_tested",
                            {"exchange": exchange, "key_id": key_id, "outcome": outcome})
    return KeyTestOut(exchange=exchange, key_id=key_id, ok=outcome == "ok", outcome=outcome,
                      detail=detail)


@router.delete("/{exchange}/{key_id}", status_code=204)
def delete_key(exchange: str, key_id: str, ctx: Context, who: Trader) -> Response:
    ctx.services.secrets.get().delete(who.subject, exchange, key_id)
    ctx.audit.record(who, "exchange_key_deleted", {"exchange": exchange, "key_id": key_id})
    return Response(status_code=204)


def _described(info: KeyRecordInfo) -> dict:
    return {"exchange": info.exchange, "key_id": info.key_id,
            "api_key_masked": info.api_key_masked}


def _out(info: KeyRecordInfo) -> KeyOut:
    return KeyOut(exchange=info.exchange, key_id=info.key_id,
                  api_key_masked=info.api_key_masked, has_password=info.has_password,
                  has_uid=info.has_uid, created_at=info.created_at)
