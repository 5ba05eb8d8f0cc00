"""The dev and test services run with least privilege (issue 16).

- PostgreSQL: the application's role `quoteflow` is no superuser, owns its database (the
  migrations run as the owner of the schema), and logs in with a password generated per
  cluster; without it, and as `postgres` over TCP, nobody gets in.
- Keycloak: the admin password is generated per instance, kept in a 0600 file, and the old
  default `admin` opens nothing.
"""

from __future__ import annotations

import stat

import psycopg
import pytest
from keycloak.exceptions import KeycloakError

from connectors.keycloak.admin import RealmAdmin
from connectors.timescale import TimescaleConfig, connect, migrate
from tests.keycloak_service import INSTANCE_DIRS, admin_password
from tests.postgres_service import fresh_database

pytestmark = pytest.mark.integration


def test_the_application_role_is_no_superuser_and_needs_its_password(postgres_dsn) -> None:
    params = psycopg.conninfo.conninfo_to_dict(postgres_dsn)
    assert params["user"] == "quoteflow" and len(params.get("password", "")) >= 32
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        superuser, create_role = conn.execute(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert not superuser and not create_role
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER SYSTEM SET work_mem = '64MB'")
    for user, password in (("quoteflow", None), ("quoteflow", "wrong"), ("postgres", None)):
        dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=user, password=password or "")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=5).close()
    with fresh_database(postgres_dsn) as dsn, connect(TimescaleConfig(dsn=dsn)) as conn:
        migrate(conn)  # the schema's owner runs the migrations
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)


def test_the_keycloak_admin_password_is_generated_and_kept_owner_only(keycloak_url) -> None:
    password = admin_password(keycloak_url)
    assert len(password) >= 24 and password != "admin"
    directory = INSTANCE_DIRS.get(keycloak_url)
    if directory is not None:  # started here (not QUOTEFLOW_KEYCLOAK_URL)
        mode = stat.S_IMODE((directory / "admin.password").stat().st_mode)
        assert mode == 0o600
    with pytest.raises(KeycloakError):
        RealmAdmin(keycloak_url, "admin", "admin").realm_settings()
    assert RealmAdmin(keycloak_url, "admin", password).realm_settings()["realm"] == "quoteflow"
