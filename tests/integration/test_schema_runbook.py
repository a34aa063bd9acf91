"""Phase 2 of the runbook on an AFASA checkout and an AFASA init-SQL database, twice."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from afasa_ops.cli import app as cli_app
from tests.conftest import git
from tests.support.runbook import INIT_COMMIT_MESSAGE
from tests.support.schema_db import AFASA_INIT_SQL, AFASA_RLS_SQL, app_role, execute, query


def run(config: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli_app, ["-c", str(config), *args, "--json"])
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(result.output) from None


def test_phase2_converges_then_reruns_quietly(
    pg_database: str, afasa_repo: Path, tmp_path: Path
) -> None:
    execute(pg_database, AFASA_INIT_SQL + AFASA_RLS_SQL)
    with app_role(pg_database) as role:
        config = tmp_path / "afasa-ops.toml"
        config.write_text(
            f'[repo]\npath = "{afasa_repo}"\n[database]\nadmin_dsn = "{pg_database}"\n'
            f'app_role = "{role}"\n'
        )
        code, plan = run(config, "plan", "phase2")
        assert code == 3, plan
        states = {s["id"]: s["status"] for s in plan["steps"]}
        assert states["phase2.schema.baseline"] == "pending"
        # A read-only audit changes nothing: plan lists it as will_run, not as a change.
        assert states["phase2.schema.rls_audit"] == "will_run"

        code, first = run(config, "run", "phase2", "--yes")
        assert code == 0, first
        changed = {s["id"] for s in first["steps"] if s["status"] == "changed"}
        assert {
            "phase2.schema.baseline",
            "phase2.schema.migrate",
            "phase2.schema.init_sql",
        } <= changed
        # The init SQL commit, then (no patch bundle: [adopt] mode auto) the adoption override.
        subjects = git(afasa_repo, "log", "-2", "--format=%s").splitlines()
        assert subjects == [
            "feat(services): route stubbed endpoints to afasa-ops",
            INIT_COMMIT_MESSAGE,
        ]
        assert query(pg_database, "SELECT count(*) FROM afasa_ops_schema_migrations") == [(8,)]

        code, second = run(config, "run", "phase2", "--yes")
        assert code == 0, second
        schema_steps = [s for s in second["steps"] if s["id"].startswith("phase2.schema.")]
        assert len(schema_steps) == 6
        assert {s["status"] for s in schema_steps} == {"ok"}
        adopt = {s["id"]: s["status"] for s in second["steps"]}["phase2.services.adopt"]
        assert adopt == "ok"  # converged: the override is as wanted

        code, doctor = run(config, "doctor", "db")
        assert code == 0, doctor
