"""Who answered a routing probe, on the real Traefik binary: its own 404 (no router matched)
is a routing failure; a backend's 404 through a matched router is routing that works."""

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

from afasa_ops.traefik.routing import Expected, check_routing
from tests.support.docker_fixtures import (
    TRAEFIK_FIXED,
    containers,
    require_docker,
    require_images,
    wait_for,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def backend_404() -> Iterator[int]:
    """A backend that knows no route it is asked for: 404 with its own JSON body."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"detail": "Not Found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def test_traefik_404_fails_and_a_backend_404_is_routed(tmp_path: Path, backend_404: int) -> None:
    require_docker()
    require_images(TRAEFIK_FIXED)
    dynamic = {
        "http": {
            "routers": {
                "api": {"rule": "PathPrefix(`/api`)", "service": "api", "entryPoints": ["web"]}
            },
            "services": {
                "api": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend_404}"}]}}
            },
        }
    }
    conf = tmp_path / "dynamic.yml"
    conf.write_text(yaml.safe_dump(dynamic))
    port = _free_port()
    with containers() as box:
        box.run(
            "traefik-who-answered",
            TRAEFIK_FIXED,
            f"--entrypoints.web.address=127.0.0.1:{port}",
            "--providers.file.filename=/etc/traefik/dynamic.yml",
            options=("--network", "host", "-v", f"{conf}:/etc/traefik/dynamic.yml:ro"),
        )
        wait_for("traefik to route", lambda: _status(port, "/api/x") == 404, deadline_s=60)
        report = check_routing(None, f"http://127.0.0.1:{port}", Expected([], ["/api/x", "/nope"]))
    routed, unmatched = report.probes
    assert routed.ok and routed.detail == "routed; backend answered 404"
    assert not unmatched.ok and unmatched.detail == "Traefik's own 404: no router matched"
    assert not report.ok
    assert report.problems() == ["GET /nope: Traefik's own 404: no router matched"]
