"""NUL characters are refused in every part of a request, before any route sees it.

PostgreSQL refuses NUL in text, so a NUL that reached a query surfaced as a database error
(503, "database unavailable") for what was the caller's bad input; a NUL in a command's
target was acted on by the executor but never stored. One check at the edge answers 400.

Sits inside `BodySizeLimit`, so the body it reads is already bounded and whole.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quoteflow.api.refusal import refuse


class NulGuard:
    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"\x00" in query or b"%00" in query:
            await _refuse(send, "the path or query")
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if _holds_nul(body):
            await _refuse(send, "the body")
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _holds_nul(body: bytes) -> bool:
    if b"\x00" in body:
        return True
    if b"\\u0000" not in body:  # the only way JSON writes a NUL: the common case ends here
        return False
    try:
        return _nul_in(json.loads(body))
    except ValueError:
        return False  # not JSON: the route's own validation answers


def _nul_in(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_nul_in(k) or _nul_in(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_nul_in(item) for item in value)
    return False


async def _refuse(send: Send, where: str) -> None:
    await refuse(send, 400, f"invalid request: {where} holds a NUL character")
