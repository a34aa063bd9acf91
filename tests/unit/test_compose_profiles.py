"""Traefik can only list routers of containers that exist: a service counts when a plain `up`
starts it (COMPOSE_PROFILES enables its profile) and, once containers are known, when it
has one (the adoption override's services get theirs in phase 3, not before)."""

from __future__ import annotations

from pathlib import Path

from afasa_ops.compose.project import load_project
from afasa_ops.traefik.routing import expected_routing

COMPOSE = """\
services:
  traefik:
    image: traefik:v3.6.7
  tb-adapter:
    image: afasa/tb-adapter:1
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.tb-adapter.rule=PathPrefix(`/api/tb`)"
  report:
    image: afasa/report:1
    labels:
      traefik.enable: "true"
      traefik.http.routers.report.rule: PathPrefix(`/api/report`)
  ubibot:
    image: standin:1
    profiles: ["demo"]
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.ubibot.rule=PathPrefix(`/ubibot`)"
"""


def _stack(tmp_path: Path, env: str) -> Path:
    stack = tmp_path / "afasa"
    stack.mkdir(exist_ok=True)
    (stack / "docker-compose.yml").write_text(COMPOSE)
    (stack / ".env").write_text(env)
    return stack


def test_routers_of_a_profile_are_expected_only_when_it_is_active(tmp_path: Path) -> None:
    default = load_project(_stack(tmp_path, "COMPOSE_PROFILES=demo\n"), environ={})
    assert default.active_profiles == {"demo"}
    assert expected_routing(default).routers == [
        "report@docker",
        "tb-adapter@docker",
        "ubibot@docker",
    ]
    bare = load_project(_stack(tmp_path, ""), environ={})
    assert bare.active_profiles == set()
    assert expected_routing(bare).routers == ["report@docker", "tb-adapter@docker"]
    assert "/ubibot" not in expected_routing(bare).routes
    enabled = load_project(_stack(tmp_path, ""), environ={"COMPOSE_PROFILES": "demo"})
    assert "ubibot@docker" in expected_routing(enabled).routers


def test_services_without_a_container_yet_are_not_expected(tmp_path: Path) -> None:
    project = load_project(_stack(tmp_path, ""), environ={})
    expected = expected_routing(project, created={"traefik", "tb-adapter"})
    assert expected.routers == ["tb-adapter@docker"]
    assert "/api/report" not in expected.routes and "/api/tb" in expected.routes
