"""Traefik's published ports as the checkout says, on the real engine with the real Traefik
behind the Docker 29.1 gate: no [traefik] URL is configured, so `init` and the routing step
derive them from `ports:` (non-default ports, .env interpolation, long syntax), from the
running container when the file leaves them open, and verify by the entrypoint alone when
the API is not published."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from afasa_ops.commands.plan import plan
from afasa_ops.commands.run import run
from afasa_ops.config import load_settings
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.runbook.runner import Selection
from tests.conftest import make_git_repo
from tests.support import docker_fixtures as dx
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "afasa_ops" / "data" / "runbooks" / "afasa-repair.yaml"
BACKEND = dx.BASE_IMAGE

pytestmark = pytest.mark.docker

BACKEND_CODE = (
    "import http.server as h\\n"
    "class H(h.BaseHTTPRequestHandler):\\n"
    "    def do_GET(self):\\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'report ok')\\n"
    "h.HTTPServer(('', 8000), H).serve_forever()\\n"
)


def compose_text(image: str, network_flag: str, ports: str, *, api_env: bool = True) -> str:
    env = "    environment:\n      - DOCKER_API_VERSION=1.45\n" if api_env else ""
    return f"""\
services:
  traefik:
    image: {image}
{env}    command:
      - "--providers.docker=true"
      - "--providers.docker.exposedbydefault=false"
      - "--providers.docker.network={network_flag}"
      - "--providers.docker.constraints=Label(`com.docker.compose.project`,`@PROJECT@`)"
      - "--api.insecure=true"
      - "--entryPoints.web.address=:80"
    ports:
{ports}
    volumes:
      - ${{DOCKER_SOCKET}}:/var/run/docker.sock:ro
    networks: [afasa_net]

  report:
    image: {BACKEND}
    command: ["python3", "-c", "{BACKEND_CODE}"]
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.report.rule=PathPrefix(`/api/report`)"
      - "traefik.http.services.report.loadbalancer.server.port=8000"
    networks: [afasa_net]

networks:
  afasa_net: {{}}
"""


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    dx.require_docker()
    dx.require_images(dx.TRAEFIK_BROKEN, dx.TRAEFIK_FIXED, BACKEND)
    dx.require_compose("v1")
    with dx.docker29_gate(tmp_path_factory.mktemp("gate") / "docker29.sock") as listen:
        yield listen


class Checkout:
    """A git checkout of a small stack whose Traefik publishes what the test says; its config
    is written by `afasa-ops init` (so no [traefik] URL unless init derived one)."""

    def __init__(self, tmp_path: Path, gate: Path, compose: str, env: dict[str, str]) -> None:
        self.name = f"afasa-ports-{secrets.token_hex(3)}"
        src = tmp_path / "src"
        src.mkdir(parents=True)
        # @PROJECT@: the project name (for the provider network of an already fixed stack,
        # and for a constraint so that other tests' stacks on the engine are not routed).
        (src / "docker-compose.yml").write_text(compose.replace("@PROJECT@", self.name))
        (src / ".gitignore").write_text(".env\n")
        self.repo = make_git_repo(src, tmp_path / self.name)
        dotenv = {"DOCKER_SOCKET": str(gate), **env}
        (self.repo / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
        self.config = tmp_path / "afasa-ops.toml"
        proc = subprocess.run(
            [sys.executable, "-m", "afasa_ops", "init", str(self.repo), "--output", str(self.config)],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        self.init_said = proc.stderr
        with self.config.open("a") as fh:
            fh.write(f'\n[docker]\nhost = "unix://{gate}"\n[runbook]\npath = "{RUNBOOK}"\n')

    def written(self) -> dict[str, Any]:
        return tomllib.loads(self.config.read_text())

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        # The test's own Compose talks to the real engine, not through the gate.
        proc = subprocess.run(
            ["docker-compose", "-p", self.name, *args],
            cwd=self.repo,
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_HOST": f"unix://{dx.DOCKER_SOCKET}"},
        )
        assert proc.returncode == 0 or args[0] == "down", proc.stderr
        return proc

    def context(self) -> Context:
        return Context(settings=load_settings(self.config), options=Options(yes=True))


@pytest.fixture
def checkouts(tmp_path: Path, gate: Path) -> Iterator[Any]:
    made: list[Checkout] = []

    def make(compose: str, env: dict[str, str] | None = None, *, up: bool = True) -> Checkout:
        box = Checkout(tmp_path / str(len(made)), gate, compose, env or {})
        made.append(box)
        if up:
            box.compose("up", "-d")
        return box

    yield make
    for box in made:
        box.compose("down", "-v", "--remove-orphans", "-t", "2")


def step(result: Any, step_id: str) -> Any:
    return next(s for s in result.steps if s.id == step_id)


def findings(result: Any, step_id: str) -> dict[str, Any]:
    return {f.code: f for f in step(result, step_id).findings}


def test_phase1_verifies_routing_on_the_ports_the_checkout_publishes(checkouts: Any) -> None:
    # As the issue found it: 18090:80 and 18091:8080 style ports (free ones here), from .env,
    # the API in long syntax. Before, the routing step asked 127.0.0.1:8081 and failed.
    web, api = free_port(), free_port()
    ports = (
        '      - "${WEB_PORT:-80}:80"\n'
        "      - target: 8080\n"
        "        published: ${API_PORT:-8081}\n"
        "        protocol: tcp\n"  # (host_ip: Compose v2 only)
    )
    box = checkouts(
        compose_text(dx.TRAEFIK_BROKEN, "afasa2_afasa_net", ports),
        {"WEB_PORT": str(web), "API_PORT": str(api)},
    )
    assert box.written()["traefik"] == {
        "entrypoint_url": f"http://127.0.0.1:{web}",
        "api_url": f"http://127.0.0.1:{api}",
    }
    assert box.written()["checks"] == {"base_url": f"http://127.0.0.1:{web}"}

    result = run(load_runbook(RUNBOOK), box.context(), Selection(["phase1"]))
    assert result.status == "ok", (result.message, [(s.id, s.summary) for s in result.steps])
    assert step(result, "phase1.traefik.pin").status.value == "changed"
    routing = step(result, "phase1.traefik.routing")
    assert routing.status.value == "ok", routing.summary
    assert "1 @docker routers enabled" in routing.summary
    assert "/api/report routed; backend answered 200" in routing.summary
    seen = findings(result, "phase1.traefik.routing")
    assert seen["traefik.routers"].message == "report@docker"
    assert seen["traefik.endpoints"].data == {
        "entrypoint_url": f"http://127.0.0.1:{web}",
        "api_url": f"http://127.0.0.1:{api}",
    }
    assert "traefik.api_unpublished" not in seen
    status, body = dx.http_get(f"http://127.0.0.1:{web}/api/report/x")
    assert (status, body) == (200, b"report ok")


FIXED_PORTS_RANDOM_API = '      - "127.0.0.1:{web}:80"\n      - "127.0.0.1::8080"\n'


def test_ports_the_file_leaves_open_come_from_the_running_container(checkouts: Any) -> None:
    # The API is published on a host port the engine picks: neither init nor the file can say.
    web = free_port()
    box = checkouts(
        compose_text(
            dx.TRAEFIK_FIXED,
            "@PROJECT@_afasa_net",
            FIXED_PORTS_RANDOM_API.format(web=web),
            api_env=False,
        )
    )
    assert box.written()["traefik"] == {"entrypoint_url": f"http://127.0.0.1:{web}"}
    assert "API derived at run time (container port 8080 is published on a host port" in (
        box.init_said
    )
    mapped = dx.docker(
        "port", f"{box.name}_traefik_1", "8080/tcp", host=dx.DOCKER_SOCKET
    ).stdout.split()[0]
    random_port = int(mapped.rsplit(":", 1)[1])

    result = plan(load_runbook(RUNBOOK), box.context(), Selection(["phase1"]))
    routing = step(result, "phase1.traefik.routing")
    assert routing.status.value == "ok", routing.summary
    endpoints = findings(result, "phase1.traefik.routing")["traefik.endpoints"]
    assert endpoints.data["api_url"] == f"http://127.0.0.1:{random_port}"
    assert f"the running container publishes 8080/tcp on 127.0.0.1:{random_port}" in (
        endpoints.message
    )
    assert "1 @docker routers enabled" in routing.summary


def test_an_unpublished_api_is_a_finding_and_routing_is_verified_by_the_entrypoint(
    checkouts: Any,
) -> None:
    web = free_port()
    box = checkouts(
        compose_text(
            dx.TRAEFIK_FIXED,
            "@PROJECT@_afasa_net",
            f'      - "127.0.0.1:{web}:80"\n',
            api_env=False,
        )
    )
    result = plan(load_runbook(RUNBOOK), box.context(), Selection(["phase1"]))
    routing = step(result, "phase1.traefik.routing")
    assert routing.status.value == "ok", routing.summary
    assert routing.summary.startswith("routers list skipped (the API is not published)")
    assert "/api/report routed; backend answered 200" in routing.summary
    warning = findings(result, "phase1.traefik.routing")["traefik.api_unpublished"]
    assert warning.severity == "warning"
    assert "container port 8080 is not published in docker-compose.yml" in warning.message
    assert "and the running container does not publish it either" in warning.message
    assert 'add ports: ["127.0.0.1:8081:8080"] under the traefik service' in warning.message
    assert "verified through the entrypoint alone" in warning.message

    # Routing itself still has to work: with the backend gone, the same check fails.
    box.compose("stop", "report")
    broken = plan(load_runbook(RUNBOOK), box.context(), Selection(["phase1"]))
    routing = step(broken, "phase1.traefik.routing")
    # A plan lists a verification as will_run (the run verifies); its summary says what fails.
    assert routing.status.value == "will_run", routing.summary
    # Traefik's own 404 once it has seen the container stop; a timeout or 502 before then.
    assert "routing is not working: GET /api/report: " in routing.summary
