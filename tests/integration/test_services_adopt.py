"""`services.adopt` on a checkout whose compose file is not compose/'s: other service and
router names, map and list label syntax, extra services; the merged files pass both Composes'
`config`; the change is committed once, converges, and yields to a patch bundle in auto."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from afasa_ops.compose.override import OVERRIDE_FILE
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
    # Every Compose call of the run now includes the override.
    assert ctx.compose_files() == ["compose.yaml", OVERRIDE_FILE]
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
    (wheels / "afasa_ops-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    ctx = context(tmp_path, checkout, '[adopt]\nwheelhouse = "wheels"\n')
    assert not any(f.code == "services.no_wheelhouse" for f in step().check(ctx).findings)
    step().apply(ctx)
    copied = checkout / "afasa-ops-services" / "wheels" / "afasa_ops-0.1.0-py3-none-any.whl"
    assert copied.read_bytes() == b"wheel"
    assert git(checkout, "status", "--porcelain") == ""  # ignored by the context's .gitignore
    assert step().check(ctx).state is State.OK
    (wheels / "extra-1.0-py3-none-any.whl").write_bytes(b"x")
    assert step().check(ctx).state is State.PENDING
    missing = context(tmp_path, checkout, '[adopt]\nwheelhouse = "nowhere"\n')
    assert step().check(missing).state is State.BLOCKED
    unset = step().check(context(tmp_path, checkout))
    assert any(f.code == "services.no_wheelhouse" for f in unset.findings)
