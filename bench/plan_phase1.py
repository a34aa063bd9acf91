"""Benchmark: `plan phase1` compose analysis vs a bare ruamel.yaml load + dump.

Generates a contract-shaped compose file with N services (banners, comments, labels, the
Traefik defects), then times, side by side in one run:
  A) the phase-1 analysis as `plan` runs it: load the project (interpolation, project and
     network names), analyse Traefik, compute and verify the round-trip edits and the diff;
  B) ruamel.yaml's round-trip load and dump of the same file (the floor for any edit that
     keeps comments).
Prints both and the ratio A/B (target <= 3). Usage: python bench/plan_phase1.py [--services N]
[--repeat R] [--full]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from afasa_ops.compose.project import load_project  # noqa: E402
from afasa_ops.traefik.analysis import EngineApi, analyse  # noqa: E402
from afasa_ops.traefik.fix import compose_changes  # noqa: E402

TRAEFIK = """\
# =============================================================================
#  Generated AFASA-shaped compose file ({n} services)
# =============================================================================

services:
  # ---------------------------------------------------------------------------
  #  Edge: reverse proxy
  # ---------------------------------------------------------------------------
  traefik:
    image: traefik:latest
    environment:
      - DOCKER_API_VERSION=1.45   # workaround for Docker 29 (does not work)
    command:
      - "--providers.docker=true"
      - "--providers.docker.exposedbydefault=false"
      - "--providers.docker.network=afasa2_afasa_net"
      - "--api.insecure=true"
      - "--entrypoints.web.address=:80"
    ports:
      - "80:80"
      - "8081:8080"   # dashboard / API
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
    networks:
      - afasa_net
"""

SERVICE = """\

  # ---- service {i} ----
  svc-{i}:
    build:
      context: .
      dockerfile: services/svc_{i}/Dockerfile
    environment:
      - DATABASE_URL=postgresql://${{POSTGRES_USER:-afasa}}:${{POSTGRES_PASSWORD}}@postgres:5432/afasa
      - NATS_URL=nats://nats:4222
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.svc-{i}.rule=PathPrefix(`/api/svc-{i}`)"
      - "traefik.http.services.svc-{i}.loadbalancer.server.port=8000"
    networks:
      - afasa_net
"""

FOOTER = """
networks:
  afasa_net:
    driver: bridge
"""


def generate(n: int) -> str:
    return TRAEFIK.format(n=n) + "".join(SERVICE.format(i=i) for i in range(1, n)) + FOOTER


def analysis(directory: Path) -> int:
    project = load_project(directory, environ={})
    result = analyse(
        project, target_image="traefik:v3.6.7", engine=EngineApi("29.1.3", "1.52", "1.44")
    )
    changes = compose_changes(result, directory)
    return sum(len(c.diff) for c in changes)


def ruamel_roundtrip(text: str) -> int:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    out = io.StringIO()
    yaml.dump(yaml.load(text), out)
    return len(out.getvalue())


def best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) if repeat < 3 else statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="1000 services, 7 repeats")
    args = parser.parse_args()
    services, repeat = (1000, 7) if args.full else (args.services, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "Afasa-main"
        directory.mkdir()
        text = generate(services)
        (directory / "docker-compose.yml").write_text(text)
        assert analysis(directory) > 0, "the generated file must need the Traefik fix"
        # Warm both paths once (imports, caches) before measuring.
        ruamel_roundtrip(text)
        a = best_of(lambda: analysis(directory), repeat)
        b = best_of(lambda: ruamel_roundtrip(text), repeat)
    ratio = a / b
    print(f"services: {services}, file: {len(text) // 1024} KiB, repeats: {repeat}")
    print(f"plan phase1 analysis      : {a * 1000:8.1f} ms")
    print(f"ruamel.yaml load + dump   : {b * 1000:8.1f} ms")
    print(f"ratio (analysis / ruamel) : {ratio:8.2f}   (target <= 3)")
    return 0 if ratio <= 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
