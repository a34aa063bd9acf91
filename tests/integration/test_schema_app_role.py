"""The application role: created by migrate with only its grants, and converged when wrong."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from afasa_ops.schema import migrator, rls
from afasa_ops.schema.roles import ensure_app_role, missing_grants, role_state
from afasa_ops.schema.settings import SchemaSettings
from tests.support.schema_db import admin, app_role, execute, query, settings_for


@pytest.fixture
def migrated(pg_database: str) -> Iterator[SchemaSettings]:
    with app_role(pg_database) as role:
        cfg = settings_for(pg_database, role, app_password="Role-Pw-4321")
        migrator.migrate(admin(cfg), cfg)
        yield cfg


def as_app(cfg: SchemaSettings) -> psycopg.Connection:  # type: ignore[type-arg]
    return psycopg.connect(cfg.admin_dsn.replace("postgres@", f"{cfg.app_role}@"), autocommit=True)


def test_migrate_creates_a_least_privilege_role(migrated: SchemaSettings) -> None:
    state = role_state(admin(migrated), migrated.app_role)
    assert (state.exists, state.login, state.superuser, state.bypassrls) == (
        True,
        True,
        False,
        False,
    )
    assert state.owned_tables == ()
    assert missing_grants(admin(migrated), migrated.app_role) == []
    with as_app(migrated) as conn:
        conn.execute("SELECT count(*) FROM tenants")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO tenants (name) VALUES ('x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM afasa_ops_schema_migrations")
        # Outside a tenant transaction the services see no tenant rows at all.
        assert conn.execute("SELECT count(*) FROM devices").fetchone() == (0,)


def test_a_superuser_owning_app_role_is_converged(migrated: SchemaSettings) -> None:
    role = f'"{migrated.app_role}"'
    execute(migrated.admin_dsn, f"ALTER ROLE {role} SUPERUSER BYPASSRLS")
    execute(migrated.admin_dsn, f"ALTER TABLE devices OWNER TO {role}")
    pg = admin(migrated)
    assert "db.rls_bypassed_by_role" in {f.code for f in rls.audit(pg, None, migrated.app_role)}
    shown = ensure_app_role(pg, migrated.app_role, migrated.app_password)
    assert any("PASSWORD '***'" in s for s in shown)
    assert not any("Role-Pw-4321" in s for s in shown)
    state = role_state(pg, migrated.app_role)
    assert (state.superuser, state.bypassrls, state.owned_tables) == (False, False, ())
    assert rls.audit(pg, None, migrated.app_role) == []
    assert rls.probe(pg, migrated.app_role) == []
    owner = query(
        migrated.admin_dsn,
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'devices'",
    )
    assert owner == [("postgres",)]
