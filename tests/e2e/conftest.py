"""Fixtures for the end-to-end tests: the reference stack (compose/) on the real Docker engine,
with the real Traefik binaries, behind the Docker 29.1 API gate run by the tests.

Each test gets its own sandbox (compose/sandbox.py): a git repo of the stack in its "before"
state under a unique directory name, so its Compose project, network, volumes and published
ports (all free ports) collide with nothing; it is removed with `down -v` afterwards.
Under CI=true a missing engine, image or tool fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import docker_fixtures as dx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "compose"))

import sandbox as sandbox_mod  # noqa: E402  (compose/ is not a package)

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

INFRA = ("postgres", "nats", "s3", "traefik")
INFRA_IMAGES = (
    dx.TRAEFIK_BROKEN,
    dx.TRAEFIK_FIXED,
    dx.NATS_IMAGE,
    dx.POSTGRES_IMAGE,
    dx.SEAWEEDFS_IMAGE,
    dx.BASE_IMAGE,
)


@pytest.fixture(scope="session")
def engine() -> str:
    dx.require_docker()
    if shutil.which("docker-compose") is None and (
        subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
    ):
        dx.unavailable("no Compose (docker compose or docker-compose); run scripts/ci-docker.sh")
    dx.require_images(*INFRA_IMAGES)
    return dx.DOCKER_SOCKET


@pytest.fixture(scope="session")
def app_image(engine: str) -> str:
    """The app image of this source tree, built once per session (reused when present)."""
    try:
        return str(sandbox_mod.ensure_app_image())
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def gate(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Docker 29.1 gate on a socket of its own, in front of the real engine."""
    with dx.docker29_gate(tmp_path_factory.mktemp("gate") / "docker29.sock", engine) as listen:
        yield str(listen)


class Stack:
    """A sandbox plus the assertions' helpers: afasa-ops runs, HTTP, logs, SQL."""

    def __init__(self, box: sandbox_mod.Sandbox) -> None:
        self.box = box

    @property
    def repo(self) -> Path:
        return self.box.repo

    def ops(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.box.ops(*args, timeout=timeout)

    def ops_json(self, *args: str, timeout: float = 900) -> tuple[int, dict[str, Any]]:
        proc = self.ops(*args, "--json", timeout=timeout)
        try:
            doc = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(
                f"afasa-ops {' '.join(args)} --json exited {proc.returncode} without JSON:\n"
                f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}"
            ) from None
        return proc.returncode, doc

    def get(self, port: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        req = urllib.request.Request(self.box.url(port) + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def container(self, service: str) -> str:
        out = self.box.compose("ps", "-a", "-q", service).stdout.split()
        assert out, f"no container for {service}"
        return out[0]

    def logs(self, service: str) -> str:
        return dx.logs(self.container(service))

    def names(self) -> set[str]:
        """The names of the stack's containers."""
        ids = self.box.compose("ps", "-a", "-q").stdout.split()
        out = dx.docker("inspect", "-f", "{{.Name}}", *ids).stdout.split() if ids else []
        return {n.lstrip("/") for n in out}

    def image_of(self, service: str) -> str:
        return dx.docker(
            "inspect", "-f", "{{.Config.Image}}", self.container(service)
        ).stdout.strip()

    def sql(self, query: str) -> str:
        """psql inside the postgres container, as the superuser that made the database."""
        proc = dx.docker(
            "exec", self.container("postgres"),
            "psql", "-U", "afasa", "-d", "afasa", "-At", "-c", query,
        )  # fmt: skip
        return proc.stdout.strip()

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.repo, check=True, capture_output=True, text=True
        ).stdout.strip()

    def secret_values(self) -> list[str]:
        """Every secret the sandbox generated, for 'never printed' assertions."""
        values = list(self.box.secrets.values())
        values += [v for k, v in self.box.ops_env().items() if k.endswith(("_DSN", "_KEY"))]
        return [v for v in values if len(v) >= 8]

    def wait(self, what: str, probe: Callable[[], object], deadline_s: float = 90) -> Any:
        return dx.wait_for(what, probe, deadline_s=deadline_s, interval=1)


# Which Compose starts the stack (the operator's own `up`) and which one afasa-ops runs:
# tests take `compose_pair` indirectly parametrized with these names (default "v1").
COMPOSE_PAIRS = {
    "v1": ("v1", "v1"),
    "v2": ("v2", "v2"),
    "v1-then-v2": ("v1", "v2"),
    "v2-then-v1": ("v2", "v1"),
}


@pytest.fixture
def compose_pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(the stack's Compose command, afasa-ops' `[compose] command`). A missing Compose
    fails under CI=true (scripts/ci-docker.sh installs both) and skips elsewhere."""
    started, converged = COMPOSE_PAIRS[getattr(request, "param", "v1")]
    return dx.require_compose(started), dx.require_compose(converged)


@pytest.fixture
def make_stack(
    engine: str, app_image: str, gate: str, tmp_path: Path, compose_pair: tuple[str, str]
) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []
    started_by, converged_by = compose_pair

    def make(*, before_commit: Callable[[Path], None] | None = None) -> Stack:
        name = f"afasa-e2e-{secrets.token_hex(3)}"
        box = sandbox_mod.create(
            tmp_path / "sandbox", name, docker_socket=gate, app_image=app_image,
            prepare=before_commit, compose_command=started_by, ops_compose_command=converged_by,
        )  # fmt: skip
        stack = Stack(box)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.box.down()


# AFASA's application services as found: stubs (compose/stubs/), routed by prefix rules.
STUBS = ("tb-adapter", "report")
STAND_INS = ("ubibot", "thingsboard")


def start_before_state(stack: Stack, ready: tuple[str, ...] = (*STUBS, *STAND_INS)) -> None:
    """The stack as found: an existing database volume made by the init SQL, then the rest
    (AFASA's stubbed services, the stand-ins of the clouds), `ready` ones healthy."""
    stack.box.up("postgres", timeout=180)
    stack.box.up(*INFRA, timeout=180)
    stack.box.compose("up", "-d", "--build")
    # The stubs must be running for Traefik to route to them once the provider connects.
    stack.box.wait_healthy(*ready, timeout=180)


def traefik_routers(stack: Stack) -> list[dict[str, Any]]:
    status, body = stack.get("api", "/api/http/routers?search=@docker")
    assert status == 200, body
    return list(json.loads(body))


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.0f}s"
