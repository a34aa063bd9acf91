"""The real Traefik binary (the fixed image) with a file provider, routing to backends on
loopback: for tests of what Traefik does with a router set (priorities, who answers)."""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support.docker_fixtures import (
    TRAEFIK_FIXED,
    containers,
    require_docker,
    require_images,
    wait_for,
)
from tests.support.services import free_port


@contextmanager
def traefik_routing(
    tmp_path: Path, role: str, dynamic: dict[str, Any], ready: Callable[[int], bool]
) -> Iterator[int]:
    """Traefik on 127.0.0.1 (host network), entry point `web`, `dynamic` as its file
    provider's configuration; yields the port once `ready(port)` holds (routes loaded)."""
    require_docker()
    require_images(TRAEFIK_FIXED)
    conf = tmp_path / "dynamic.yml"
    conf.write_text(yaml.safe_dump(dynamic))
    port = free_port()
    with containers() as box:
        box.run(
            role,
            TRAEFIK_FIXED,
            f"--entrypoints.web.address=127.0.0.1:{port}",
            "--providers.file.filename=/etc/traefik/dynamic.yml",
            options=("--network", "host", "-v", f"{conf}:/etc/traefik/dynamic.yml:ro"),
        )
        wait_for("traefik to route", lambda: ready(port), deadline_s=60)
        yield port


def load_balancer(port: int) -> dict[str, Any]:
    """A file provider service sending everything to a backend on loopback."""
    return {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{port}"}]}}


@contextmanager
def backend(status: int, body: bytes, content_type: str | None = None) -> Iterator[int]:
    """An HTTP server on loopback answering every GET and POST with `status` and `body`;
    yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def answer(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """Status and body of a request through Traefik; (0, "") when nothing answers yet."""
    data = b"" if method != "GET" else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode(errors="replace")
    except OSError:
        return 0, ""
