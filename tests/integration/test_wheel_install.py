"""afasa-ops as a user installs it: the wheel, built here, in new venvs outside the source tree.

The wheel is built and installed from a local wheelhouse (compose/app/wheels.sh: the lock's
runtime wheels plus the build backend) with --no-index, so nothing else is fetched. Each
command runs with its working directory outside the checkout and no PYTHONPATH, so only what
the wheel holds can be found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from afasa_ops import __version__
from tests.conftest import make_git_repo
from tests.support.schema_db import app_role, query
from tests.support.services import fresh_database

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "afasa"
WHEELHOUSE = ROOT / "build" / "wheels"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AFASA_OPS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(NO_COLOR="1", **extra)
    return env


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=_clean_env(**env), capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The afasa-ops wheel, built from this tree with the wheelhouse's setuptools only."""
    made = subprocess.run(
        ["bash", str(ROOT / "compose/app/wheels.sh")], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    # From a copy of what a clean clone holds: an in-tree build would reuse build/lib and
    # *.egg-info left by earlier builds, and could ship files the configuration forgets.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "afasa_ops", src / "afasa_ops", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-index",
         "--find-links", str(WHEELHOUSE), "--wheel-dir", str(out), str(src)],
        cwd=out,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    # The build backend's own output: PEP 639 metadata and a clean configuration warn nothing.
    log = build.stdout + build.stderr
    assert "Warning" not in log and "deprecated" not in log.lower(), [
        line for line in log.splitlines() if "arning" in line or "eprecat" in line
    ]
    (found,) = out.glob("afasa_ops-*.whl")
    return found


@dataclass
class Installed:
    venv: Path
    home: Path  # a working directory outside the source tree

    @property
    def exe(self) -> str:
        return str(self.venv / "bin" / "afasa-ops")

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return _run([self.exe, *args], cwd=self.home, **env)


def _install(root: Path, requirement: str) -> Installed:
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = _run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-index",
         "--find-links", str(WHEELHOUSE), requirement],
        cwd=root,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    home = root / "home"
    home.mkdir()
    return Installed(venv, home)


@pytest.fixture(scope="module")
def service(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return _install(tmp_path_factory.mktemp("with-service"), f"{wheel}[service]")


@pytest.fixture(scope="module")
def operator(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return _install(tmp_path_factory.mktemp("operator-only"), str(wheel))


@pytest.fixture
def db() -> Iterator[tuple[str, str]]:
    with fresh_database("afasa_wheel") as dsn, app_role(dsn) as role:
        yield dsn, role


def test_the_installed_package_is_the_wheel_not_this_tree(service: Installed) -> None:
    where = _run(
        [str(service.venv / "bin/python"), "-c", "import afasa_ops; print(afasa_ops.__file__)"],
        cwd=service.home,
    )
    assert where.stdout.startswith(str(service.venv)), where.stdout
    version = service.cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"afasa-ops {__version__}"
    meta = _run(
        [str(service.venv / "bin/python"), "-c",
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
    python = str(operator.venv / "bin/python")
    absent = _run([python, "-c", "import fastapi"], cwd=operator.home)
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
def test_service_commands_without_the_extra_say_what_to_install(
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
