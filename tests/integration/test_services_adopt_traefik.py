"""The override's routers against the real Traefik binary (traefik:v3.6.7): with their
explicit priority they win over AFASA's longer prefix rule for exactly the repaired routes;
every other route stays with AFASA's service. Without the priority AFASA's rule would win."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from afasa_ops.compose.override import OverrideInputs, build_override
from tests.support.traefik_file_provider import answer, backend, load_balancer, traefik_routing

# AFASA's router as the reference stack routes it (prefix rules, no priority).
AFASA_RULE = (
    "PathPrefix(`/api/tb`) || PathPrefix(`/api/devices`) || PathPrefix(`/api/integrations`)"
    " || PathPrefix(`/api/discovery`) || PathPrefix(`/api/report`)"
)
MOVED = [
    ("POST", "/api/discovery/ubibot/sync"),
    ("POST", "/api/tb/integrations/ubibot/sync"),
    ("GET", "/api/devices"),
    ("GET", "/api/devices/dev-1"),
    ("POST", "/api/devices/dev-1/enable"),
    ("POST", "/api/tb/devices/dev-1/disable"),
    ("POST", "/api/report/generate"),
    ("GET", "/api/report/reports/r-1"),
]
STAYED = [
    ("GET", "/api/tb/telemetry"),
    ("POST", "/api/devices"),
    ("GET", "/api/devices/dev-1/telemetry"),
    ("GET", "/api/integrations/ubibot"),
    ("GET", "/api/report/templates"),
    ("GET", "/api/discovery/ubibot/channels"),
]


@pytest.fixture
def backends() -> Iterator[dict[str, int]]:
    """AFASA's service and afasa-ops' API, each answering with its own name."""
    with backend(200, b"afasa") as afasa, backend(200, b"afasa-ops") as ours:
        yield {"afasa": afasa, "afasa-ops-api": ours}


def _dynamic(ports: dict[str, int], with_priority: bool) -> dict[str, object]:
    """The override's router labels as Traefik's file provider holds them."""
    hosts = {"postgres": "db", "nats": "nats", "s3": "s3:9000"}
    inputs = OverrideInputs("1.0.0", "net", "1.0.0+src", "web", {"traefik.enable": "true"}, hosts)
    labels = build_override(inputs)["services"]["afasa-ops-api"]["labels"]
    routers: dict[str, dict[str, object]] = {
        "api": {"rule": AFASA_RULE, "service": "afasa", "entryPoints": ["web"]}
    }
    for key, value in labels.items():
        parts = key.split(".")
        if parts[:3] != ["traefik", "http", "routers"]:
            continue
        router = routers.setdefault(parts[3], {"entryPoints": ["web"]})
        if parts[4] == "rule":
            router["rule"] = value.replace("$$", "$")  # Compose's escape, undone
        elif parts[4] == "priority" and with_priority:
            router["priority"] = int(value)
        elif parts[4] == "service":
            router["service"] = value
    services = {name: load_balancer(port) for name, port in ports.items()}
    return {"http": {"routers": routers, "services": services}}


def _who(port: int, method: str, path: str) -> str:
    status, body = answer(port, path, method)
    return body if status == 200 else f"HTTP {status}"


def _serve(tmp_path: Path, dynamic: dict[str, object]) -> Iterator[int]:
    def ready(port: int) -> bool:
        return _who(port, "GET", "/api/tb/telemetry") == "afasa"

    with traefik_routing(tmp_path, "traefik-priority", dynamic, ready) as port:
        yield port


def test_the_repaired_routes_go_to_afasa_ops_and_the_rest_stays(
    tmp_path: Path, backends: dict[str, int]
) -> None:
    for port in _serve(tmp_path, _dynamic(backends, with_priority=True)):
        for method, path in MOVED:
            assert _who(port, method, path) == "afasa-ops", (method, path)
        for method, path in STAYED:
            assert _who(port, method, path) == "afasa", (method, path)


def test_without_the_priority_afasa_longer_rule_would_win(
    tmp_path: Path, backends: dict[str, int]
) -> None:
    for port in _serve(tmp_path, _dynamic(backends, with_priority=False)):
        assert _who(port, "GET", "/api/devices") == "afasa"
