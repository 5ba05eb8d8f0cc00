"""k8s/base/openbao/configure.sh, run with the real `bao` CLI against the session's OpenBao.

The script gets the files its ConfigMap would give it (itself, platform.hcl and the policies
k8s/generate.py renders from connectors.secrets.vault_setup) and sets up Kubernetes auth. No
Kubernetes API server runs here, so no pod logs in: the test reads back the roles it wrote
and uses a token holding exactly the policies the executor's role grants, which is what a
Kubernetes login of the executor's service account would get.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import hvac
import pytest

from connectors.secrets import (
    ExchangeCredentials,
    SecretBackendError,
    VaultSecretStore,
    VaultSettings,
)
from tests.openbao_service import EXECUTOR_OWNER, OpenBao

ROOT = Path(__file__).resolve().parents[1]
OPENBAO = ROOT / "k8s" / "base" / "openbao"
GENERATED = ROOT / "k8s" / "base" / "generated" / "openbao"

pytestmark = pytest.mark.integration


def api_server_ca(path: Path) -> Path:
    """A self-signed CA certificate standing in for the API server's (no cluster runs here)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def configure(openbao: OpenBao, directory: Path, owner: str) -> subprocess.CompletedProcess:
    directory.mkdir(exist_ok=True)
    for source in (OPENBAO / "configure.sh", OPENBAO / "platform.hcl", *GENERATED.glob("*.hcl")):
        shutil.copy(source, directory / source.name)  # the ConfigMap's flat layout
    env = {**os.environ, "BAO_ADDR": openbao.url, "BAO_TOKEN": openbao.root_token,
           "KUBERNETES_CA_CERT": str(api_server_ca(directory.parent / "ca.crt")),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["sh", str(directory / "configure.sh"), owner], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_configure_scopes_the_executor_to_its_owner(openbao, tmp_path):
    first = configure(openbao, tmp_path / "setup", EXECUTOR_OWNER)
    assert first.returncode == 0, first.stderr
    again = configure(openbao, tmp_path / "setup", EXECUTOR_OWNER)  # idempotent
    assert again.returncode == 0, again.stderr

    admin = hvac.Client(url=openbao.url, token=openbao.root_token)
    roles = {
        name: admin.read(f"auth/kubernetes/role/{name}")["data"]
        for name in ("quoteflow-executor", "quoteflow-api", "quoteflow-platform")
    }
    assert roles["quoteflow-executor"]["bound_service_account_names"] == ["quoteflow-executor"]
    assert roles["quoteflow-executor"]["bound_service_account_namespaces"] == ["quoteflow"]
    assert roles["quoteflow-executor"]["audience"] == "openbao"
    assert roles["quoteflow-executor"]["token_policies"] == ["quoteflow-executor"]
    assert roles["quoteflow-api"]["token_policies"] == ["quoteflow-api"]

    root = VaultSecretStore.from_settings(openbao.root_settings())
    credentials = ExchangeCredentials("api-" + uuid.uuid4().hex, "secret-" + uuid.uuid4().hex)
    mine = root.put(EXECUTOR_OWNER, "binance", credentials)
    other_owner = f"bob-{uuid.uuid4().hex[:8]}"
    theirs = root.put(other_owner, "binance", credentials)

    token = admin.auth.token.create(policies=roles["quoteflow-executor"]["token_policies"],
                                    no_default_policy=False, ttl="5m")["auth"]["client_token"]
    executor = VaultSecretStore.from_settings(VaultSettings(url=openbao.url, token=token))
    assert executor.get(EXECUTOR_OWNER, "binance", mine.key_id).secret == credentials.secret
    with pytest.raises(SecretBackendError, match="permission denied"):
        executor.get(other_owner, "binance", theirs.key_id)
    with pytest.raises(SecretBackendError, match="permission denied"):
        executor.list(other_owner)
    with pytest.raises(SecretBackendError, match="permission denied"):
        executor.put(EXECUTOR_OWNER, "binance", credentials)

    platform = admin.auth.token.create(policies=["quoteflow-platform"], ttl="5m")
    platform_client = hvac.Client(url=openbao.url, token=platform["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):  # the secrets sync never sees exchange keys
        platform_client.secrets.kv.v2.read_secret_version(
            path=f"quoteflow/{EXECUTOR_OWNER}/binance/{mine.key_id}", mount_point="secret",
            raise_on_deleted_version=True)


def test_a_missing_owner_is_a_usage_error(openbao, tmp_path):
    done = configure(openbao, tmp_path / "setup", "")
    assert done.returncode != 0
    assert "usage: configure.sh EXECUTOR_OWNER" in done.stderr
