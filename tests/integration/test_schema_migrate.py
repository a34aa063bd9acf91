"""Migrations on a fresh database: apply, re-run, render, drift, failure, locking, preflight."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from afasa_ops.errors import BlockedError, DriverError
from afasa_ops.resources import migrations_dir
from afasa_ops.schema import migrator
from afasa_ops.schema.inspect import LEDGER
from afasa_ops.schema.settings import SchemaSettings
from tests.support.schema_db import admin, app_role, copy_migrations, query, settings_for

ALL = sorted(p.name for p in migrations_dir().iterdir() if p.name.endswith(".sql"))


@pytest.fixture
def role(pg_database: str) -> Iterator[str]:
    with app_role(pg_database) as name:
        yield name


@pytest.fixture
def cfg(pg_database: str, role: str) -> SchemaSettings:
    return settings_for(pg_database, role)


def ledger(dsn: str) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in query(dsn, f"SELECT version, checksum FROM {LEDGER} ORDER BY 1")]


def tables(dsn: str) -> set[str]:
    return {r[0] for r in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname='public'")}


def test_fresh_database_gets_every_migration_and_verifies(cfg: SchemaSettings) -> None:
    pg = admin(cfg)
    result = migrator.migrate(pg, cfg)
    assert result.applied == ALL
    assert {"devices", "device_commands", "event_outbox", "reports", LEDGER} <= tables(
        cfg.admin_dsn
    )
    assert [v for v, _ in ledger(cfg.admin_dsn)] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert migrator.verify(pg, cfg) == []
    row = query(cfg.admin_dsn, f"SELECT applied_by, duration_ms FROM {LEDGER} WHERE version = 1")
    assert row[0][0] == "postgres" and row[0][1] >= 0
    pg.close()


def test_rerun_changes_nothing(cfg: SchemaSettings) -> None:
    pg = admin(cfg)
    migrator.migrate(pg, cfg)
    before = query(cfg.admin_dsn, f"SELECT version, applied_at FROM {LEDGER} ORDER BY 1")
    again = migrator.migrate(pg, cfg)
    assert again.applied == []
    assert query(cfg.admin_dsn, f"SELECT version, applied_at FROM {LEDGER} ORDER BY 1") == before
    assert migrator.make_plan(pg, cfg).pending == []
    pg.close()


def test_sql_renders_the_plan_and_changes_nothing(cfg: SchemaSettings) -> None:
    from afasa_ops.schema import service

    text = service.sql(cfg)
    assert "CREATE TABLE IF NOT EXISTS devices" in text
    assert text.count("BEGIN;") == len(ALL) + 1  # each migration, then the role
    assert "INSERT INTO afasa_ops_schema_migrations" in text
    assert f'ALTER ROLE "{cfg.app_role}" LOGIN NOSUPERUSER NOBYPASSRLS' in text
    assert tables(cfg.admin_dsn) == set()
    assert query(cfg.admin_dsn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (cfg.app_role,)) == []


def test_changed_applied_file_blocks_naming_file_and_checksums(
    cfg: SchemaSettings, tmp_path: Path
) -> None:
    mig_dir = copy_migrations(tmp_path / "schema")
    cfg = settings_for(cfg.admin_dsn, cfg.app_role, migrations_dir=mig_dir)
    pg = admin(cfg)
    migrator.migrate(pg, cfg)
    recorded = dict(ledger(cfg.admin_dsn))[2]
    target = mig_dir / "0002_devices.sql"
    target.write_text(target.read_text().replace("kind text,", "kind text, -- edited\n"))
    with pytest.raises(BlockedError) as err:
        migrator.migrate(pg, cfg)
    message = str(err.value)
    assert "0002_devices.sql" in message and recorded in message
    assert migrator.mig_files.parse(target).checksum in message
    pg.close()


def test_failing_migration_rolls_back_fully(cfg: SchemaSettings, tmp_path: Path) -> None:
    mig_dir = copy_migrations(tmp_path / "schema")
    (mig_dir / "0099_broken.sql").write_text(
        "-- a migration with a syntax error on line 3\n"
        "CREATE TABLE half_done (a int);\n"
        "SELEC 1;\n"
        "-- verify:\nSELECT true;\n"
    )
    cfg = settings_for(cfg.admin_dsn, cfg.app_role, migrations_dir=mig_dir)
    pg = admin(cfg)
    with pytest.raises(DriverError) as err:
        migrator.migrate(pg, cfg)
    assert "0099_broken.sql line 3" in str(err.value)
    assert 'syntax error at or near "SELEC"' in str(err.value)
    assert "half_done" not in tables(cfg.admin_dsn)
    assert [v for v, _ in ledger(cfg.admin_dsn)] == [1, 2, 3, 4, 5, 6, 7, 8]
    pg.close()


def test_broken_first_migration_leaves_no_ledger_rows(cfg: SchemaSettings, tmp_path: Path) -> None:
    mig_dir = tmp_path / "schema"
    mig_dir.mkdir()
    (mig_dir / "0001_first.sql").write_text(
        "CREATE TABLE tenants (id uuid PRIMARY KEY);\nCREATE TABLE x (id uuid REFERENCES nope);\n"
        "-- verify:\nSELECT true;\n"
    )
    cfg = settings_for(cfg.admin_dsn, cfg.app_role, migrations_dir=mig_dir)
    with pytest.raises(DriverError, match='relation "nope" does not exist'):
        migrator.migrate(admin(cfg), cfg)
    assert tables(cfg.admin_dsn) <= {LEDGER}
    assert ledger(cfg.admin_dsn) == []


def test_migrate_waits_then_blocks_while_another_holds_the_lock(cfg: SchemaSettings) -> None:
    holder = psycopg.connect(cfg.admin_dsn, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (migrator.LOCK_KEY,))
    quick = settings_for(cfg.admin_dsn, cfg.app_role)
    quick = SchemaSettings(**{**quick.__dict__, "timeouts": type(quick.timeouts)(lock_s=0.5)})
    try:
        with pytest.raises(BlockedError, match="another migrate holds the schema lock"):
            migrator.migrate(admin(quick), quick)
        assert tables(cfg.admin_dsn) == set()
    finally:
        holder.close()
    assert migrator.migrate(admin(cfg), cfg).applied == ALL


def test_two_concurrent_migrates_apply_each_file_once(cfg: SchemaSettings) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        pg = admin(cfg)
        try:
            start.wait()
            results.append(migrator.migrate(pg, cfg).applied)
        except BaseException as exc:
            errors.append(exc)
        finally:
            pg.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(results, key=len) == [[], ALL]
    assert [v for v, _ in ledger(cfg.admin_dsn)] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_missing_extension_blocks_before_any_change(cfg: SchemaSettings) -> None:
    available = query(cfg.admin_dsn, "SELECT 1 FROM pg_available_extensions WHERE name='vector'")
    strict = settings_for(cfg.admin_dsn, cfg.app_role, vector="require")
    pg = admin(strict)
    if available:
        # A server with pgvector: the baseline creates the extension and the embedding column.
        migrator.migrate(pg, strict)
        cols = query(
            cfg.admin_dsn,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'detections'::regclass AND attname = 'embedding'",
        )
        assert cols == [("vector(512)",)]
        return
    major = query(cfg.admin_dsn, "SELECT current_setting('server_version_num')::int / 10000")[0][0]
    with pytest.raises(BlockedError) as err:
        migrator.migrate(pg, strict)
    assert '"vector"' in str(err.value)
    assert f"postgresql-{major}-pgvector" in str(err.value)
    assert tables(cfg.admin_dsn) == set()
    # auto (the default) on the same server: no pgvector, so no embedding column, full migrate.
    assert migrator.migrate(admin(cfg), cfg).applied == ALL
    assert (
        query(
            cfg.admin_dsn,
            "SELECT 1 FROM pg_attribute WHERE attrelid='detections'::regclass AND attname='embedding'",
        )
        == []
    )


def test_required_extension_missing_blocks_naming_it(cfg: SchemaSettings, tmp_path: Path) -> None:
    mig_dir = copy_migrations(tmp_path / "schema")
    extra = "-- requires: afasa_no_such_extension\nCREATE TABLE later (a int);\n"
    (mig_dir / "0099_needs_ext.sql").write_text(extra + "-- verify:\nSELECT true;\n")
    cfg = settings_for(cfg.admin_dsn, cfg.app_role, migrations_dir=mig_dir)
    with pytest.raises(BlockedError, match='lacks the extension "afasa_no_such_extension"'):
        migrator.migrate(admin(cfg), cfg)
    assert tables(cfg.admin_dsn) == set()


def test_database_with_afasa_tables_but_no_tenants_is_refused(cfg: SchemaSettings) -> None:
    from afasa_ops.schema import baseline

    query_sql = "CREATE TABLE users (id uuid PRIMARY KEY, tenant_id uuid NOT NULL)"
    with psycopg.connect(cfg.admin_dsn, autocommit=True) as conn:
        conn.execute(query_sql)
    with pytest.raises(BlockedError, match="no tenants table"):
        migrator.migrate(admin(cfg), cfg)
    with pytest.raises(BlockedError, match="no tenants table"):
        baseline.record(admin(cfg), cfg)
    assert tables(cfg.admin_dsn) == {"users"}


def test_unreachable_database_message_masks_the_password(role: str) -> None:
    from tests.support.services import free_port

    dsn = f"postgresql://postgres:Sup3rSecretPw@127.0.0.1:{free_port()}/afasa"
    cfg = settings_for(dsn, role)
    with pytest.raises(DriverError) as err:
        migrator.migrate(admin(cfg), cfg)
    assert "cannot reach PostgreSQL at postgres@127.0.0.1" in str(err.value)
    assert "Sup3rSecretPw" not in str(err.value)


def test_wrong_credentials_are_named_and_masked(pg_database: str, role: str) -> None:
    dsn = pg_database.replace("postgres@", "afasa_nobody_x:An0therSecret@")
    cfg = settings_for(dsn, role)
    with pytest.raises(DriverError) as err:
        migrator.migrate(admin(cfg), cfg)
    assert "refused the credentials" in str(err.value)
    assert "An0therSecret" not in str(err.value)


def test_sessions_carry_the_configured_timeouts(pg_database: str) -> None:
    from afasa_ops.infra.postgres import Postgres, Timeouts

    pg = Postgres(pg_database, Timeouts(lock_s=3, statement_s=1))
    assert (pg.scalar("SHOW lock_timeout"), pg.scalar("SHOW statement_timeout")) == ("3s", "1s")
    with pytest.raises(DriverError, match="statement_timeout"):
        pg.rows("SELECT pg_sleep(3)")
    pg.close()
