"""A small builder for Grafana dashboard JSON: panels with their SQL, variables, layout.

Only what quoteflow's dashboards use. Every panel reads the one PostgreSQL/TimescaleDB
datasource provisioned with the fixed uid `DATASOURCE_UID`, so the JSON never depends on the
id a particular Grafana gave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE_UID = "quoteflow-pg"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
# Grafana's dashboard schema version these files are written in (Grafana 10.x/11.x read it
# as is; newer versions migrate it on load).
SCHEMA_VERSION = 39

PanelKind = Literal["lines", "bars", "state", "table"]

_GRAFANA_TYPE = {"lines": "timeseries", "bars": "timeseries", "state": "state-timeline",
                 "table": "table"}
_WIDTH = {"lines": 12, "bars": 12, "state": 24, "table": 24}
_HEIGHT = {"lines": 8, "bars": 8, "state": 6, "table": 9}


@dataclass(frozen=True, slots=True)
class ValueText:
    """A number shown as text in a colour (a Grafana value mapping)."""

    value: int
    text: str
    color: str


@dataclass(frozen=True, slots=True)
class Panel:
    """One panel and one raw SQL query.

    `columns` are the result's columns in order, what the panel's visualisation relies on.
    Time series (every kind but `table`) return `time` first, optionally a text `metric`
    naming the series, then numeric values, sorted by time, as Grafana's time series format
    requires; tables return any columns.
    """

    title: str
    sql: str
    columns: tuple[str, ...]
    kind: PanelKind = "lines"
    unit: str | None = None
    description: str = ""
    value_texts: tuple[ValueText, ...] = ()

    @property
    def format(self) -> str:
        return "table" if self.kind == "table" else "time_series"


@dataclass(frozen=True, slots=True)
class Variable:
    """A multi-value query variable with "All", refreshed when the time range changes."""

    name: str
    label: str
    sql: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]

    @property
    def file_name(self) -> str:
        return f"{self.uid}.json"


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard model Grafana stores, imports and provisions from files."""
    return {
        "id": None,
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["quoteflow"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["quoteflow"], "asDropdown": True,
                   "title": "quoteflow", "includeVars": True, "keepTime": True}],
        "templating": {"list": [_variable_json(v) for v in dashboard.variables]},
        "panels": _laid_out(dashboard.panels),
    }


def _variable_json(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": variable.sql,
        "definition": variable.sql,
        "refresh": 2,  # on time range change: instruments come and go
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
    }


def _laid_out(panels: tuple[Panel, ...]) -> list[dict[str, Any]]:
    """Panels left to right, wrapping at Grafana's 24 columns."""
    out, x, y, row_height = [], 0, 0, 0
    for number, panel in enumerate(panels, start=1):
        width, height = _WIDTH[panel.kind], _HEIGHT[panel.kind]
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        out.append(_panel_json(number, panel, {"h": height, "w": width, "x": x, "y": y}))
        x, row_height = x + width, max(row_height, height)
    return out


def _panel_json(number: int, panel: Panel, grid: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    if panel.unit is not None:
        defaults["unit"] = panel.unit
    if panel.kind in ("lines", "bars"):
        defaults["custom"] = {
            "drawStyle": "line" if panel.kind == "lines" else "bars",
            "fillOpacity": 0 if panel.kind == "lines" else 60,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": True,
        }
    if panel.value_texts:
        defaults["mappings"] = [{
            "type": "value",
            "options": {str(v.value): {"text": v.text, "color": v.color, "index": i}
                        for i, v in enumerate(panel.value_texts)},
        }]
        defaults["color"] = {"mode": "thresholds"}
    options: dict[str, Any] = (
        {"showHeader": True, "cellHeight": "sm"} if panel.kind == "table"
        else {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
              "tooltip": {"mode": "multi", "sort": "none"}}
    )
    return {
        "id": number,
        "type": _GRAFANA_TYPE[panel.kind],
        "title": panel.title,
        "description": panel.description,
        "gridPos": grid,
        "datasource": DATASOURCE,
        "targets": [{
            "refId": "A",
            "datasource": DATASOURCE,
            "editorMode": "code",
            "format": panel.format,
            "rawQuery": True,
            "rawSql": panel.sql,
        }],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }
