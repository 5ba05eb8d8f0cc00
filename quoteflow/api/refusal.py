"""The answer of the ASGI middlewares that refuse a request before any route sees it."""

from __future__ import annotations

import json

from starlette.types import Send


async def refuse(send: Send, status: int, detail: str) -> None:
    """A JSON `{"detail": ...}` error, the shape FastAPI gives the routes' own errors."""
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
