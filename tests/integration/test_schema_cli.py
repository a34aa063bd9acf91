"""`afasa-ops schema ...` end to end through the CLI: exit codes, JSON, passwords never shown."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from afasa_ops.cli import app as cli_app
from afasa_ops.schema.inspect import LEDGER
from tests.support.schema_db import AFASA_INIT_SQL, app_role, execute, query

SECRET = "TopS3cretPw"


@pytest.fixture
def env_config(pg_database: str, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], str]]:
    """A config whose admin DSN carries a password (trust auth ignores it), from the env."""
    with app_role(pg_database) as role:
        dsn = pg_database.replace("postgres@", f"postgres:{SECRET}@")
        config = tmp_path / "afasa-ops.toml"
        config.write_text(
            f'[repo]\npath = "{tmp_path}"\n[database]\n'
            'admin_dsn = { env = "SCHEMA_TEST_DSN" }\n'
            f'app_role = "{role}"\napp_password = {{ env = "SCHEMA_TEST_APP_PW" }}\n'
        )
        yield config, {"SCHEMA_TEST_DSN": dsn, "SCHEMA_TEST_APP_PW": "App-Pw-0987"}, pg_database


def invoke(config: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["-c", str(config), "schema", *args], env=env)
    return result.exit_code, result.output


def test_status_sql_migrate_verify(env_config: tuple[Path, dict[str, str], str]) -> None:
    config, env, dsn = env_config
    code, out = invoke(config, env, "status", "--json")
    assert code == 3 and json.loads(out)["state"] == "fresh"
    code, out = invoke(config, env, "sql")
    assert code == 0 and "CREATE TABLE IF NOT EXISTS event_outbox" in out
    assert "PASSWORD '***'" in out and "App-Pw-0987" not in out
    assert query(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    code, out = invoke(config, env, "migrate", "--json")
    assert code == 0 and "0006_tenant_rls.sql" in json.loads(out)["applied"]
    code, out = invoke(config, env, "verify")
    assert code == 0 and "every migration applied and verified" in out
    code, out = invoke(config, env, "status")
    assert code == 0 and "applied 0002_devices" in out
    assert SECRET not in out


def test_verify_fails_when_a_verify_query_is_false(
    env_config: tuple[Path, dict[str, str], str],
) -> None:
    config, env, dsn = env_config
    assert invoke(config, env, "migrate")[0] == 0
    execute(dsn, "DROP INDEX device_commands_device_idx")
    code, out = invoke(config, env, "verify")
    assert code == 1 and "db.migration_unverified" in out and "0003_device_commands.sql" in out


def test_baseline_command_on_an_init_sql_database(
    env_config: tuple[Path, dict[str, str], str],
) -> None:
    config, env, dsn = env_config
    execute(dsn, AFASA_INIT_SQL)
    code, out = invoke(config, env, "migrate")
    assert code == 4 and "schema baseline" in out
    code, out = invoke(config, env, "baseline", "--check")
    assert code == 0 and "matches the baseline" in out
    assert query(dsn, "SELECT to_regclass(%s) IS NULL", (LEDGER,)) == [(True,)]
    code, out = invoke(config, env, "baseline")
    assert code == 0 and "recorded 0001_baseline.sql as the baseline" in out
    assert invoke(config, env, "migrate")[0] == 0


def test_unreachable_database_exits_1_with_the_password_masked(tmp_path: Path) -> None:
    from tests.support.services import free_port

    config = tmp_path / "afasa-ops.toml"
    config.write_text(f'[repo]\npath = "{tmp_path}"\n[database]\nadmin_dsn = {{ env = "X_DSN" }}\n')
    env = {"X_DSN": f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/afasa"}
    code, out = invoke(config, env, "migrate")
    assert code == 1
    assert "cannot reach PostgreSQL at postgres@127.0.0.1" in out and SECRET not in out


def test_missing_admin_dsn_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "afasa-ops.toml"
    config.write_text(f'[repo]\npath = "{tmp_path}"\n')
    code, out = invoke(config, {}, "status")
    assert code == 2 and "[database] admin_dsn is not set" in out
    assert "set AFASA_OPS_DATABASE_ADMIN_DSN" in out


def test_two_migrate_processes_at_once(env_config: tuple[Path, dict[str, str], str]) -> None:
    import os

    config, env, dsn = env_config
    full_env = {**os.environ, **env}
    argv = [sys.executable, "-m", "afasa_ops", "-c", str(config), "schema", "migrate", "--json"]
    procs = [
        subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    applied = sorted(len(json.loads(out)["applied"]) for out, _ in outs)
    assert applied == [0, 8]
    assert query(dsn, f"SELECT count(*), count(DISTINCT version) FROM {LEDGER}") == [(8, 8)]


def test_doctor_db_without_an_admin_dsn_is_skipped_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "afasa-ops.toml"
    config.write_text(
        f'[repo]\npath = "{tmp_path}"\n[database]\nadmin_dsn = {{ env = "UNSET_DSN_X" }}\n'
    )
    result = CliRunner().invoke(cli_app, ["-c", str(config), "doctor", "db", "--json"], env={})
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    assert {s["status"] for s in steps} == {"skipped"}
    summary = steps[0]["summary"]
    assert "[database] admin_dsn: environment variable UNSET_DSN_X is not set" in summary
