"""The Docker 29.1 gate against the real engine, and the real Traefik binaries through it.

The gate (tests/support/docker29_gate.py) is what lets afasa-ops reproduce the Docker 29
incident on machines whose only installable engine is 20.10: these tests prove that it
speaks Docker 29.1's API contract and that real Traefik releases react to it as they do to
a real Docker 29 engine (v3.6.0 refused with "client version 1.24 is too old", v3.6.7
negotiating and routing).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import docker_fixtures as dx
from docker29_gate import API_VERSION, MIN_API_VERSION, Docker29Gate


@pytest.fixture(scope="module")
def engine() -> str:
    return dx.require_docker()


@pytest.fixture(scope="module")
def upstream_api(engine: str) -> str:
    info = dx.get_json(engine, "/version")
    assert isinstance(info, dict)
    return str(info["ApiVersion"])


@pytest.fixture(scope="module")
def gate(engine: str) -> Iterator[str]:
    # A short directory: Unix socket paths are limited to 107 bytes, pytest's tmp_path is long.
    workdir = tempfile.mkdtemp(prefix="d29gate-")
    sock = str(Path(workdir) / "docker29.sock")
    with Docker29Gate(sock, engine):
        yield sock
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def boxes() -> Iterator[dx.Containers]:
    with dx.containers() as box:
        yield box


# ---- the API contract ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "/v1.44", "/v1.52"])
def test_version_reports_docker_29_1(gate: str, engine: str, prefix: str) -> None:
    real = dx.get_json(engine, "/version")
    shown = dx.get_json(gate, f"{prefix}/version")
    assert isinstance(real, dict) and isinstance(shown, dict)
    assert shown["Version"].startswith("29.1.")
    assert shown["ApiVersion"] == API_VERSION == "1.52"
    assert shown["MinAPIVersion"] == MIN_API_VERSION == "1.44"
    # Everything else is the real engine's answer.
    assert shown["GitCommit"] == real["GitCommit"]
    assert shown["Os"] == real["Os"] and shown["Arch"] == real["Arch"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping_carries_api_version_1_52(gate: str, method: str) -> None:
    status, headers, body = dx.http_unix(gate, method, "/_ping")
    assert status == 200
    assert headers["api-version"] == "1.52"
    assert body == (b"OK" if method == "GET" else b"")


@pytest.mark.parametrize("old", ["1.24", "1.41", "1.43"])
def test_too_old_client_is_refused_like_docker_29(gate: str, old: str) -> None:
    raw = dx.http_unix_raw(
        gate, f"GET /v{old}/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n".encode()
    )
    status, headers, body = dx.parse_response(raw)
    assert status == 400
    assert headers["content-type"] == "application/json"
    expected = (
        f'{{"message":"client version {old} is too old. Minimum supported API version is '
        f'1.44, please upgrade your client to a newer version"}}'
    )
    assert body.decode().strip() == expected


def test_lowered_floor_models_the_daemon_side_workaround(engine: str) -> None:
    workdir = tempfile.mkdtemp(prefix="d29gate-")
    sock = str(Path(workdir) / "docker29-min124.sock")
    try:
        with Docker29Gate(sock, engine, min_api_version="1.24"):
            shown = dx.get_json(sock, "/v1.24/version")
            assert isinstance(shown, dict)
            assert shown["MinAPIVersion"] == "1.24" and shown["ApiVersion"] == "1.52"
            assert isinstance(dx.get_json(sock, "/v1.24/containers/json"), list)
            status, _, body = dx.http_unix(sock, "GET", "/v1.23/containers/json")
            assert status == 400 and b"Minimum supported API version is 1.24" in body
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_unprefixed_and_current_requests_are_forwarded(gate: str, engine: str) -> None:
    # Containers come and go while other tests run; the bridge network's id does not.
    shown_net = dx.get_json(gate, "/v1.52/networks/bridge")
    real_net = dx.get_json(engine, "/networks/bridge")
    assert isinstance(shown_net, dict) and isinstance(real_net, dict)
    assert shown_net["Id"] == real_net["Id"]
    assert isinstance(dx.get_json(gate, "/v1.52/containers/json?all=1"), list)
    shown, real = dx.get_json(gate, "/info"), dx.get_json(engine, "/info")
    assert isinstance(shown, dict) and isinstance(real, dict)
    assert shown["ID"] == real["ID"]


def test_docker_cli_works_through_gate_including_attach(gate: str) -> None:
    dx.require_images(dx.BASE_IMAGE)
    version = dx.docker(
        "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}", host=gate
    )
    assert version.stdout.split()[0].startswith("29.1.")
    # `docker run -i` hijacks the connection (POST .../attach with Upgrade: tcp): stdin in,
    # stdout out, through the gate.
    proc = dx.docker(
        "run",
        "-i",
        "--rm",
        "--label",
        f"{dx.TEST_LABEL}=attach",
        dx.BASE_IMAGE,
        "cat",
        host=gate,
        input="through the gate\n",
    )
    assert proc.stdout == "through the gate\n"


def test_build_streams_its_context_through_gate(gate: str, boxes: dx.Containers) -> None:
    dx.require_images(dx.NATS_IMAGE)
    context = Path(tempfile.mkdtemp(prefix="d29build-"))
    tag = f"afasa-test/gate-build:{boxes.run_id}"
    try:
        (context / "Dockerfile").write_text(
            f"FROM {dx.NATS_IMAGE}\nLABEL {dx.TEST_LABEL}={boxes.run_id}\n"
        )
        # The CLI streams the context as the request body of POST /build.
        dx.docker("build", "-q", "-t", tag, str(context), host=gate)
        labels = dx.docker("image", "inspect", "-f", "{{json .Config.Labels}}", tag).stdout
        assert json.loads(labels)[dx.TEST_LABEL] == boxes.run_id
    finally:
        dx.docker("rmi", "-f", tag, check=False)
        shutil.rmtree(context, ignore_errors=True)


def test_compose_v1_works_through_gate(gate: str, boxes: dx.Containers) -> None:
    dx.require_images(dx.NATS_IMAGE)
    if shutil.which("docker-compose") is None:
        dx.unavailable("docker-compose (v1) not installed; run scripts/docker-engine.sh")
    project_dir = Path(tempfile.mkdtemp(prefix="d29compose-"))
    project = f"gate{boxes.run_id}"
    env = {"DOCKER_HOST": f"unix://{gate}", "PATH": os.environ.get("PATH", "")}
    (project_dir / "docker-compose.yml").write_text(
        f'version: "3.8"\nservices:\n  nats:\n    image: {dx.NATS_IMAGE}\n'
        f"    labels: [{dx.TEST_LABEL}={boxes.run_id}]\n"
    )

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", project, *args],
            cwd=project_dir, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    try:
        up = compose("up", "-d")
        assert up.returncode == 0, up.stderr
        ps = compose("ps")
        assert f"{project}_nats_1" in ps.stdout and "Up" in ps.stdout
    finally:
        compose("down", "-v")
        shutil.rmtree(project_dir, ignore_errors=True)


def test_events_stream_through_gate(gate: str, boxes: dx.Containers) -> None:
    dx.require_images(dx.NATS_IMAGE)
    filters = json.dumps({"type": ["container"], "label": [f"{dx.TEST_LABEL}={boxes.run_id}"]})
    path = f"/v1.52/events?filters={urllib.parse.quote(filters)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)  # deadline for the event to arrive
        sock.connect(gate)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        name = boxes.run("events", dx.NATS_IMAGE)
        seen = head.partition(b"\r\n\r\n")[2]
        while not (b'"start"' in seen and name.encode() in seen):
            data = sock.recv(65536)
            assert data, f"event stream closed before the start event: {seen[-500:]!r}"
            seen += data
    assert b'"Type":"container"' in seen


# ---- real Traefik binaries against the gate --------------------------------------------


def _start_traefik(boxes: dx.Containers, image: str, gate: str, role: str) -> str:
    return boxes.run(
        role,
        image,
        "--providers.docker=true",
        "--providers.docker.exposedbydefault=false",
        "--api.insecure=true",
        "--entrypoints.web.address=:80",
        "--log.nocolor=true",
        # No calls home: this machine's network reaches only package registries.
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
        options=("-p", "127.0.0.1::8080", "-v", f"{gate}:/var/run/docker.sock:ro"),
    )


TOO_OLD = "client version 1.24 is too old"


def test_traefik_3_6_0_is_refused_by_docker_29(gate: str, boxes: dx.Containers) -> None:
    dx.require_images(dx.TRAEFIK_BROKEN)
    traefik = _start_traefik(boxes, dx.TRAEFIK_BROKEN, gate, "traefik360")
    dx.wait_for(
        f"{dx.TRAEFIK_BROKEN} to log '{TOO_OLD}'",
        lambda: TOO_OLD in dx.logs(traefik),
        diagnose=lambda: dx.logs(traefik)[-2000:],
    )
    text = dx.logs(traefik)
    assert "Failed to retrieve information of the docker client and server host" in text
    assert "Minimum supported API version is 1.44" in text


def test_traefik_3_6_7_negotiates_and_routes(gate: str, boxes: dx.Containers) -> None:
    dx.require_images(dx.TRAEFIK_FIXED, dx.NATS_IMAGE)
    router = f"gate{boxes.run_id}"
    boxes.run(
        "routed",
        dx.NATS_IMAGE,
        options=(
            "--label",
            "traefik.enable=true",
            "--label",
            f"traefik.http.routers.{router}.rule=PathPrefix(`/api/report`)",
            "--label",
            f"traefik.http.services.{router}.loadbalancer.server.port=8222",
        ),
    )
    traefik = _start_traefik(boxes, dx.TRAEFIK_FIXED, gate, "traefik367")
    api = f"http://127.0.0.1:{dx.host_port(traefik, '8080/tcp')}"

    def docker_router() -> dict[str, object] | None:
        status, body = dx.http_get(f"{api}/api/http/routers?search=@docker")
        if status != 200:
            return None
        return next((r for r in json.loads(body) if r["name"] == f"{router}@docker"), None)

    found = dx.wait_for(
        f"router {router}@docker in {dx.TRAEFIK_FIXED}'s API",
        docker_router,
        diagnose=lambda: dx.logs(traefik)[-2000:],
    )
    assert isinstance(found, dict) and found["status"] == "enabled"
    text = dx.logs(traefik)
    assert "too old" not in text
    assert "Provider error" not in text
