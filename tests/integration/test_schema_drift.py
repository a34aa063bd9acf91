"""Baseline a database whose init SQL drifted from 0001_baseline.sql (another AFASA version):
only what a later migration uses can block; every other difference is adopted and recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from afasa_ops.cli import app as cli_app
from afasa_ops.errors import BlockedError
from afasa_ops.schema import baseline, migrations, migrator
from afasa_ops.schema.inspect import LEDGER, inspect
from tests.support.schema_db import (
    AFASA_RLS_SQL,
    admin,
    app_role,
    copy_migrations,
    execute,
    mutated_init_sql,
    query,
    settings_for,
)

# Tables no later migration touches beyond tenant_id: their other columns may differ freely.
DRIFTED = mutated_init_sql(
    # dropped
    ("  status text NOT NULL DEFAULT 'open', due_at timestamptz,", "  status text NOT NULL DEFAULT 'open',"),
    # renamed
    ("email text NOT NULL,\n  role text", "email text NOT NULL,\n  user_role text"),
    # retyped
    ("name text NOT NULL, rtsp_url text,", "name text NOT NULL, rtsp_url varchar(512),"),
    # an extra column and an extra table, as newer AFASA versions have
    ("key text NOT NULL, value jsonb);", "key text NOT NULL, value jsonb, updated_at timestamptz);\n"
     "CREATE TABLE vision_models (id uuid PRIMARY KEY, name text);"),
)  # fmt: skip


def test_drift_in_tables_no_migration_needs_is_adopted_then_migrate_applies(
    pg_database: str,
) -> None:
    execute(pg_database, DRIFTED + AFASA_RLS_SQL)
    with app_role(pg_database) as role:
        cfg = settings_for(pg_database, role)
        pg = admin(cfg)
        report = baseline.record(pg, cfg)
        assert report.recorded and report.blocking == []
        drift = {f.message for f in report.drift}
        assert {
            "tasks.due_at (timestamp with time zone) is missing",
            "users.role (text) is missing",
            "users.user_role (text) is not in the baseline",
            "cameras.rtsp_url is character varying(512), expected text",
            "tenant_settings.updated_at (timestamp with time zone) is not in the baseline",
            "table vision_models is not in the baseline",
        } <= drift, drift
        # Recorded with the baseline in the ledger, exactly as reported.
        (adopted,) = query(pg_database, f"SELECT adopted FROM {LEDGER} WHERE version = 1")[0]
        assert {d["message"] for d in adopted} == drift
        assert {"code", "severity", "table"} <= set(adopted[0])

        applied = migrator.migrate(pg, cfg).applied
        assert applied == [m.path.name for m in migrations.load()[1:]]
        assert migrator.verify(pg, cfg) == []

        # schema status shows what was adopted (from the variables alone, no config file).
        result = CliRunner().invoke(
            cli_app, ["schema", "status"], env={"AFASA_OPS_DATABASE_ADMIN_DSN": pg_database,
                                                "AFASA_OPS_DATABASE_APP_ROLE": role},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"adopted {len(drift)} difference(s) from the baseline" in result.stdout
        assert "db.baseline_column_missing: tasks.due_at" in result.stdout
        json_out = CliRunner().invoke(
            cli_app, ["schema", "status", "--json"],
            env={"AFASA_OPS_DATABASE_ADMIN_DSN": pg_database},
        )  # fmt: skip
        assert '"code": "db.baseline_extra_table"' in json_out.stdout


def test_a_column_a_later_migration_needs_blocks_naming_it_and_the_migration(
    pg_database: str,
) -> None:
    missing = mutated_init_sql(
        # 0004_report_jobs constrains reports.format
        ("  format text NOT NULL CHECK (format IN ('pdf', 'xlsx')),\n", ""),
        # 0006_tenant_rls puts a policy on telegram_links.tenant_id
        (
            "CREATE TABLE telegram_links (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),\n"
            "  tenant_id uuid NOT NULL REFERENCES tenants(id), chat_id",
            "CREATE TABLE telegram_links (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),\n"
            "  chat_id",
        ),
    )
    execute(pg_database, missing)
    with app_role(pg_database) as role:
        cfg = settings_for(pg_database, role)
        pg = admin(cfg)
        with pytest.raises(BlockedError) as err:
            baseline.record(pg, cfg)
        message = str(err.value)
        assert "0004_report_jobs.sql needs column reports.format, which is missing" in message
        assert "0006_tenant_rls.sql needs column telegram_links.tenant_id" in message
        assert "nothing recorded" in message and "\n" not in message
        assert inspect(pg).state == "unbaselined"
        # --check says the same and exits 4 (blocked).
        result = CliRunner().invoke(
            cli_app, ["schema", "baseline", "--check"],
            env={"AFASA_OPS_DATABASE_ADMIN_DSN": pg_database},
        )  # fmt: skip
        assert result.exit_code == 4 and "reports.format" in result.output


def test_a_migration_that_declares_nothing_is_taken_to_need_the_whole_baseline(
    pg_database: str, tmp_path: Path
) -> None:
    mig_dir = copy_migrations(tmp_path / "migrations")
    extra = mig_dir / "0099_custom.sql"
    extra.write_text(
        "-- a site's own migration, no -- depends: line\nSELECT 1;\n-- verify:\nSELECT true\n"
    )
    execute(pg_database, DRIFTED)
    with app_role(pg_database) as role:
        cfg = settings_for(pg_database, role, migrations_dir=mig_dir)
        with pytest.raises(BlockedError) as err:
            baseline.record(admin(cfg), cfg)
    assert "0099_custom.sql needs column tasks.due_at, which is missing (it declares no" in str(
        err.value
    )
