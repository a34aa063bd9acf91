"""afasa-ops as a user installs it: the wheel, built here, in new venvs outside the source tree
(tests/support/wheel.py says how)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from afasa_ops import __version__
from tests.conftest import make_git_repo
from tests.support.schema_db import app_role, query
from tests.support.services import fresh_database
from tests.support.wheel import ROOT, Installed, build_wheel, install, run

EXAMPLE = ROOT / "examples" / "afasa"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The afasa-ops wheel, built from this tree with the wheelhouse's setuptools only."""
    found, log = build_wheel(tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist"))
    # The build backend's own output: PEP 639 metadata and a clean configuration warn nothing.
    assert "Warning" not in log and "deprecated" not in log.lower(), [
        line for line in log.splitlines() if "arning" in line or "eprecat" in line
    ]
    # The name docs/install.md gives (tests/unit/test_install_docs.py).
    assert found.name == f"afasa_ops-{__version__}-py3-none-any.whl"
    return found


@pytest.fixture(scope="module")
def service(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return install(tmp_path_factory.mktemp("with-service"), f"{wheel}[service]")


@pytest.fixture(scope="module")
def operator(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return install(tmp_path_factory.mktemp("operator-only"), str(wheel))


@pytest.fixture
def db() -> Iterator[tuple[str, str]]:
    with fresh_database("afasa_wheel") as dsn, app_role(dsn) as role:
        yield dsn, role


def test_the_installed_package_is_the_wheel_not_this_tree(service: Installed) -> None:
    where = run(
        [service.python, "-c", "import afasa_ops; print(afasa_ops.__file__)"],
        cwd=service.home,
    )
    assert where.stdout.startswith(str(service.venv)), where.stdout
    version = service.cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"afasa-ops {__version__}"
    meta = run(
        [service.python, "-c",
         "from importlib.metadata import metadata as m; d = m('afasa-ops');"
         "print(d['Version'], d['License-Expression'])"],
        cwd=service.home,
    )  # fmt: skip
    assert meta.stdout.split() == [__version__, "MIT"]


def test_init_plan_schema_and_worker_help_from_the_wheel(
    service: Installed, db: tuple[str, str]
) -> None:
    dsn, role = db
    repo = make_git_repo(EXAMPLE, service.home / "afasa2.0")
    init = service.cli("init", str(repo))
    assert init.returncode == 0, init.stderr
    assert (service.home / "afasa-ops.toml").exists()

    plan = service.cli("plan", "phase1")
    assert plan.returncode == 3, plan.stderr
    assert "phase1.traefik.pin" in plan.stdout and "no such runbook" not in plan.stderr

    env = {"AFASA_OPS_DATABASE_ADMIN_DSN": dsn, "AFASA_OPS_DATABASE_APP_ROLE": role}
    sql = service.cli("schema", "sql", **env)
    assert sql.returncode == 0, sql.stderr
    assert "-- 0006_tenant_rls.sql" in sql.stdout
    assert "CREATE TABLE IF NOT EXISTS devices" in sql.stdout

    migrate = service.cli("schema", "migrate", "--json", **env)
    assert migrate.returncode == 0, migrate.stderr
    assert '"0001_baseline.sql"' in migrate.stdout and '"0006_tenant_rls.sql"' in migrate.stdout
    assert query(dsn, "SELECT count(*) FROM afasa_ops_schema_migrations")[0][0] >= 6

    help_ = service.cli("worker", "--help")
    assert help_.returncode == 0 and "report" in help_.stdout and "sync" in help_.stdout


def test_the_operator_install_plans_and_migrates_without_the_service_stack(
    operator: Installed, db: tuple[str, str]
) -> None:
    dsn, role = db
    python = operator.python
    absent = run([python, "-c", "import fastapi"], cwd=operator.home)
    assert absent.returncode != 0  # the service dependencies really are not there

    repo = make_git_repo(EXAMPLE, operator.home / "afasa2.0")
    assert operator.cli("init", str(repo)).returncode == 0
    plan = operator.cli("plan", "phase1")
    assert plan.returncode == 3, plan.stderr
    env = {"AFASA_OPS_DATABASE_ADMIN_DSN": dsn, "AFASA_OPS_DATABASE_APP_ROLE": role}
    migrate = operator.cli("schema", "migrate", **env)
    assert migrate.returncode == 0, migrate.stderr
    status = operator.cli("schema", "status", **env)
    assert status.returncode == 0 and "applied 0006_tenant_rls" in status.stdout
    assert operator.cli("worker", "--help").returncode == 0


@pytest.mark.parametrize("argv", [["serve"], ["worker", "report"], ["worker", "sync", "--once"]])
def test_service_commands_without_the_extra_say_what_toinstall(
    operator: Installed, argv: list[str]
) -> None:
    proc = operator.cli(*argv)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "pip install 'afasa-ops[service]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_nothing_of_the_checkout_was_needed(service: Installed) -> None:
    """The venv holds its own copy of the shipped files (a sanity check on the fixture)."""
    site = next(service.venv.glob("lib/python*/site-packages/afasa_ops"))
    assert (site / "data/runbooks/afasa-repair.yaml").is_file()
    assert sorted(p.name for p in (site / "data/migrations").glob("*.sql"))[0] == (
        "0001_baseline.sql"
    )


def test_the_command_server_of_an_installed_wheel_starts_again_on_new_code(
    operator: Installed,
) -> None:
    """`afasa-ops daemon` from the wheel: commands go through it, and a server whose code
    changed under it (an edited module, a package installed or upgraded) hands the command
    back and starts again on the new code, instead of running the old."""
    import json

    cache = str(operator.home / "cache")

    def daemon(*args: str) -> dict[str, object]:
        proc = operator.cli("daemon", *args, "--json", XDG_CACHE_HOME=cache)
        assert proc.returncode == 0, proc.stderr
        doc: dict[str, object] = json.loads(proc.stdout)
        return doc

    first = daemon("start")
    assert first["running"] is True
    try:
        assert str(first["socket"]).startswith(cache)
        version = operator.cli("--version", XDG_CACHE_HOME=cache)
        assert version.stdout.strip() == f"afasa-ops {__version__}"
        # A data file no module imports: the server's view of its code covers the files a
        # wheel holds, as an upgrade rewrites them (the runbook, migrations), not only modules.
        (runbook,) = operator.venv.glob("lib/python*/site-packages/afasa_ops/data/runbooks/*.yaml")
        runbook.touch()
        assert daemon("status")["fresh"] is False
        after = operator.cli("--version", XDG_CACHE_HOME=cache)
        assert after.returncode == 0 and after.stdout.strip() == f"afasa-ops {__version__}"
        for _ in range(600):  # the server execs itself (same pid) on the new code
            now = daemon("status")
            if now["running"] and now["started_at"] != first["started_at"]:
                break
            __import__("time").sleep(0.05)
        assert now["fresh"] is True and now["started_at"] != first["started_at"]
    finally:
        daemon("stop")
