"""Grafana: the dashboards as code and their provisioning through the HTTP API.

See docs/grafana.md for pointing a Grafana at the stack (provisioning files or
`quoteflow grafana provision`) and the Keycloak login.
"""

from connectors.grafana.dashboards import DASHBOARDS, DASHBOARDS_DIR, render, write_dashboards
from connectors.grafana.model import DATASOURCE_UID, Dashboard, Panel, Variable, dashboard_json
from connectors.grafana.provision import (
    DATASOURCE_FILE,
    GrafanaAuthError,
    GrafanaError,
    GrafanaTarget,
    GrafanaUnreachable,
    ProvisionReport,
    datasource_from_dsn,
    load_datasource,
    provision,
)

__all__ = [
    "DASHBOARDS",
    "DASHBOARDS_DIR",
    "DATASOURCE_FILE",
    "DATASOURCE_UID",
    "Dashboard",
    "GrafanaAuthError",
    "GrafanaError",
    "GrafanaTarget",
    "GrafanaUnreachable",
    "Panel",
    "ProvisionReport",
    "Variable",
    "dashboard_json",
    "datasource_from_dsn",
    "load_datasource",
    "provision",
    "render",
    "write_dashboards",
]
