"""A local HTTP stand-in for the parts of HashiCorp Vault that quoteflow uses. Tests only.

No Vault server can be installed on the project's machines, so the Vault backend is tested
against this server on 127.0.0.1. It follows Vault's documented HTTP API (request paths,
methods, JSON bodies, status codes and the response envelope), as read from Vault's API docs
(developer.hashicorp.com/vault/api-docs: secret/kv/kv-v2, secret/transit, auth/approle,
auth/token) and from hvac 2.4.0's request code, for exactly these endpoints:

    POST   /v1/auth/<approle>/login                 {"role_id", "secret_id"} -> auth.client_token
    GET    /v1/auth/token/lookup-self
    POST   /v1/<kv>/data/<path>                     {"data", "options": {"cas"}}
    GET    /v1/<kv>/data/<path>[?version=N]
    LIST   /v1/<kv>/metadata/<path>/  (or GET ?list=true)
    DELETE /v1/<kv>/metadata/<path>
    POST   /v1/<transit>/keys/<name>                {"type"}
    POST   /v1/<transit>/keys/<name>/rotate
    POST   /v1/<transit>/datakey/plaintext/<name>   {"bits"}
    POST   /v1/<transit>/decrypt/<name>             {"ciphertext"}
    POST   /v1/<transit>/rewrap/<name>              {"ciphertext"}

Transit ciphertexts have Vault's shape, `vault:v<version>:<base64(nonce || AES-GCM output)>`,
made with real AES-256-GCM under a per-version key. Access control is reduced to "a known
token may do everything": enough to test authentication failures, not policies.
Every request body is kept in `requests_seen` so tests can check what reached "Vault".
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_CIPHERTEXT = re.compile(r"vault:v(\d+):(.+)")


class VaultError(Exception):
    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)


class VaultStandin:
    """The server and its state; use as a context manager, or start()/stop()."""

    def __init__(self, kv_mount: str = "secret", transit_mount: str = "transit") -> None:
        self.kv_mount = kv_mount
        self.transit_mount = transit_mount
        self.root_token = "hvs." + uuid.uuid4().hex
        self.role_id = str(uuid.uuid4())
        self.secret_id = str(uuid.uuid4())
        self.tokens = {self.root_token}
        self.kv: dict[str, list[dict[str, Any]]] = {}  # path -> versions (data + metadata)
        self.transit_keys: dict[str, list[bytes]] = {}  # name -> key per version
        self.requests_seen: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> VaultStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> VaultStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch -----------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, token: str | None
    ) -> tuple[int, Any]:
        if not path.startswith("/v1/"):
            raise VaultError(404)
        path = path[len("/v1/") :]
        if method == "GET" and query.get("list") == ["true"]:
            method = "LIST"
        if method == "POST" and re.fullmatch(r"auth/[^/]+/login", path):
            return 200, self._approle_login(body)
        if token not in self.tokens:
            raise VaultError(403, "permission denied")
        if path == "auth/token/lookup-self" and method == "GET":
            return 200, _envelope(data={"id": token, "policies": ["root"], "ttl": 0})
        kv_prefix, transit_prefix = self.kv_mount + "/", self.transit_mount + "/"
        with self._lock:
            if path.startswith(kv_prefix):
                return self._kv(method, path[len(kv_prefix) :], query, body)
            if path.startswith(transit_prefix) and method == "POST":
                return self._transit(path[len(transit_prefix) :], body)
        raise VaultError(404, f"no handler for route {path!r}")

    def _approle_login(self, body: Any) -> Any:
        if body.get("role_id") != self.role_id or body.get("secret_id") != self.secret_id:
            raise VaultError(400, "invalid role or secret ID")
        token = "hvs." + uuid.uuid4().hex
        self.tokens.add(token)
        return _envelope(
            auth={
                "client_token": token,
                "accessor": uuid.uuid4().hex,
                "policies": ["default", "quoteflow"],
                "token_policies": ["default", "quoteflow"],
                "lease_duration": 3600,
                "renewable": True,
            }
        )

    # -- KV v2 --------------------------------------------------------------------------

    def _kv(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        kind, _, path = rest.partition("/")
        if kind == "data" and method in ("POST", "PUT"):
            return 200, self._kv_write(path, body)
        if kind == "data" and method == "GET":
            return 200, self._kv_read(path, query)
        if kind == "metadata" and method == "LIST":
            return 200, self._kv_list(path)
        if kind == "metadata" and method == "DELETE":
            self.kv.pop(path, None)
            return 204, None
        raise VaultError(405, "unsupported operation")

    def _kv_write(self, path: str, body: Any) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise VaultError(400, "no data provided")
        versions = self.kv.setdefault(path, [])
        cas = (body.get("options") or {}).get("cas")
        if cas is not None and cas != len(versions):
            if not versions:
                del self.kv[path]
            raise VaultError(400, "check-and-set parameter did not match the current version")
        metadata = {
            "created_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": len(versions) + 1,
        }
        versions.append({"data": body["data"], "metadata": metadata})
        return _envelope(data=metadata)

    def _kv_read(self, path: str, query: dict[str, list[str]]) -> Any:
        versions = self.kv.get(path)
        if not versions:
            raise VaultError(404)
        number = int(query.get("version", ["0"])[0]) or len(versions)
        if not 1 <= number <= len(versions):
            raise VaultError(404)
        return _envelope(data=versions[number - 1])

    def _kv_list(self, folder: str) -> Any:
        folder = folder.rstrip("/") + "/" if folder.strip("/") else ""
        keys = set()
        for path in self.kv:
            if path.startswith(folder):
                head, slash, _ = path[len(folder) :].partition("/")
                keys.add(head + slash)
        if not keys:
            raise VaultError(404)
        return _envelope(data={"keys": sorted(keys)})

    # -- Transit ------------------------------------------------------------------------

    def _transit(self, rest: str, body: Any) -> tuple[int, Any]:
        if match := re.fullmatch(r"keys/([^/]+)", rest):
            if body.get("type", "aes256-gcm96") != "aes256-gcm96":
                raise VaultError(400, "the stand-in only has aes256-gcm96 keys")
            self.transit_keys.setdefault(match[1], [AESGCM.generate_key(bit_length=256)])
            return 204, None
        if match := re.fullmatch(r"keys/([^/]+)/rotate", rest):
            self._key_versions(match[1]).append(AESGCM.generate_key(bit_length=256))
            return 204, None
        if match := re.fullmatch(r"datakey/(plaintext|wrapped)/([^/]+)", rest):
            bits = int(body.get("bits", 256))
            if bits not in (128, 256, 512):
                raise VaultError(400, "invalid bits given")
            data_key = os.urandom(bits // 8)
            data = {
                "ciphertext": self._encrypt(match[2], data_key),
                "key_version": len(self._key_versions(match[2])),
            }
            if match[1] == "plaintext":
                data["plaintext"] = base64.b64encode(data_key).decode()
            return 200, _envelope(data=data)
        if match := re.fullmatch(r"decrypt/([^/]+)", rest):
            plaintext = self._decrypt(match[1], body.get("ciphertext"))
            return 200, _envelope(data={"plaintext": base64.b64encode(plaintext).decode()})
        if match := re.fullmatch(r"rewrap/([^/]+)", rest):
            plaintext = self._decrypt(match[1], body.get("ciphertext"))
            versions = self._key_versions(match[1])
            data = {"ciphertext": self._encrypt(match[1], plaintext), "key_version": len(versions)}
            return 200, _envelope(data=data)
        raise VaultError(404, f"no handler for route {rest!r}")

    def _key_versions(self, name: str) -> list[bytes]:
        if name not in self.transit_keys:
            raise VaultError(400, "encryption key not found")
        return self.transit_keys[name]

    def _encrypt(self, name: str, plaintext: bytes) -> str:
        versions = self._key_versions(name)
        nonce = os.urandom(12)
        sealed = AESGCM(versions[-1]).encrypt(nonce, plaintext, None)
        return f"vault:v{len(versions)}:" + base64.b64encode(nonce + sealed).decode()

    def _decrypt(self, name: str, ciphertext: object) -> bytes:
        versions = self._key_versions(name)
        match = _CIPHERTEXT.fullmatch(ciphertext) if isinstance(ciphertext, str) else None
        if not match:
            raise VaultError(400, "invalid ciphertext: no prefix")
        version = int(match[1])
        if not 1 <= version <= len(versions):
            raise VaultError(400, "invalid ciphertext: key version is not valid")
        try:
            raw = base64.b64decode(match[2], validate=True)
            return AESGCM(versions[version - 1]).decrypt(raw[:12], raw[12:], None)
        except (binascii.Error, ValueError, InvalidTag):
            raise VaultError(400, "cipher: message authentication failed") from None


def _envelope(data: Any = None, auth: Any = None) -> dict[str, Any]:
    """Vault's response envelope around `data` or `auth`."""
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": auth,
    }


def _handler_for(standin: VaultStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            standin.requests_seen.append((self.command, url.path, raw))
            try:
                body = json.loads(raw) if raw else {}
                status, payload = standin.handle(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    body,
                    self.headers.get("X-Vault-Token"),
                )
            except VaultError as error:
                status, payload = error.status, {"errors": error.errors}
            except (ValueError, AttributeError, TypeError) as error:
                status, payload = 400, {"errors": [f"malformed request: {type(error).__name__}"]}
            self.send_response(status)
            if payload is None:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            out = json.dumps(payload).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    return Handler
