"""Serving the API with uvicorn, for `quoteflow api --config FILE`."""

from __future__ import annotations

import uvicorn

from quoteflow import logs
from quoteflow.api.app import create_app
from quoteflow.config import Config


def serve(config: Config) -> None:
    # One process: the audit file takes one writer, and the API's load is an operator's.
    # With --log-format or [logging], uvicorn's records go through the root handler too
    # (its own config would print them as text) and requests are logged by TraceMiddleware.
    ours = logs.active_format() is not None
    uvicorn.run(create_app(config), host=config.api.host, port=config.api.port,
                proxy_headers=False, server_header=False,
                log_config=None if ours else uvicorn.config.LOGGING_CONFIG, access_log=not ours)
