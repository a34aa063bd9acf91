"""The RLS audit and the live isolation probe, on a migrated database with each defect in turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from afasa_ops.cli import app as cli_app
from afasa_ops.schema import migrator, rls
from afasa_ops.schema.settings import SchemaSettings
from tests.support.schema_db import admin, app_role, execute, query, settings_for

WRONG_COLUMN = (
    "DROP POLICY tenant_isolation ON devices; CREATE POLICY tenant_isolation ON devices "
    "USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid) "
    "WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
)
WITHOUT_CHECK = (
    "DROP POLICY tenant_isolation ON devices; CREATE POLICY tenant_isolation ON devices "
    "USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
)


@pytest.fixture
def migrated(pg_database: str) -> Iterator[SchemaSettings]:
    with app_role(pg_database) as role:
        cfg = settings_for(pg_database, role)
        pg = admin(cfg)
        migrator.migrate(pg, cfg)
        pg.close()
        yield cfg


def codes(cfg: SchemaSettings, app_dsn: str | None = None) -> set[str]:
    pg = admin(cfg)
    try:
        return {f.code for f in rls.audit(pg, app_dsn, cfg.app_role)}
    finally:
        pg.close()


def probe(cfg: SchemaSettings, role: str | None = None) -> list[str]:
    pg = admin(cfg)
    try:
        return [f.message for f in rls.probe(pg, role or cfg.app_role)]
    finally:
        pg.close()


def test_migrated_database_passes_audit_and_probe(migrated: SchemaSettings) -> None:
    assert codes(migrated) == set()
    assert probe(migrated) == []
    # The probe rolled back everything it wrote.
    assert query(migrated.admin_dsn, "SELECT count(*) FROM tenants") == [(0,)]


@pytest.mark.parametrize(
    ("defect", "code", "probe_fails"),
    [
        ("ALTER TABLE devices DISABLE ROW LEVEL SECURITY", "db.rls_disabled", True),
        ("ALTER TABLE devices NO FORCE ROW LEVEL SECURITY", "db.rls_not_forced", False),
        ("DROP POLICY tenant_isolation ON devices", "db.policy_missing", True),
        (WITHOUT_CHECK, "db.policy_without_check", False),
        (WRONG_COLUMN, "db.policy_missing", True),
        ("ALTER ROLE {role} BYPASSRLS", "db.rls_bypassed_by_role", True),
        ("ALTER TABLE devices OWNER TO {role}", "db.rls_bypassed_by_role", False),
    ],
)
def test_each_defect_is_found(
    migrated: SchemaSettings, defect: str, code: str, probe_fails: bool
) -> None:
    execute(migrated.admin_dsn, defect.format(role=f'"{migrated.app_role}"'))
    assert code in codes(migrated)
    failures = probe(migrated)
    assert bool(failures) is probe_fails, failures


def test_owner_without_force_fails_the_probe(migrated: SchemaSettings) -> None:
    role = f'"{migrated.app_role}"'
    execute(migrated.admin_dsn, f"ALTER TABLE devices OWNER TO {role}")
    execute(migrated.admin_dsn, "ALTER TABLE devices NO FORCE ROW LEVEL SECURITY")
    assert {"db.rls_not_forced", "db.rls_bypassed_by_role"} <= codes(migrated)
    assert "tenant B sees tenant A's devices row" in " ".join(probe(migrated))


def test_superuser_app_dsn_is_reported(migrated: SchemaSettings) -> None:
    found = codes(migrated, app_dsn=migrated.admin_dsn)
    assert "db.rls_bypassed_by_role" in found
    assert any("which is a superuser" in m for m in audit_messages(migrated))


def audit_messages(cfg: SchemaSettings) -> list[str]:
    pg = admin(cfg)
    try:
        return [f.message for f in rls.audit(pg, cfg.admin_dsn, cfg.app_role)]
    finally:
        pg.close()


def test_a_permissive_catch_all_policy_is_caught_by_the_probe(migrated: SchemaSettings) -> None:
    execute(migrated.admin_dsn, "CREATE POLICY open_door ON devices USING (true)")
    assert codes(migrated) == set()  # the catalog looks right...
    messages = probe(migrated)  # ...but the behaviour is not
    assert "isolation probe on devices: tenant B sees tenant A's devices row" in messages
    assert any("written while set to tenant B" in m for m in messages)


def test_a_tenant_that_leaks_into_every_transaction_is_caught(migrated: SchemaSettings) -> None:
    db = migrated.admin_dsn.rsplit("/", 1)[1]
    tenant = "00000000-0000-0000-0000-000000000001"
    execute(migrated.admin_dsn, f"ALTER DATABASE \"{db}\" SET app.tenant_id = '{tenant}'")
    assert any(f"leaked into the next transaction ({tenant})" in m for m in probe(migrated))


def test_probe_without_devices_table_says_what_to_do(pg_database: str) -> None:
    execute(pg_database, "CREATE TABLE tenants (id uuid PRIMARY KEY, name text)")
    with app_role(pg_database) as role:
        execute(pg_database, f'CREATE ROLE "{role}" LOGIN')
        cfg = settings_for(pg_database, role)
        assert probe(cfg) == [
            "isolation probe on devices: table devices does not exist; "
            "run `afasa-ops schema migrate`"
        ]


def write_config(tmp_path: Path, cfg: SchemaSettings) -> Path:
    config = tmp_path / "afasa-ops.toml"
    config.write_text(
        f'[repo]\npath = "{tmp_path}"\n[database]\nadmin_dsn = "{cfg.admin_dsn}"\n'
        f'app_role = "{cfg.app_role}"\n'
    )
    return config


def test_doctor_db_reports_codes_and_blocks(migrated: SchemaSettings, tmp_path: Path) -> None:
    execute(migrated.admin_dsn, "ALTER TABLE event_outbox NO FORCE ROW LEVEL SECURITY")
    config = write_config(tmp_path, migrated)
    result = CliRunner().invoke(cli_app, ["-c", str(config), "doctor", "db", "--json"])
    assert result.exit_code == 4, result.output
    doc = json.loads(result.stdout)
    found = {f["code"] for s in doc["steps"] for f in s["findings"]}
    assert "db.rls_not_forced" in found


def test_doctor_db_ok_on_a_migrated_database(migrated: SchemaSettings, tmp_path: Path) -> None:
    config = write_config(tmp_path, migrated)
    result = CliRunner().invoke(cli_app, ["-c", str(config), "doctor", "db", "--json"])
    assert result.exit_code == 0, result.output
    statuses = {s["id"]: s["status"] for s in json.loads(result.stdout)["steps"]}
    assert statuses == {
        "doctor.db.preflight": "ok",
        "doctor.db.migrations": "ok",
        "doctor.db.app_role": "ok",
        "doctor.db.rls": "ok",
        "doctor.db.init_replay": "skipped",  # this repo has no infra/postgres/init
    }


def test_a_role_default_tenant_is_caught_on_the_services_login(migrated: SchemaSettings) -> None:
    app_dsn = migrated.admin_dsn.replace("postgres@", f"{migrated.app_role}@")
    assert rls.leak_probe(app_dsn) == []
    tenant = "00000000-0000-0000-0000-0000000000aa"
    execute(
        migrated.admin_dsn, f"ALTER ROLE \"{migrated.app_role}\" SET app.tenant_id = '{tenant}'"
    )
    messages = [f.message for f in rls.leak_probe(app_dsn)]
    assert len(messages) == 1 and f"({tenant})" in messages[0]
    execute(migrated.admin_dsn, f'ALTER ROLE "{migrated.app_role}" RESET app.tenant_id')
