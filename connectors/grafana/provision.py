"""Push the datasource and the dashboards to a running Grafana through its HTTP API.

The alternative to file provisioning (grafana/provisioning/) for a Grafana whose files we do
not control. One definition of the datasource: the provisioning file, with the environment
variables Grafana would fill in taken from a PostgreSQL DSN instead. Idempotent: the
datasource is created or updated by its uid, dashboards are written with `overwrite`.
Errors come out as `GrafanaError`s whose message says what failed and never holds a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import niquests
import psycopg
import yaml
from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from connectors.timescale.config import redact

DATASOURCE_FILE = (
    Path(__file__).resolve().parents[2] / "grafana" / "provisioning" / "datasources"
    / "quoteflow.yaml"
)
FOLDER_UID = "quoteflow"
FOLDER_TITLE = "quoteflow"
# Provisioning-file fields the HTTP API does not take.
_FILE_ONLY_FIELDS = ("editable", "orgId", "version")
_ENV_REFERENCE = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")


class GrafanaError(RuntimeError):
    """Provisioning failed; the message says which step and why."""


class GrafanaUnreachable(GrafanaError):
    """No answer from Grafana at that URL (refused, unknown host, timeout)."""


class GrafanaAuthError(GrafanaError):
    """Grafana answered 401 or 403: wrong credentials, or an account without the right."""


@dataclass(frozen=True, slots=True)
class GrafanaTarget:
    """Where Grafana is and how to log in: a service account token, or a user and password
    (an Admin of the organisation, or an Editor allowed to add datasources)."""

    url: str
    token: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if (self.token is None) == (self.user is None):
            raise ValueError("give either a token or a user and password")
        if self.user is not None and self.password is None:
            raise ValueError("a user needs a password")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {_redacted(self.url)!r}")


@dataclass(slots=True)
class ProvisionReport:
    datasource: str = ""  # "created" or "updated"
    folder: str = ""  # "created" or "existing"
    dashboards: list[str] = field(default_factory=list)  # uids written


def datasource_from_dsn(dsn: str, template: Path = DATASOURCE_FILE) -> dict[str, Any]:
    """The provisioning file's datasource as the HTTP API takes it, for the database of `dsn`.

    `dsn` is how Grafana reaches PostgreSQL, which may differ from how this machine does.
    """
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except (psycopg.ProgrammingError, ValueError) as error:
        raise ValueError(f"invalid PostgreSQL DSN: {redact(str(error), dsn)}") from None
    if not params.get("host") or params["host"].startswith("/"):
        raise ValueError("the DSN needs a host Grafana can reach (not a Unix socket)")
    environment = {
        "QUOTEFLOW_GRAFANA_PG_URL": f"{params['host']}:{params.get('port') or 5432}",
        "QUOTEFLOW_GRAFANA_PG_DATABASE": params.get("dbname") or params.get("user") or "",
        "QUOTEFLOW_GRAFANA_PG_USER": params.get("user") or "",
        "QUOTEFLOW_GRAFANA_PG_PASSWORD": params.get("password") or "",
        "QUOTEFLOW_GRAFANA_PG_SSLMODE": params.get("sslmode") or "disable",
    }
    datasource = load_datasource(template, environment)
    for name in _FILE_ONLY_FIELDS:
        datasource.pop(name, None)
    return datasource


def load_datasource(path: Path, environment: Mapping[str, str]) -> dict[str, Any]:
    """The provisioning file's one datasource with `$NAME`/`${NAME}` expanded as Grafana does
    (`$$` is a literal `$`); a name missing from `environment` is an error, not ""."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    (datasource,) = document["datasources"]
    return _expand(datasource, environment)


def provision(
    target: GrafanaTarget,
    datasource: Mapping[str, Any],
    dashboards: Sequence[Mapping[str, Any]],
) -> ProvisionReport:
    """Create or update the datasource, make sure the folder exists, write the dashboards."""
    where = _redacted(target.url)
    # grafana-client appends "api" to the URL's path as it is: a sub-path needs its "/".
    base = where if urlsplit(where).path.endswith("/") or not urlsplit(where).path else where + "/"
    api = GrafanaApi.from_url(
        base,
        credential=target.token if target.token is not None else (target.user, target.password),
        timeout=target.timeout_s,
    )
    report = ProvisionReport()
    uid = datasource["uid"]
    if _exists(where, "reading the datasource", api.datasource.get_datasource_by_uid, uid):
        _call(where, "updating the datasource", api.datasource.update_datasource_by_uid,
              uid, dict(datasource))
        report.datasource = "updated"
    else:
        _call(where, "creating the datasource", api.datasource.create_datasource,
              dict(datasource))
        report.datasource = "created"
    if _exists(where, "reading the folder", api.folder.get_folder, FOLDER_UID):
        report.folder = "existing"
    else:
        _call(where, "creating the folder", api.folder.create_folder, FOLDER_TITLE, FOLDER_UID)
        report.folder = "created"
    for dashboard in dashboards:
        _call(where, f"writing dashboard {dashboard['uid']!r}", api.dashboard.update_dashboard, {
            "dashboard": dict(dashboard),
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "quoteflow grafana provision",
        })
        report.dashboards.append(dashboard["uid"])
    return report


def _exists(where: str, what: str, get, uid: str) -> bool:
    try:
        _call(where, what, get, uid)
    except _NotFound:
        return False
    return True


class _NotFound(GrafanaError):
    pass


def _call(where: str, what: str, method, *args):
    try:
        return method(*args)
    except GrafanaUnauthorizedError:
        raise GrafanaAuthError(
            f"Grafana at {where} refused the credentials (401) while {what}: "
            "check the token, or the user and password"
        ) from None
    except GrafanaTimeoutError as error:
        raise GrafanaUnreachable(f"no answer from Grafana at {where} while {what}: {error}") \
            from None
    except GrafanaClientError as error:
        if error.status_code == 403:
            raise GrafanaAuthError(
                f"Grafana at {where} forbids {what} (403) for this account: it needs the "
                "Admin role of the organisation (or a token of a service account with it)"
            ) from None
        if error.status_code == 404:
            raise _NotFound(f"Grafana at {where} answered 404 while {what}") from None
        raise GrafanaError(f"Grafana at {where} refused {what}: {error.message}") from None
    except GrafanaException as error:
        if error.status_code == 0:  # grafana-client's wrapper of a transport error
            raise GrafanaUnreachable(f"cannot reach Grafana at {where}: {error.message}") \
                from None
        raise GrafanaError(f"Grafana at {where} failed {what}: {error.message}") from None
    except niquests.exceptions.RequestException as error:
        raise GrafanaUnreachable(f"cannot reach Grafana at {where}: {_reason(error)}") from None


def _expand(value: Any, environment: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _expand(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name = match[1] or match[2]
        if name is None:
            return "$"
        if name not in environment:
            raise ValueError(f"no value for ${name}")
        return environment[name]

    return _ENV_REFERENCE.sub(replace, value)


def _redacted(url: str) -> str:
    """The URL without user and password (they go in the credential, never in messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _reason(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__
