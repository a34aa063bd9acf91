"""Who answered a routing probe, on the real Traefik binary: its own 404 (no router matched)
is a routing failure; a backend's 404 through a matched router is routing that works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from afasa_ops.traefik.routing import Expected, check_routing
from tests.support.traefik_file_provider import answer, backend, load_balancer, traefik_routing


@pytest.fixture
def backend_404() -> Iterator[int]:
    """A backend that knows no route it is asked for: 404 with its own JSON body."""
    with backend(404, b'{"detail": "Not Found"}', "application/json") as port:
        yield port


def test_traefik_404_fails_and_a_backend_404_is_routed(tmp_path: Path, backend_404: int) -> None:
    dynamic = {
        "http": {
            "routers": {
                "api": {"rule": "PathPrefix(`/api`)", "service": "api", "entryPoints": ["web"]}
            },
            "services": {"api": load_balancer(backend_404)},
        }
    }

    def ready(port: int) -> bool:
        # The backend's own 404, not Traefik's (its 404 before the file provider loaded).
        return answer(port, "/api/x") == (404, '{"detail": "Not Found"}')

    with traefik_routing(tmp_path, "traefik-who-answered", dynamic, ready) as port:
        report = check_routing(None, f"http://127.0.0.1:{port}", Expected([], ["/api/x", "/nope"]))
    routed, unmatched = report.probes
    assert routed.ok and routed.detail == "routed; backend answered 404"
    assert not unmatched.ok and unmatched.detail == "Traefik's own 404: no router matched"
    assert not report.ok
    assert report.problems() == ["GET /nope: Traefik's own 404: no router matched"]
