"""The Docker 29 incident on the reference stack, with the real Traefik behind the 29.1 gate:
routing is broken as found, `doctor` names the three causes, `run phase1` repairs it, on the
ports the checkout publishes (found by `init`). With Compose v1 and v2, and a stack started
by v2 then repaired by v1."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Stack, start_before_state, traefik_routers
from tests.support import docker_fixtures as dx

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(900)]

TOO_OLD = "client version 1.24 is too old"


@pytest.mark.parametrize("compose_pair", ["v1", "v2", "v2-then-v1"], indirect=True)
def test_phase1_repairs_the_docker_29_incident(
    make_stack: Callable[..., Stack], compose_pair: tuple[str, str]
) -> None:
    stack = make_stack()
    # `init` found Traefik's published ports (free ones, from .env): no URL was configured.
    written = tomllib.loads(stack.box.config.read_text())
    assert written["traefik"] == {
        "entrypoint_url": stack.box.url("http"),
        "api_url": stack.box.url("api"),
    }
    assert written["compose"]["command"] == compose_pair[1]
    start_before_state(stack)

    # As found: the real Traefik v3.6.0 is refused by the engine's API floor ...
    stack.wait("Traefik to log the refusal", lambda: TOO_OLD in stack.logs("traefik"))
    assert stack.image_of("traefik") == "traefik:v3.6.0"
    # ... so it has no docker routers and every route gets Traefik's own 404.
    assert traefik_routers(stack) == []
    for route in ("/api/devices", "/api/report/reports"):
        status, body = stack.get("http", route)
        assert (status, body.strip()) == (404, "404 page not found"), route

    code, doc = stack.ops_json("doctor")
    # 3: pending changes; 4 when some area is blocked too (no app role before phase 2).
    assert code in (3, 4), doc["message"]
    codes = {f["code"] for step in doc["steps"] for f in step["findings"]}
    assert {
        "traefik.incompatible",
        "traefik.docker_api_version_env",
        "traefik.network_mismatch",
    } <= codes
    assert stack.git("status", "--porcelain") == ""  # doctor changed nothing

    code, doc = stack.ops_json("run", "phase1", "--yes")
    assert code == 0, (doc["message"], [(s["id"], s["status"], s["summary"]) for s in doc["steps"]])
    steps = {s["id"]: s["status"] for s in doc["steps"]}
    assert steps["phase1.traefik.pin"] == "changed"
    assert steps["phase1.traefik.recreate"] == "changed"

    # The compose file: pinned, hack gone, the project's real network; committed.
    compose = (stack.repo / "docker-compose.yml").read_text()
    assert re.search(r"^    image: traefik:v3\.6\.7$", compose, re.M)
    assert "- DOCKER_API_VERSION=" not in compose
    assert f'"--providers.docker.network={stack.box.project}_afasa_net"' in compose
    assert "#  Edge: reverse proxy" in compose  # comments and banners kept
    assert stack.git("status", "--porcelain") == ""
    assert stack.image_of("traefik") == "traefik:v3.6.7"
    # The recreated Traefik carries the name of the Compose that recreated it.
    v2 = compose_pair[1] == dx.COMPOSE_COMMANDS["v2"]
    project = stack.box.project
    assert (f"{project}-traefik-1" if v2 else f"{project}_traefik_1") in stack.names()
    engine = next(s for s in doc["steps"] if s["id"] == "phase1.engine")
    flavour = "docker compose (v2 plugin)" if v2 else "docker-compose (v1)"
    assert any(f["message"].startswith(flavour) for f in engine["findings"]), engine

    # Routing works: AFASA's routers come from the docker provider, and a request through
    # the entrypoint reaches its services (their own 401 JSON, not Traefik's 404 page).
    names = {r["name"] for r in traefik_routers(stack)}
    assert {"tb-adapter@docker", "report@docker"} <= names
    status, body = stack.get("http", "/api/devices")
    assert status == 401, body
    assert body.lstrip().startswith("{")
    status, body = stack.get("http", "/api/report/reports")
    assert status == 401, body
    assert TOO_OLD not in stack.logs("traefik")  # the new container's log only
