"""The control API: FastAPI behind Keycloak access tokens. See docs/api.md.

`create_app(config)` builds the application from a `quoteflow.config.Config`;
`create_app(config, ApiServices.from_config(config, exchange_overrides=...))` lets a test
point the exchange-key check at a local stand-in. `serve(config)` runs it under uvicorn.
"""

from quoteflow.api.app import create_app
from quoteflow.api.routes import API_PREFIX
from quoteflow.api.server import serve
from quoteflow.api.services import ApiServices

__all__ = ["API_PREFIX", "ApiServices", "create_app", "serve"]
