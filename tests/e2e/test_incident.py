"""The Docker 29 incident on the reference stack, with the real Traefik behind the 29.1 gate:
routing is broken as found, `doctor` names the three causes, `run phase1` repairs it."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Stack, start_before_state, traefik_routers

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(900)]

TOO_OLD = "client version 1.24 is too old"


def test_phase1_repairs_the_docker_29_incident(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
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

    # Routing works: the api's router comes from the docker provider, and a request through
    # the entrypoint reaches the api (its own 401 JSON, not Traefik's 404 page).
    names = {r["name"] for r in traefik_routers(stack)}
    assert "api@docker" in names
    status, body = stack.get("http", "/api/devices")
    assert status == 401, body
    assert body.lstrip().startswith("{")
    status, body = stack.get("http", "/api/report/reports")
    assert status == 401, body
    assert TOO_OLD not in stack.logs("traefik")  # the new container's log only
