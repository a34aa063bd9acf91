"""Phase 3 against the real Docker engine and Compose: a tiny project of local images, with
Compose v1 (docker-compose) and v2 (the docker compose plugin) alike."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from afasa_ops.config import load_settings
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.runbook.model import Status
from afasa_ops.runbook.runner import Runner, Selection
from tests.conftest import git
from tests.support import docker_fixtures as dx
from tests.support.services import unavailable

IMAGE = "afasa-local/debian-python:bookworm"

COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["python3", "-m", "http.server", "8000"]
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')"]
      interval: 1s
      timeout: 3s
      retries: 60
  api:
    image: {IMAGE}
    command: ["sh", "-c", "mkdir -p /srv && echo ok > /srv/readyz && cd /srv && sleep 2 && exec python3 -m http.server 8000"]
  built:
    build: {{context: ., dockerfile: Dockerfile}}
    command: ["sleep", "infinity"]
"""

SICK = f"""
  sick:
    image: {IMAGE}
    command: ["sleep", "infinity"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      timeout: 2s
      retries: 1
"""

RUNBOOK = """
name: phase3-test
phases:
  - id: phase3
    title: Rebuild and boot
    steps:
      - id: pull
        kind: compose.pull
        title: Pull images
      - id: up
        kind: compose.up
        title: Build and start
      - id: wait
        kind: compose.wait
        title: Wait until healthy
        params:
          timeout_s: 45
"""


def docker_ready() -> None:
    if shutil.which("docker") is None:
        unavailable("docker is not installed")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        unavailable("the Docker engine does not answer `docker info`")
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode:
        unavailable(f"local image {IMAGE} missing: run compose/images/build.sh --only base")


@pytest.fixture(params=["v1", "v2"])
def compose(request: pytest.FixtureRequest) -> str:
    """`[compose] command` of the run: every test runs with Compose v1 and v2."""
    docker_ready()
    return dx.require_compose(str(request.param))


def ps_name(compose: str, service: str) -> str:
    """How `docker ps` names a service's first container: v1 `p_web_1`, v2 `p-web-1`."""
    return f"_{service}_1" if compose == dx.COMPOSE_COMMANDS["v1"] else f"-{service}-1"


@pytest.fixture
def project(tmp_path: Path, compose: str) -> Iterator[Path]:
    repo = tmp_path / f"p3{uuid.uuid4().hex[:8]}"
    repo.mkdir()
    (repo / "Dockerfile").write_text(f"FROM {IMAGE}\nLABEL afasa.test=phase3\n")
    git(repo, "init", "-q", "-b", "main")
    (tmp_path / "runbook.yaml").write_text(RUNBOOK)
    (tmp_path / "compose-command").write_text(compose)
    yield repo
    subprocess.run(
        [*compose.split(), "down", "-v", "--rmi", "local", "-t", "1"],
        cwd=repo,
        capture_output=True,
    )


def _commit(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@example.org", "-c", "user.name=T", "commit", "-q", "-m", "stack")


def _run(repo: Path, tmp_path: Path, compose: str) -> tuple[Runner, object]:
    (repo / "docker-compose.yml").write_text(compose)
    if git(repo, "status", "--porcelain"):
        _commit(repo)
    config = tmp_path / "afasa-ops.toml"
    config.write_text(
        f'[repo]\npath = "{repo}"\n[runbook]\npath = "{tmp_path / "runbook.yaml"}"\n'
        f'[compose]\ncommand = "{(tmp_path / "compose-command").read_text()}"\n'
        "[phase3]\npoll_initial_s = 0.5\npoll_max_s = 2\n"
        '[[services]]\nname = "api"\nhealth = "/readyz"\n'
    )
    settings = load_settings(config)
    said: list[str] = []
    ctx = Context(settings, Options(yes=True), say=said.append)
    runner = Runner(load_runbook(settings.runbook_path()), ctx)
    result = runner.run(Selection(["phase3"]))
    return runner, (result, said)


def test_phase3_boots_and_waits_for_health(project: Path, tmp_path: Path, compose: str) -> None:
    _, (result, _said) = _run(project, tmp_path, COMPOSE)  # type: ignore[misc]
    by_id = {s.id: s for s in result.steps}
    assert result.status == "ok", result.message
    # Only `web` and `api` have images to pull; both are local, so nothing is pulled.
    assert by_id["phase3.pull"].status == Status.OK
    assert by_id["phase3.pull"].summary == f"images present for 2 services: {IMAGE}"
    assert by_id["phase3.up"].status == Status.CHANGED
    wait = by_id["phase3.wait"]
    assert wait.status == Status.OK
    assert wait.verification
    health = next(f.data["health"] for f in wait.findings if f.code == "compose.health")
    assert health["web"] == "healthy (healthcheck)"
    assert health["api"] == "readyz 200 (readyz)"
    assert health["built"] == "running (running)"
    ps = next(f.message for f in wait.findings if f.code == "compose.ps")
    assert ps_name(compose, "web") in ps
    # A second run is quiet: Compose recreates nothing.
    _, (again, _) = _run(project, tmp_path, COMPOSE)  # type: ignore[misc]
    assert again.status == "ok"
    assert {s.id: s.status for s in again.steps}["phase3.up"] == Status.OK
    # And check() knows it without running `up`: definitions and build inputs are current.
    runner, _ = _run(project, tmp_path, COMPOSE)
    planned = runner.plan(Selection(["phase3"]))
    assert {s.id: s.status for s in planned.steps}["phase3.up"] == Status.OK
    # A commit that touches the build context makes the built service out of date.
    (project / "Dockerfile").write_text(f"FROM {IMAGE}\nLABEL afasa.test=phase3-changed\n")
    _commit(project)
    planned = runner.plan(Selection(["phase3"]))
    up = {s.id: s for s in planned.steps}["phase3.up"]
    assert up.status == Status.PENDING
    assert any("build context changed" in f.message for f in up.findings)


def test_phase3_fails_naming_the_unhealthy_service(
    project: Path, tmp_path: Path, compose: str
) -> None:
    runbook = (tmp_path / "runbook.yaml").read_text().replace("timeout_s: 45", "timeout_s: 8")
    (tmp_path / "runbook.yaml").write_text(runbook)
    _, (result, said) = _run(project, tmp_path, COMPOSE + SICK)  # type: ignore[misc]
    assert result.status == "failed"
    wait = next(s for s in result.steps if s.id == "phase3.wait")
    assert wait.status == Status.FAILED
    assert "sick" in wait.summary
    codes = {(f.code, f.data.get("service")) for f in wait.findings}
    assert ("compose.unhealthy", "sick") in codes
    assert ("compose.unhealthy", "web") not in codes
    sick = ps_name(compose, "sick")
    assert any(f.code == "compose.ps" and sick in f.message for f in wait.findings)
    assert any("waiting" in line and "sick" in line for line in said)
    # The incident bundle carries the unhealthy service's logs.
    assert result.incident
    with tarfile.open(result.incident) as tar:
        names = tar.getnames()
    assert any(n.endswith("logs/sick.txt") for n in names)


def test_a_failed_build_is_reported_with_its_cause(project: Path, tmp_path: Path) -> None:
    # Compose v1 only says "Service 'built' failed to build : Build failed" on its last line,
    # v2 its own wording; the step's summary must carry the line that says why.
    (project / "Dockerfile").write_text(f"FROM {IMAGE}\nCOPY wheelhouse /wheels\n")
    _, (result, _said) = _run(project, tmp_path, COMPOSE)  # type: ignore[misc]
    up = next(s for s in result.steps if s.id == "phase3.up")
    assert up.status == Status.FAILED
    assert "built" in up.summary
    assert "wheelhouse" in up.summary, up.summary


def test_pull_names_only_the_images_that_are_missing(project: Path, tmp_path: Path) -> None:
    absent = "afasa-local/absent-for-test:0"
    text = COMPOSE + f'  ghost:\n    image: {absent}\n    command: ["true"]\n'
    runner, _ = _run(project, tmp_path, COMPOSE)
    (project / "docker-compose.yml").write_text(text)
    _commit(project)
    planned = runner.plan(Selection(["phase3"]))
    pull = {s.id: s for s in planned.steps}["phase3.pull"]
    assert pull.status == Status.PENDING
    assert [f.message for f in pull.findings if f.code == "compose.image_missing"] == [
        f"ghost ({absent})"
    ]


def test_config_hashes_are_remembered_until_an_input_changes(project: Path, tmp_path: Path) -> None:
    (project / "web.env").write_text("GREETING=one\n")
    text = COMPOSE.replace("  web:\n", "  web:\n    env_file: [web.env]\n", 1)
    runner, (result, _) = _run(project, tmp_path, text)  # type: ignore[misc]
    assert result.status == "ok", result.message

    def up_step() -> Any:
        return {s.id: s for s in runner.plan(Selection(["phase3"])).steps}["phase3.up"]

    def asked(step: Any) -> bool:
        return any(c.argv[-2:] == ["config", "--hash=*"] for c in step.commands)

    converged = up_step()
    assert converged.status == Status.OK
    assert not asked(converged)  # Compose's answer from the last run still stands
    # Only the env_file's content changes: Compose is asked again and the change is seen.
    (project / "web.env").write_text("GREETING=two\n")
    _commit(project)
    changed = up_step()
    assert asked(changed)
    assert changed.status == Status.PENDING
    assert "web: service definition changed" in [f.message for f in changed.findings]
