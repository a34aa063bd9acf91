"""The adoption override: derived from the checkout's compose file, pinned, deterministic."""

from __future__ import annotations

from pathlib import Path

import yaml

from afasa_ops.compose.override import (
    ADDED_MARK,
    OVERRIDE_FILE,
    ROUTE_PRIORITY,
    ROUTES,
    build_override,
    compose_file_value,
    inputs_from,
    render_override,
    with_compose_file,
    without_override,
)
from afasa_ops.compose.project import load_project

OTHER = """
services:
  edge:
    image: traefik:v3.1.2
    command:
      - --providers.docker.exposedByDefault=false
      - "--providers.docker.constraints=Label(`platform.stack`,`prod`)"
    networks: [backbone]
  devices-svc:
    image: registry.example/tb:1.0
    labels:
      traefik.enable: "true"
      platform.stack: prod
      traefik.http.routers.tb.rule: PathPrefix(`/api/tb`) || PathPrefix(`/api/devices`)
      traefik.http.routers.tb.entrypoints: websecure
    networks: [backbone]
  reports:
    image: registry.example/report:1.0
    labels:
      - traefik.enable=true
      - traefik.http.routers.rep.rule=PathPrefix(`/api/report`)
    networks: [backbone]
  db:
    image: timescale/timescaledb:2.14.2-pg15
    networks: [backbone]
  bus:
    image: nats:2.10.14
    networks: [backbone]
  objects:
    image: minio/minio:RELEASE.2024-06-13T22-53-53Z
    networks: [backbone]
  grafana:
    image: grafana/grafana:10.4.2
networks:
  backbone: {}
"""


def _project(tmp_path: Path) -> object:
    (tmp_path / "compose.yaml").write_text(OTHER)
    return load_project(tmp_path, ["compose.yaml"], project_name="other")


def test_override_follows_the_checkout_not_the_reference_stack(tmp_path: Path) -> None:
    inputs = inputs_from(_project(tmp_path), "1.2.3", ["compose.yaml"], "base:1", "v+src")  # type: ignore[arg-type]
    assert inputs.network == "backbone"
    assert inputs.entrypoints == "websecure"
    assert inputs.required_labels == {"traefik.enable": "true", "platform.stack": "prod"}
    assert inputs.hosts == {"postgres": "db", "nats": "bus", "s3": "objects:9000"}
    services = build_override(inputs)["services"]
    assert set(services) == {
        "afasa-ops-api",
        "afasa-ops-worker-report",
        "afasa-ops-worker-sync",
        "afasa-ops-worker-commands",
    }
    api = services["afasa-ops-api"]
    assert api["networks"] == ["backbone"]
    assert api["image"] == "afasa-ops-services:1.2.3"
    assert "@db:5432/" in api["environment"]["AFASA_OPS_DATABASE_APP_DSN"]
    assert api["environment"]["AFASA_OPS_NATS_URL"] == "nats://bus:4222"
    labels = api["labels"]
    assert labels["platform.stack"] == "prod"
    routers = {k.split(".")[3] for k in labels if k.startswith("traefik.http.routers.")}
    assert routers and all(r.startswith("afasa-ops-") for r in routers)
    assert not routers & {"tb", "rep"}
    assert len(routers) == len(ROUTES)
    for r in routers:
        assert labels[f"traefik.http.routers.{r}.priority"] == str(ROUTE_PRIORITY)
        assert labels[f"traefik.http.routers.{r}.entrypoints"] == "websecure"
    for name, spec in services.items():
        assert spec["healthcheck"]["test"][0] == "CMD", name
        assert spec["build"]["context"] == "afasa-ops-services", name  # never pulled
        assert ":latest" not in spec["image"] and ":" in spec["image"]


def test_priority_beats_any_afasa_rule_length(tmp_path: Path) -> None:
    project = _project(tmp_path)
    longest = max(len(str(v)) for s in project.services.values() for v in (s.get("labels") or {}))  # type: ignore[attr-defined]
    assert longest < ROUTE_PRIORITY


def test_render_is_deterministic_and_a_new_version_is_a_diff(tmp_path: Path) -> None:
    project = _project(tmp_path)
    a = render_override(inputs_from(project, "1.0.0", ["compose.yaml"], "base:1", "v+src"))  # type: ignore[arg-type]
    b = render_override(inputs_from(project, "1.0.0", ["compose.yaml"], "base:1", "v+src"))  # type: ignore[arg-type]
    c = render_override(inputs_from(project, "1.0.1", ["compose.yaml"], "base:1", "v+src"))  # type: ignore[arg-type]
    d = render_override(inputs_from(project, "1.0.0", ["compose.yaml"], "base:1", "v+new"))  # type: ignore[arg-type]
    assert a == b
    assert a != c
    # New code of the same version: a diff too, so phase 3 rebuilds the services' image.
    assert a != d and "AFASA_OPS_SOURCE: v+new" in d
    assert yaml.safe_load(a)["services"]["afasa-ops-api"]["build"]["args"]["BASE_IMAGE"] == (
        "${AFASA_OPS_BASE_IMAGE:-base:1}"
    )


def test_compose_file_in_env_is_set_once_and_replaced() -> None:
    value = compose_file_value(["docker-compose.yml"], ":")
    assert value == f"docker-compose.yml:{OVERRIDE_FILE}"
    once = with_compose_file("A=1\n", value)
    assert once == f"A=1\n{ADDED_MARK}\nCOMPOSE_FILE={value}\n"
    assert with_compose_file(once, value) == once
    assert without_override(once) == "A=1\n"
    theirs = with_compose_file("COMPOSE_FILE=x.yml\nB=2\n", value)
    assert theirs == f"COMPOSE_FILE={value}\nB=2\n"
    # An operator's own COMPOSE_FILE stays, minus the override.
    assert (
        without_override(f"COMPOSE_FILE=x.yml:{OVERRIDE_FILE}\nB=2\n")
        == "COMPOSE_FILE=x.yml\nB=2\n"
    )
    assert without_override("B=2\n") == "B=2\n"


def test_traefik_v2_gets_v2_rules_and_dollars_are_escaped(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(OTHER.replace("traefik:v3.1.2", "traefik:v2.11.3"))
    v2 = inputs_from(
        load_project(tmp_path, ["compose.yaml"], project_name="o"), "1", [], "b", "1+src"
    )
    assert v2.traefik_major == 2
    labels = build_override(v2)["services"]["afasa-ops-api"]["labels"]
    rules = [v for k, v in labels.items() if k.endswith(".rule")]
    assert not any("PathRegexp" in r for r in rules)
    assert "Method(`GET`) && Path(`/api/devices/{id:[^/]+}`)" in rules
    v3 = inputs_from(_project(tmp_path), "1", [], "b", "1+src")  # type: ignore[arg-type]
    v3_labels = build_override(v3)["services"]["afasa-ops-api"]["labels"]
    assert v3_labels["traefik.http.routers.afasa-ops-device.rule"].endswith("[^/]+$$`)")


def test_the_reference_stack_gives_its_network_constraint_and_seaweedfs_port() -> None:
    root = Path(__file__).resolve().parents[2] / "compose"
    inputs = inputs_from(
        load_project(root, ["docker-compose.yml"], project_name="r"), "1", [], "b", "1+src"
    )
    assert inputs.network == "afasa_net"
    assert inputs.required_labels.get("afasa.stack") == "afasa"
    assert inputs.hosts["s3"] == "s3:8333"
    assert inputs.entrypoints == "web"
