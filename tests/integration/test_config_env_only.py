"""Commands that need no compose file run from AFASA_OPS_* variables alone, as in a container:
no afasa-ops.toml anywhere, the working directory empty. What is missing is named, one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.schema_db import app_role, query

ROOT = Path(__file__).resolve().parents[2]


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AFASA_")}
    base.update(PYTHONPATH=str(ROOT), NO_COLOR="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "afasa_ops", *args],
        cwd=cwd, env=base, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_schema_from_the_environment_alone(tmp_path: Path, pg_database: str) -> None:
    assert not (tmp_path / "afasa-ops.toml").exists()
    with app_role(pg_database) as role:
        env = {"AFASA_OPS_DATABASE_ADMIN_DSN": pg_database, "AFASA_OPS_DATABASE_APP_ROLE": role}
        sql = cli(tmp_path, "schema", "sql", **env)
        assert sql.returncode == 0, sql.stderr
        assert "CREATE TABLE IF NOT EXISTS devices" in sql.stdout
        migrate = cli(tmp_path, "schema", "migrate", **env)
        assert migrate.returncode == 0, migrate.stderr
        status = cli(tmp_path, "schema", "status", **env)
        assert status.returncode == 0 and "applied 0006_tenant_rls" in status.stdout
        assert query(pg_database, "SELECT rolname FROM pg_roles WHERE rolname = %s", (role,))
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_each_command_names_the_variable_it_lacks(tmp_path: Path) -> None:
    cases = {
        ("schema", "status"): "set AFASA_OPS_DATABASE_ADMIN_DSN",
        ("worker", "report", "--port", "0"): "set AFASA_OPS_DATABASE_APP_DSN",
        ("report",): "set AFASA_OPS_REPO_PATH",
        ("serve", "--port", "0"): "AFASA_OPS_API_OIDC_ISSUER_URL",
        # The rest of docs/configuration.md's table.
        ("worker", "commands", "--port", "0"): "set AFASA_OPS_DATABASE_APP_DSN",
        ("worker", "sync", "--once"): "set AFASA_MASTER_KEY_BASE64",
        ("status",): "set AFASA_OPS_REPO_PATH",
        ("doctor",): "set AFASA_OPS_REPO_PATH",
        ("plan", "phase1"): "set AFASA_OPS_REPO_PATH",
        ("run", "phase1", "--yes"): "set AFASA_OPS_REPO_PATH",
        ("rollback", "--yes"): "set AFASA_OPS_REPO_PATH",
        ("patch", "plan", "bundle.zip"): "set AFASA_OPS_REPO_PATH",
    }
    for argv, expected in cases.items():
        proc = cli(tmp_path, *argv)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, (argv, proc.stderr)


def test_report_reads_the_journal_of_the_checkout_the_environment_names(tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    repo.mkdir()
    proc = cli(tmp_path, "report", AFASA_OPS_REPO_PATH=str(repo))
    # Configuration accepted: the checkout has no runs yet, and report says so.
    assert proc.returncode == 2 and "no runs recorded yet" in proc.stderr, proc.stderr


def test_a_reference_to_an_unset_variable_names_that_variable(tmp_path: Path) -> None:
    config = tmp_path / "afasa-ops.toml"
    config.write_text('[database]\nadmin_dsn = { env = "PGADMIN_DSN_NOT_SET" }\n')
    proc = cli(tmp_path, "schema", "status")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: [database] admin_dsn: environment variable PGADMIN_DSN_NOT_SET is not set"
    ), proc.stderr
