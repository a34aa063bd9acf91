"""`services.adopt` on a checkout whose compose file is not compose/'s: other service and
router names, map and list label syntax, extra services; the merged files pass both Composes'
`config`; the change is committed once, converges, and yields to a patch bundle in auto."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from afasa_ops import __version__
from afasa_ops.compose.override import OVERRIDE_FILE
from afasa_ops.compose.wheelhouse import wheel_name
from afasa_ops.config import load_settings
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.model import State
from afasa_ops.steps.services import AdoptParams, ServicesAdopt
from tests.conftest import git
from tests.support.services import unavailable
from tests.unit.test_compose_override import OTHER

MESSAGE = "feat(services): route stubbed endpoints to afasa-ops"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "platform"
    repo.mkdir()
    (repo / "compose.yaml").write_text(OTHER)
    (repo / ".env").write_text("POSTGRES_DB=afasa\nAFASA_APP_PASSWORD=s3cret\n")
    (repo / ".gitignore").write_text(".env\n")
    git(repo, "init", "-q", "-b", "fix/robust-audit")
    git(repo, "config", "user.email", "ops@example.org")
    git(repo, "config", "user.name", "AFASA Ops")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "as found")
    return repo


def context(tmp_path: Path, repo: Path, extra: str = "") -> Context:
    cfg = tmp_path / "afasa-ops.toml"
    cfg.write_text(
        f'[repo]\npath = "{repo}"\n\n[compose]\nfiles = ["compose.yaml"]\n'
        f'project_name = "other"\n\n{extra}'
    )
    return Context(load_settings(cfg), Options(yes=True))


def step(**params: str) -> ServicesAdopt:
    return ServicesAdopt(
        "services.adopt", "phase2", "adopt", AdoptParams(message=MESSAGE, **params)
    )


def test_adopts_commits_once_and_converges(tmp_path: Path, checkout: Path) -> None:
    ctx = context(tmp_path, checkout)
    assert ctx.compose.files == ["compose.yaml"]
    first = step().check(ctx)
    assert first.state is State.PENDING
    assert first.diff and "afasa-ops-api" in first.diff
    assert any(f.code == "services.adopt_choice" and f.data["adopt"] for f in first.findings)
    step().apply(ctx)
    assert git(checkout, "log", "-1", "--format=%s") == MESSAGE
    committed = git(checkout, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(committed) == [
        "afasa-ops-services/.gitignore",
        "afasa-ops-services/Dockerfile",
        OVERRIDE_FILE,
    ]
    assert (
        "COMPOSE_FILE=compose.yaml:docker-compose.afasa-ops.yml" in (checkout / ".env").read_text()
    )
    assert git(checkout, "status", "--porcelain") == ""
    # Every later Compose call of the same run includes the override.
    assert ctx.compose_files() == ["compose.yaml", OVERRIDE_FILE]
    assert ctx.compose.files == ["compose.yaml", OVERRIDE_FILE]
    assert "afasa-ops-api" in ctx.project().services
    # Converged: a second check finds nothing, even with the override in the project.
    assert step().check(ctx).state is State.OK
    # A changed setting is a diff of the override.
    changed = step(base_image="python:3.11.11-slim-bookworm").check(ctx)
    assert changed.state is State.PENDING and changed.diff
    assert "python:3.11.11-slim-bookworm" in changed.diff


def test_rollback_of_the_step_removes_what_it_wrote(tmp_path: Path, checkout: Path) -> None:
    ctx = context(tmp_path, checkout)
    env_before = (checkout / ".env").read_text()
    outcome = step().apply(ctx)
    step().rollback(ctx, outcome)
    assert not (checkout / OVERRIDE_FILE).exists()
    assert (checkout / ".env").read_text() == env_before


def test_auto_yields_to_a_configured_patch_bundle(tmp_path: Path, checkout: Path) -> None:
    ctx = context(tmp_path, checkout, '[patch]\nbundle = "Afasa-main-patched.zip"\n')
    result = step().check(ctx)
    assert result.state is State.OK
    assert "patch bundle" in result.summary
    assert not (checkout / OVERRIDE_FILE).exists()
    always = context(tmp_path, checkout, '[patch]\nbundle = "x.zip"\n[adopt]\nmode = "always"\n')
    assert step().check(always).state is State.PENDING
    never = context(tmp_path, checkout, '[adopt]\nmode = "never"\n')
    assert step().check(never).state is State.OK


@pytest.mark.parametrize("compose", [["docker-compose"], ["docker", "compose"]])
def test_compose_accepts_the_merged_files(
    tmp_path: Path, checkout: Path, compose: list[str]
) -> None:
    if shutil.which(compose[0]) is None:
        unavailable(f"{' '.join(compose)} is not installed: run scripts/docker-engine.sh")
    step().apply(context(tmp_path, checkout))
    # No -f: COMPOSE_FILE in .env is what a plain `docker compose` of an operator reads.
    done = subprocess.run(
        [*compose, "config"], cwd=checkout, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    merged = yaml.safe_load(done.stdout)
    api = merged["services"]["afasa-ops-api"]
    assert "backbone" in api["networks"]
    labels = api["labels"]
    assert labels["platform.stack"] == "prod"
    assert labels["traefik.http.routers.afasa-ops-devices.priority"] == "10000"
    # AFASA's own routers are untouched.
    tb = merged["services"]["devices-svc"]["labels"]
    assert tb["traefik.http.routers.tb.rule"].startswith("PathPrefix(`/api/tb`)")
    assert "grafana" in merged["services"]


def test_afasa_ops_rollback_removes_the_override_and_its_compose_file_entry(
    tmp_path: Path, checkout: Path
) -> None:
    from afasa_ops.commands.rollback import rollback

    git(checkout, "tag", "-a", "pre-audit-2026-12-05", "-m", "pre-audit")
    ctx = context(tmp_path, checkout)
    step().apply(ctx)
    assert "COMPOSE_FILE=" in (checkout / ".env").read_text()
    result = rollback(context(tmp_path, checkout), tag="pre-audit-2026-12-05")
    assert not (checkout / OVERRIDE_FILE).exists()
    assert "COMPOSE_FILE" not in (checkout / ".env").read_text()
    assert result.env_restored
    assert "afasa-ops-api" in result.services_removed
    assert result.removed == []  # nothing was running in this test
    assert git(checkout, "status", "--porcelain") == ""


def test_the_wheelhouse_is_copied_into_the_build_context_not_committed(
    tmp_path: Path, checkout: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "somedep-1.0-py3-none-any.whl").write_bytes(b"wheel")
    ctx = context(tmp_path, checkout, '[adopt]\nwheelhouse = "wheels"\n')
    planned = step().check(ctx)
    assert "copy 1 from the wheelhouse" in planned.summary or planned.diff
    step().apply(ctx)
    context_wheels = checkout / "afasa-ops-services" / "wheels"
    assert (context_wheels / "somedep-1.0-py3-none-any.whl").read_bytes() == b"wheel"
    # afasa-ops itself is packed from the installed code, whatever the wheelhouse holds.
    assert (context_wheels / wheel_name(__version__)).is_file()
    assert git(checkout, "status", "--porcelain") == ""  # ignored by the context's .gitignore
    assert step().check(ctx).state is State.OK
    (wheels / "extra-1.0-py3-none-any.whl").write_bytes(b"x")
    assert "copy 1 from the wheelhouse" in step().check(ctx).summary
    missing = context(tmp_path, checkout, '[adopt]\nwheelhouse = "nowhere"\n')
    blocked = step().check(missing)
    assert blocked.state is State.BLOCKED
    assert "nowhere" in blocked.findings[0].message


def test_without_a_wheelhouse_the_context_holds_an_installable_afasa_ops(
    tmp_path: Path, checkout: Path
) -> None:
    """Packed from the installed afasa-ops, its dependencies downloaded by the host's pip for
    the image's platform: a fresh venv installs afasa-ops[service] from them with no index."""
    ctx = context(tmp_path, checkout)
    planned = step().check(ctx)
    assert "afasa-ops-api" in (planned.diff or "")
    step().apply(ctx)
    context_wheels = checkout / "afasa-ops-services" / "wheels"
    assert step().check(ctx).state is State.OK  # converged: nothing to pack or download
    venv = tmp_path / "image-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links",
         str(context_wheels), f"afasa-ops[service]=={__version__}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    probe = "import afasa_ops.api.app, afasa_ops.workers; print(afasa_ops.__version__)"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.stdout.strip() == __version__, out.stderr[-2000:]
    runbook = venv.glob("lib/python*/site-packages/afasa_ops/data/runbooks/afasa-repair.yaml")
    assert list(runbook), "the packed wheel lacks the runbook"
    # Packed from other code (the stamp says so): the next check repacks it.
    (context_wheels / "afasa-ops.source").write_text("0.0.0 other")
    assert "pack afasa-ops" in step().check(ctx).summary
