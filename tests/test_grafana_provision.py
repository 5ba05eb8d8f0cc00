"""`quoteflow grafana provision` against a local HTTP stand-in for Grafana's API.

No Grafana server can be installed here. `GrafanaStandIn` answers the endpoints
grafana-client calls (datasource by uid, folders, dashboards/db) the way Grafana documents
them, checks credentials, and records every request, so the tests see exactly what the
command sends: the datasource from the provisioning file, the folder and every dashboard.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from connectors.grafana import (
    DASHBOARDS,
    DATASOURCE_FILE,
    DATASOURCE_UID,
    dashboard_json,
    datasource_from_dsn,
    load_datasource,
)
from connectors.grafana.provision import FOLDER_UID
from quoteflow.cli import app

TOKEN = "glsa_test-token"
ADMIN = ("admin", "s3cret-admin")
DSN = "postgresql://grafana_reader:pg-pass@db.internal:5433/quoteflow?sslmode=require"
PROVIDER_FILE = Path(DATASOURCE_FILE).parents[1] / "dashboards" / "quoteflow.yaml"


class GrafanaStandIn(ThreadingHTTPServer):
    """Grafana's HTTP API as far as provisioning goes, in memory, recording each request."""

    def __init__(self, *, forbid: bool = False):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.forbid = forbid
        self.requests: list[tuple[str, str, str, object]] = []  # method, path, auth, body
        self.datasources: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: GrafanaStandIn

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        auth = self.headers.get("Authorization", "")
        self.server.requests.append((self.command, self.path, auth, body))
        basic = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()
        if auth not in (f"Bearer {TOKEN}", basic):
            return self._reply(401, {"message": "Unauthorized"})
        if self.server.forbid:
            return self._reply(403, {"message": "Permissions needed: datasources:create"})
        state = self.server
        route = (self.command, self.path)
        if self.path.startswith("/api/datasources/uid/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid not in state.datasources:
                return self._reply(404, {"message": "Data source not found"})
            if self.command == "PUT":
                state.datasources[uid] = body
                return self._reply(200, {"message": "Datasource updated", "name": body["name"]})
            return self._reply(200, state.datasources[uid])
        if route == ("POST", "/api/datasources"):
            state.datasources[body["uid"]] = body
            return self._reply(200, {"message": "Datasource added", "name": body["name"]})
        if self.path.startswith("/api/folders/") and self.command == "GET":
            uid = self.path.rsplit("/", 1)[1]
            if uid not in state.folders:
                return self._reply(404, {"message": "folder not found"})
            return self._reply(200, state.folders[uid])
        if route == ("POST", "/api/folders"):
            state.folders[body["uid"]] = body
            return self._reply(200, body)
        if route == ("POST", "/api/dashboards/db"):
            uid = body["dashboard"]["uid"]
            state.dashboards[uid] = body
            return self._reply(200, {"status": "success", "uid": uid, "version": 1})
        return self._reply(404, {"message": "Not found"})

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def grafana():
    server = GrafanaStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _provision(*args: str):
    return CliRunner().invoke(app, ["grafana", "provision", *args], env={})


def test_provision_pushes_the_datasource_the_folder_and_every_dashboard(grafana):
    result = _provision("--url", grafana.url, "--token", TOKEN, "--dsn", DSN)
    assert result.exit_code == 0, result.output
    assert "datasource quoteflow-pg: created" in result.output
    assert [(m, p) for m, p, _, _ in grafana.requests] == [
        ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"),
        ("POST", "/api/datasources"),
        ("GET", f"/api/folders/{FOLDER_UID}"),
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * len(DASHBOARDS),
    ]
    assert {auth for _, _, auth, _ in grafana.requests} == {f"Bearer {TOKEN}"}
    datasource = grafana.datasources[DATASOURCE_UID]
    assert datasource == datasource_from_dsn(DSN)
    assert datasource["url"] == "db.internal:5433" and datasource["user"] == "grafana_reader"
    assert datasource["jsonData"]["database"] == "quoteflow"
    assert datasource["jsonData"]["sslmode"] == "require"
    assert datasource["secureJsonData"] == {"password": "pg-pass"}
    assert datasource["type"] == "grafana-postgresql-datasource"
    assert grafana.folders[FOLDER_UID] == {"title": "quoteflow", "uid": FOLDER_UID}
    for dashboard in DASHBOARDS:
        pushed = grafana.dashboards[dashboard.uid]
        assert pushed["dashboard"] == json.loads(json.dumps(dashboard_json(dashboard)))
        assert pushed["folderUid"] == FOLDER_UID and pushed["overwrite"] is True
    assert "pg-pass" not in result.output


def test_provisioning_again_updates_in_place_with_basic_auth(grafana):
    assert _provision("--url", grafana.url, "--token", TOKEN, "--dsn", DSN).exit_code == 0
    grafana.requests.clear()
    moved = DSN.replace("db.internal:5433", "10.0.0.7:5432")
    result = _provision("--url", grafana.url + "/", "--user", ADMIN[0], "--dsn", moved,
                        "--password", ADMIN[1])
    assert result.exit_code == 0, result.output
    assert "datasource quoteflow-pg: updated" in result.output
    assert "folder quoteflow: existing" in result.output
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in [
        (m, p) for m, p, _, _ in grafana.requests]
    assert ("POST", "/api/datasources") not in [(m, p) for m, p, _, _ in grafana.requests]
    assert grafana.datasources[DATASOURCE_UID]["url"] == "10.0.0.7:5432"
    assert all(auth.startswith("Basic ") for _, _, auth, _ in grafana.requests)


def test_a_wrong_token_is_a_clear_401_and_nothing_is_written(grafana):
    result = _provision("--url", grafana.url, "--token", "wrong", "--dsn", DSN)
    assert result.exit_code == 1
    assert f"Grafana at {grafana.url} refused the credentials (401)" in result.output
    assert "Traceback" not in result.output and "wrong" not in result.output
    assert [(m, p) for m, p, _, _ in grafana.requests] == [
        ("GET", f"/api/datasources/uid/{DATASOURCE_UID}")]


def test_an_account_without_the_right_gets_a_clear_403():
    server = GrafanaStandIn(forbid=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = _provision("--url", server.url, "--token", TOKEN, "--dsn", DSN)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    assert "(403)" in result.output and "Admin role" in result.output


def test_an_unreachable_grafana_is_named_without_the_password():
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _provision("--url", f"http://admin:hunter2@127.0.0.1:{port}", "--user", "admin",
                        "--password", "hunter2", "--dsn", DSN, "--timeout", "2")
    assert result.exit_code == 1
    assert f"cannot reach Grafana at http://127.0.0.1:{port}" in result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "says"), [
    (["--url", "http://g:3000", "--dsn", DSN], "give --token, or --user and --password"),
    (["--url", "http://g:3000", "--token", TOKEN, "--user", "a", "--dsn", DSN],
     "give --token, or --user and --password"),
    (["--url", "http://g:3000", "--user", "a", "--dsn", DSN], "a user needs a password"),
    (["--url", "ftp://g", "--token", TOKEN, "--dsn", DSN], "not an http(s) URL"),
    (["--url", "http://g:3000", "--token", TOKEN, "--dsn", "host=/var/run/postgresql"],
     "not a Unix socket"),
    (["--url", "http://g:3000", "--token", TOKEN, "--dsn", "not a dsn"], "invalid PostgreSQL DSN"),
])
def test_bad_options_exit_2_and_say_why(args, says):
    result = _provision(*args)
    assert result.exit_code == 2
    assert says in " ".join(result.output.replace("│", " ").split())  # rich wraps in a box


def test_the_datasource_file_holds_no_secret_and_expands_like_grafana(tmp_path):
    document = yaml.safe_load(DATASOURCE_FILE.read_text())
    (datasource,) = document["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["secureJsonData"] == {"password": "$QUOTEFLOW_GRAFANA_PG_PASSWORD"}
    assert datasource["url"] == "$QUOTEFLOW_GRAFANA_PG_URL"
    template = tmp_path / "ds.yaml"
    template.write_text(
        "datasources:\n  - name: x\n    url: ${HOST}:$PORT\n    user: pa$$word\n"
        "    jsonData: {port: 5432, tls: true}\n")
    loaded = load_datasource(template, {"HOST": "h", "PORT": "1"})
    assert loaded == {"name": "x", "url": "h:1", "user": "pa$word",
                      "jsonData": {"port": 5432, "tls": True}}
    with pytest.raises(ValueError, match=r"no value for \$PORT"):
        load_datasource(template, {"HOST": "h"})


def test_the_dashboard_provider_loads_the_generated_files_into_the_folder():
    (provider,) = yaml.safe_load(PROVIDER_FILE.read_text())["providers"]
    assert provider["type"] == "file" and provider["folderUid"] == FOLDER_UID
    assert provider["options"]["path"] == "$QUOTEFLOW_GRAFANA_DASHBOARDS"
