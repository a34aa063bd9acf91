"""A database made by the AFASA init SQL: recognised, baselined, then migrated; fresh volumes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from afasa_ops.config import load_settings
from afasa_ops.errors import BlockedError
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import State
from afasa_ops.schema import baseline, migrator, rls
from afasa_ops.schema.inspect import LEDGER, inspect
from afasa_ops.schema.settings import SchemaSettings
from afasa_ops.steps.schema import InitSql, InitSqlParams, init_sql_text
from tests.conftest import git
from tests.support.runbook import INIT_COMMIT_MESSAGE
from tests.support.schema_db import (
    AFASA_INIT_SQL,
    AFASA_RLS_SQL,
    admin,
    app_role,
    execute,
    query,
    settings_for,
)
from tests.support.services import fresh_database


@pytest.fixture
def afasa_db(pg_database: str) -> Iterator[SchemaSettings]:
    """A database as the AFASA init SQL leaves it: tables, defective RLS, no ledger."""
    execute(pg_database, AFASA_INIT_SQL + AFASA_RLS_SQL)
    with app_role(pg_database) as role:
        yield settings_for(pg_database, role)


def test_init_sql_database_needs_an_explicit_baseline(afasa_db: SchemaSettings) -> None:
    pg = admin(afasa_db)
    assert inspect(pg).state == "unbaselined"
    with pytest.raises(BlockedError, match="run `afasa-ops schema baseline` first"):
        migrator.migrate(pg, afasa_db)
    assert LEDGER not in {
        r[0] for r in query(afasa_db.admin_dsn, "SELECT tablename FROM pg_tables")
    }


def test_baseline_then_migrate_fixes_rls_on_existing_policies(afasa_db: SchemaSettings) -> None:
    pg = admin(afasa_db)
    codes = {f.code for f in rls.audit_tables(rls.read_tables(pg))}
    assert {"db.rls_not_forced", "db.policy_without_check"} <= codes

    report = baseline.record(pg, afasa_db)
    assert report.recorded and report.blocking == []
    assert query(afasa_db.admin_dsn, f"SELECT version, name FROM {LEDGER}") == [(1, "baseline")]

    applied = migrator.migrate(pg, afasa_db).applied
    assert applied == [
        "0002_devices.sql",
        "0003_device_commands.sql",
        "0004_report_jobs.sql",
        "0005_event_outbox.sql",
        "0006_tenant_rls.sql",
        "0007_tenant_bound_refs.sql",
        "0008_tenant_privacy.sql",
    ]
    assert rls.audit(pg, None, afasa_db.app_role) == []
    assert rls.probe(pg, afasa_db.app_role) == []
    assert migrator.verify(pg, afasa_db) == []
    # The reports CHECKs PostgreSQL named itself were replaced: processing/csv are allowed.
    tenant = query(afasa_db.admin_dsn, "INSERT INTO tenants (name) VALUES ('t') RETURNING id")
    execute(
        afasa_db.admin_dsn,
        "INSERT INTO reports (tenant_id, format, range_from, range_to, status) "
        "VALUES (%s, 'csv', now(), now(), 'processing')",
        (tenant[0][0],),
    )
    # A second baseline is a no-op.
    assert baseline.record(pg, afasa_db).recorded is False


def test_baseline_check_reports_differences_and_records_nothing(afasa_db: SchemaSettings) -> None:
    execute(afasa_db.admin_dsn, "ALTER TABLE tasks DROP COLUMN due_at")
    execute(afasa_db.admin_dsn, "ALTER TABLE cameras ADD COLUMN vendor text")
    execute(afasa_db.admin_dsn, "ALTER TABLE tasks DROP COLUMN tenant_id CASCADE")
    pg = admin(afasa_db)
    report = baseline.check(pg, afasa_db)
    messages = [f.message for f in report.findings]
    assert "tasks.due_at (timestamp with time zone) is missing" in messages
    assert "cameras.vendor (text) is not in the baseline" in messages
    # Only what a later migration uses blocks: 0006 puts a policy on tasks.tenant_id.
    assert [f.message for f in report.blocking] == [
        "0006_tenant_rls.sql needs column tasks.tenant_id, which is missing"
    ]
    with pytest.raises(BlockedError, match=r"tasks\.tenant_id"):
        baseline.record(pg, afasa_db)
    assert inspect(pg).state == "unbaselined"


def test_baseline_on_an_empty_database_points_to_migrate(pg_database: str) -> None:
    with app_role(pg_database) as role, pytest.raises(BlockedError, match="schema migrate"):
        baseline.record(admin(settings_for(pg_database, role)), settings_for(pg_database, role))


def test_init_sql_step_writes_and_commits_the_next_numbered_file(
    afasa_repo: Path, tmp_path: Path
) -> None:
    config = tmp_path / "afasa-ops.toml"
    config.write_text(
        f'[repo]\npath = "{afasa_repo}"\n[database]\n'
        'admin_dsn = "postgresql://postgres@127.0.0.1:5432/postgres"\n'
    )
    ctx = Context(settings=load_settings(config))
    step = InitSql(
        "phase2.schema.init_sql", "phase2", "init", InitSqlParams(message=INIT_COMMIT_MESSAGE)
    )
    pending = step.check(ctx)
    assert pending.state == State.PENDING
    assert "infra/postgres/init/003_afasa_ops_schema.sql" in pending.summary
    step.apply(ctx)
    written = afasa_repo / "infra/postgres/init/003_afasa_ops_schema.sql"
    assert "CREATE TABLE IF NOT EXISTS devices" in written.read_text()
    assert git(afasa_repo, "log", "-1", "--format=%s") == INIT_COMMIT_MESSAGE
    assert git(afasa_repo, "status", "--porcelain") == ""
    assert step.check(ctx).state == State.OK


def test_fresh_volume_init_files_give_the_migrated_schema(afasa_db: SchemaSettings) -> None:
    """The AFASA init SQL then our init file, as the postgres entrypoint runs them on an empty
    volume, leave a database the tool sees as fully migrated and isolated."""
    execute(afasa_db.admin_dsn, init_sql_text(afasa_db.migrations_dir))
    pg = admin(afasa_db)
    plan = migrator.make_plan(pg, afasa_db)
    assert plan.inspection.state == "managed" and plan.pending == [] and plan.drift == []
    assert migrator.verify(pg, afasa_db) == []
    with fresh_database() as other, app_role(other) as role:
        cfg = settings_for(other, role)
        migrator.migrate(admin(cfg), cfg)
        migrated = query(other, COLUMNS)
    assert query(afasa_db.admin_dsn, COLUMNS) == migrated


COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2
"""
