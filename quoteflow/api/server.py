"""Serving the API with uvicorn, for `quoteflow api --config FILE`."""

from __future__ import annotations

import uvicorn

from quoteflow.api.app import create_app
from quoteflow.config import Config


def serve(config: Config) -> None:
    # One process: the audit file takes one writer, and the API's load is an operator's.
    uvicorn.run(create_app(config), host=config.api.host, port=config.api.port,
                proxy_headers=False, server_header=False)
