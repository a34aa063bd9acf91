"""Migrations under faults: a `schema migrate` killed with kill -9 mid-migration does not keep
its locks (the rerun goes through), and a lock held by another session is "blocked" (rc 4)
naming that session, never a hint to edit the migration file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.support.pg_cluster import pg_cluster
from tests.support.platform_db import PlatformDb, platform_database
from tests.support.workers import admin_scalar, wait_for

ROOT = Path(__file__).resolve().parents[2]

SLOW = """-- afasa-ops migration: a migration that takes its time (a big table rewrite)
CREATE TABLE slow_rewrite (x int);
ALTER TABLE devices ADD COLUMN note text;
SELECT pg_sleep({sleep});

-- verify:
SELECT to_regclass('slow_rewrite') IS NOT NULL
"""


def migrations_with(tmp: Path, body: str) -> Path:
    target = tmp / "migrations"
    target.mkdir(exist_ok=True)
    for src in sorted((ROOT / "afasa_ops" / "data" / "migrations").glob("*.sql")):
        shutil.copy(src, target / src.name)
    (target / "0099_slow_rewrite.sql").write_text(body)
    return target


def config(tmp: Path, db: PlatformDb, migrations: Path, lock_timeout_s: float) -> Path:
    path = tmp / "afasa-ops.toml"
    path.write_text(
        '[repo]\npath = "."\n[database]\n'
        f'admin_dsn = "{db.admin_dsn}"\napp_role = "{db.app_role}"\n'
        f'migrations_dir = "{migrations}"\nlock_timeout_s = {lock_timeout_s}\nvector = "off"\n'
    )
    return path


def migrate(cfg: Path, *, wait: bool = True) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "afasa_ops", "--config", str(cfg), "schema", "migrate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if wait:
        proc.wait(timeout=120)
    return proc


def test_kill_9_of_a_migrate_mid_migration_leaves_no_lock_behind(tmp_path: Path) -> None:
    with pg_cluster() as pg, platform_database("afasa_mig", server_dsn=pg.admin_dsn) as db:
        migrations = migrations_with(tmp_path, SLOW.format(sleep=300))
        cfg = config(tmp_path, db, migrations, lock_timeout_s=5)
        first = migrate(cfg, wait=False)
        # Mid-migration: its session holds the schema lock and ACCESS EXCLUSIVE on devices.
        wait_for(
            lambda: admin_scalar(
                db.admin_dsn,
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> "
                "pg_backend_pid()",
                ("%pg_sleep%",),
            ),
            60,
            "the migration to be running",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # The rerun (with the file made quick) must not find the dead client's locks.
        (migrations / "0099_slow_rewrite.sql").write_text(SLOW.format(sleep=0))
        rerun = migrate(cfg)
        out = rerun.stdout.read() if rerun.stdout else ""
        assert rerun.returncode == 0, out
        assert "0099_slow_rewrite.sql" in out
        with psycopg.connect(db.admin_dsn) as conn:
            assert conn.execute(
                "SELECT max(version) FROM afasa_ops_schema_migrations"
            ).fetchone() == (99,)


def test_a_lock_held_by_another_session_is_blocked_naming_it(tmp_path: Path) -> None:
    with platform_database("afasa_mig") as db:
        migrations = migrations_with(tmp_path, SLOW.format(sleep=0))
        cfg = config(tmp_path, db, migrations, lock_timeout_s=1)
        holder = psycopg.connect(db.admin_dsn, application_name="report-export-job")
        try:
            holder.execute("LOCK TABLE devices IN ACCESS SHARE MODE")
            pid = holder.info.backend_pid
            run = migrate(cfg)
            out = run.stdout.read() if run.stdout else ""
        finally:
            holder.close()
        assert run.returncode == 4, out
        assert f"pid {pid}" in out and "report-export-job" in out, out
        assert "AccessShareLock on devices" in out and "since" in out
        assert "fix " not in out  # not the file's fault
        rerun = migrate(cfg)  # the holder is gone: it goes through
        assert rerun.returncode == 0, rerun.stdout.read() if rerun.stdout else ""
