"""Tenant-bound references and the application role's least privilege, on the real
PostgreSQL as the NOBYPASSRLS role: with tenant A set, no row may point at tenant B's rows;
the migration that adds this works on a database with rows and refuses clearly when existing
rows already cross tenants; the audit log is append-only and a tenant sees only its own row
of `tenants`, and the RLS audit and probe say so when a grant drifts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from afasa_ops.errors import DriverError
from afasa_ops.schema import migrator, rls
from afasa_ops.schema.roles import ensure_app_role, excess_grants, missing_grants
from afasa_ops.schema.settings import SchemaSettings
from tests.support.schema_db import admin, app_role, copy_migrations, execute, query, settings_for


@pytest.fixture
def migrated(pg_database: str) -> Iterator[SchemaSettings]:
    with app_role(pg_database) as role:
        cfg = settings_for(pg_database, role)
        migrator.migrate(admin(cfg), cfg)
        yield cfg


def as_app(cfg: SchemaSettings) -> psycopg.Connection:  # type: ignore[type-arg]
    return psycopg.connect(cfg.admin_dsn.replace("postgres@", f"{cfg.app_role}@"))


def two_tenants(dsn: str) -> tuple[uuid.UUID, uuid.UUID]:
    a, b = uuid.uuid4(), uuid.uuid4()
    execute(dsn, "INSERT INTO tenants (id, name) VALUES (%s, 'A'), (%s, 'B')", (a, b))
    return a, b


def seed_chain(dsn: str, tenant: uuid.UUID) -> dict[str, uuid.UUID]:
    """One row of each referenced table for `tenant`."""
    ids = {k: uuid.uuid4() for k in ("device", "camera", "snapshot", "detection")}
    execute(
        dsn,
        "INSERT INTO devices (id, tenant_id, provider, external_id) VALUES (%s, %s, 'p', %s);",
        (ids["device"], tenant, str(ids["device"])),
    )
    execute(
        dsn,
        "INSERT INTO cameras (id, tenant_id, name) VALUES (%s, %s, 'c')",
        (ids["camera"], tenant),
    )
    execute(
        dsn,
        "INSERT INTO snapshots (id, tenant_id, camera_id) VALUES (%s, %s, %s)",
        (ids["snapshot"], tenant, ids["camera"]),
    )
    execute(
        dsn,
        "INSERT INTO detections (id, tenant_id, snapshot_id, label) VALUES (%s, %s, %s, 'x')",
        (ids["detection"], tenant, ids["snapshot"]),
    )
    return ids


CROSSING = [
    ("device_commands", "INSERT INTO device_commands (tenant_id, device_id, command) VALUES (%s, %s, 'disable')", "device"),
    ("snapshots", "INSERT INTO snapshots (tenant_id, camera_id) VALUES (%s, %s)", "camera"),
    ("detections", "INSERT INTO detections (tenant_id, snapshot_id, label) VALUES (%s, %s, 'x')", "snapshot"),
    ("assessments", "INSERT INTO assessments (tenant_id, detection_id) VALUES (%s, %s)", "detection"),
]  # fmt: skip


@pytest.mark.parametrize(("table", "sql", "parent"), CROSSING, ids=[c[0] for c in CROSSING])
def test_a_reference_to_another_tenants_row_is_refused(
    migrated: SchemaSettings, table: str, sql: str, parent: str
) -> None:
    a, b = two_tenants(migrated.admin_dsn)
    own, theirs = seed_chain(migrated.admin_dsn, a), seed_chain(migrated.admin_dsn, b)
    with as_app(migrated) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(a),))
        conn.execute(sql, (a, own[parent]))  # its own tenant's row: fine
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="same_tenant"):
            conn.execute(sql, (a, theirs[parent]))


def test_the_migration_works_on_a_database_with_rows_and_refuses_crossing_rows(
    pg_database: str, tmp_path: Path
) -> None:
    full = copy_migrations(tmp_path / "all")
    older = tmp_path / "older"
    older.mkdir()
    for f in sorted(full.glob("*.sql")):
        if int(f.name[:4]) <= 6:
            (older / f.name).write_text(f.read_text())
    with app_role(pg_database) as role:
        before = settings_for(pg_database, role, migrations_dir=older)
        migrator.migrate(admin(before), before)
        a, b = two_tenants(pg_database)
        own, theirs = seed_chain(pg_database, a), seed_chain(pg_database, b)
        bad = uuid.uuid4()
        # Written before the migration: A's command on B's device.
        execute(
            pg_database,
            "INSERT INTO device_commands (id, tenant_id, device_id, command) VALUES (%s, %s, %s, 'enable')",
            (bad, a, theirs["device"]),
        )
        after = settings_for(pg_database, role, migrations_dir=full)
        with pytest.raises(DriverError) as err:
            migrator.migrate(admin(after), after)
        message = str(err.value)
        assert "0007_tenant_bound_refs.sql" in message
        assert (
            f"1 device_commands rows reference a devices row of another tenant (e.g. device_commands id {bad})"
            in message
        )
        assert "correct or delete those device_commands rows" in message
        assert query(pg_database, "SELECT max(version) FROM afasa_ops_schema_migrations") == [(6,)]
        execute(pg_database, "DELETE FROM device_commands WHERE id = %s", (bad,))
        assert migrator.migrate(admin(after), after).applied == [
            "0007_tenant_bound_refs.sql",
            "0008_tenant_privacy.sql",
        ]
        assert migrator.verify(admin(after), after) == []
        # The rows that were there survive, and the constraint now holds.
        assert query(pg_database, "SELECT count(*) FROM detections") == [(2,)]
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            execute(
                pg_database,
                "INSERT INTO device_commands (tenant_id, device_id, command) VALUES (%s, %s, 'enable')",
                (a, theirs["device"]),
            )
        assert own


def test_the_app_role_may_only_append_to_the_audit_log(migrated: SchemaSettings) -> None:
    a, _ = two_tenants(migrated.admin_dsn)
    with as_app(migrated) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(a),))
        conn.execute(
            "INSERT INTO audit_log (tenant_id, actor_type, action) VALUES (%s, 'user', 'x')", (a,)
        )
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)
        for sql in (
            "UPDATE audit_log SET reason = 'rewritten'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(sql)


def test_a_tenant_sees_only_its_own_tenants_row_and_workers_list_ids(
    migrated: SchemaSettings,
) -> None:
    a, b = two_tenants(migrated.admin_dsn)
    with as_app(migrated) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (0,)
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(a),))
        assert conn.execute("SELECT id, name FROM tenants").fetchall() == [(a, "A")]
        ids = {r[0] for r in conn.execute("SELECT * FROM afasa_tenant_ids()")}
        assert {a, b} <= ids
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE tenants SET name = 'mine now'")


def test_a_drifted_grant_is_found_by_the_audit_and_the_probe_and_converged(
    migrated: SchemaSettings,
) -> None:
    role = f'"{migrated.app_role}"'
    pg = admin(migrated)
    assert missing_grants(pg, migrated.app_role) == []
    assert excess_grants(pg, migrated.app_role) == []
    assert rls.probe(pg, migrated.app_role) == []
    execute(migrated.admin_dsn, f"GRANT UPDATE, DELETE ON audit_log TO {role}")
    execute(migrated.admin_dsn, f"GRANT INSERT, UPDATE ON tenants TO {role}")
    assert excess_grants(pg, migrated.app_role) == [
        "audit_log: UPDATE",
        "audit_log: DELETE",
        "tenants: INSERT",
        "tenants: UPDATE",
    ]
    problems = [f.message for f in rls.probe(pg, migrated.app_role)]
    assert any("may UPDATE audit_log" in p for p in problems), problems
    assert any("may DELETE audit_log" in p for p in problems), problems
    ensure_app_role(pg, migrated.app_role, None)
    assert excess_grants(pg, migrated.app_role) == []
    assert missing_grants(pg, migrated.app_role) == []
    assert rls.probe(pg, migrated.app_role) == []
