"""The API's routers, one per area, each under API_PREFIX (the version is in the path)."""

API_PREFIX = "/api/v1"
