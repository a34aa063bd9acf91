"""The override's routers against the real Traefik binary (traefik:v3.6.7): with their
explicit priority they win over AFASA's longer prefix rule for exactly the repaired routes;
every other route stays with AFASA's service. Without the priority AFASA's rule would win."""

from __future__ import annotations

import http.server
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from afasa_ops.compose.override import OverrideInputs, build_override
from tests.support.docker_fixtures import (
    TRAEFIK_FIXED,
    containers,
    require_docker,
    require_images,
    wait_for,
)

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _backend(name: str) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


@pytest.fixture
def backends() -> Iterator[dict[str, int]]:
    afasa, afasa_port = _backend("afasa")
    ours, ours_port = _backend("afasa-ops")
    yield {"afasa": afasa_port, "afasa-ops-api": ours_port}
    afasa.shutdown()
    ours.shutdown()


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
    services = {
        name: {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{port}"}]}}
        for name, port in ports.items()
    }
    return {"http": {"routers": routers, "services": services}}


def _who(port: int, method: str, path: str) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"


def _serve(tmp_path: Path, dynamic: dict[str, object]) -> Iterator[int]:
    require_docker()
    require_images(TRAEFIK_FIXED)
    conf = tmp_path / "dynamic.yml"
    conf.write_text(yaml.safe_dump(dynamic))
    port = _free_port()
    with containers() as box:
        box.run(
            "traefik-priority",
            TRAEFIK_FIXED,
            f"--entrypoints.web.address=127.0.0.1:{port}",
            "--providers.file.filename=/etc/traefik/dynamic.yml",
            options=("--network", "host", "-v", f"{conf}:/etc/traefik/dynamic.yml:ro"),
        )
        wait_for(
            "traefik to route",
            lambda: _who(port, "GET", "/api/tb/telemetry") == "afasa",
            deadline_s=60,
        )
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
