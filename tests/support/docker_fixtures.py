"""Helpers for tests that need the real Docker engine and the locally built images.

Import explicitly (no conftest magic): tests put ``tests/support`` on ``sys.path`` and build
their pytest fixtures from these functions. Policy: when Docker or a local image is missing,
a test fails under ``CI=true`` (CI must have run ``scripts/ci-docker.sh``) and is skipped with
the reason otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import services
from tests.support.docker29_gate import Docker29Gate

DOCKER_SOCKET = os.environ.get("AFASA_TEST_DOCKER_SOCKET", "/var/run/docker.sock")
TEST_LABEL = "afasa-ops.test"

TRAEFIK_BROKEN = "traefik:v3.6.0"
TRAEFIK_FIXED = "traefik:v3.6.7"
NATS_IMAGE = "afasa-local/nats:2.10.26"
POSTGRES_IMAGE = "afasa-local/postgres:15-bookworm"
SEAWEEDFS_IMAGE = "afasa-local/seaweedfs:4.48"
BASE_IMAGE = "afasa-local/debian-python:bookworm"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Fail under CI=true, skip elsewhere; never returns."""
    services.unavailable(reason)


def docker_engine_problem(sock_path: str = DOCKER_SOCKET) -> str | None:
    """Why the engine at sock_path is not usable, or None when `GET /_ping` answers OK."""
    try:
        status, _, body = http_unix(sock_path, "GET", "/_ping", timeout=5)
    except OSError as exc:
        return f"Docker engine not reachable at {sock_path}: {exc}"
    if status != 200 or body.strip() != b"OK":
        return f"Docker engine at {sock_path} answered /_ping with {status} {body[:80]!r}"
    return None


def require_docker(sock_path: str = DOCKER_SOCKET) -> str:
    problem = docker_engine_problem(sock_path)
    if problem:
        unavailable(f"{problem}; run scripts/ci-docker.sh")
    return sock_path


# The two Compose CLIs the tests run the runbook with: Debian bookworm's v1 and the pinned v2
# plugin (scripts/compose-v2.sh), as `[compose] command` spells them.
COMPOSE_COMMANDS = {"v1": "docker-compose", "v2": "docker compose"}


def compose_version(flavour: str) -> str | None:
    """What `<compose> version --short` says, or None when that Compose is not installed."""
    argv = COMPOSE_COMMANDS[flavour].split()
    try:
        proc = subprocess.run(
            [*argv, "version", "--short"], capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def require_compose(flavour: str) -> str:
    """The `[compose] command` of this flavour; fails under CI, skips elsewhere, when missing."""
    version = compose_version(flavour)
    wanted_major = flavour[1]
    if version is None or not version.lstrip("v").startswith(wanted_major + "."):
        how = "scripts/compose-v2.sh" if flavour == "v2" else "scripts/docker-engine.sh"
        unavailable(
            f"Compose {flavour} ({COMPOSE_COMMANDS[flavour]}) is not installed "
            f"(it answered {version!r}); run {how}"
        )
    return COMPOSE_COMMANDS[flavour]


@contextlib.contextmanager
def docker29_gate(listen: Path, upstream: str = DOCKER_SOCKET) -> Iterator[Path]:
    """The Docker 29.1 API gate serving on `listen` in front of the real engine, its socket
    open to every user (containers that mount it may run as another uid)."""
    with Docker29Gate(str(listen), upstream):
        os.chmod(listen, 0o666)
        yield listen


def require_images(*tags: str) -> None:
    missing = [t for t in tags if docker("image", "inspect", t, check=False).returncode != 0]
    if missing:
        unavailable(f"local images missing: {', '.join(missing)}; run compose/images/build.sh")


# ---- raw HTTP over a Unix socket -------------------------------------------------------


def http_unix_raw(sock_path: str, request: bytes, timeout: float = 10) -> bytes:
    """Send raw request bytes and read until the server closes (send Connection: close)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(sock_path)
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        body = dechunk(body)
    return int(status_line.split(" ", 2)[1]), headers, body


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while pos < len(data):
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            break
        out += data[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2
    return bytes(out)


def http_unix(
    sock_path: str, method: str, path: str, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    request = f"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
    return parse_response(http_unix_raw(sock_path, request.encode(), timeout))


def get_json(sock_path: str, path: str) -> object:
    status, _, body = http_unix(sock_path, "GET", path)
    assert status == 200, f"GET {path} -> {status}: {body[:200]!r}"
    return json.loads(body)


# ---- docker CLI and containers ---------------------------------------------------------


def docker(
    *args: str,
    check: bool = True,
    host: str | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["DOCKER_HOST"] = f"unix://{host or DOCKER_SOCKET}"
    proc = subprocess.run(
        ["docker", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        input=input,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return proc


@dataclass
class Containers:
    """Starts labelled containers and removes them (and their volumes) at the end."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    names: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def name(self, role: str) -> str:
        return f"afasa-test-{role}-{self.run_id}"

    def run(self, role: str, image: str, *args: str, options: tuple[str, ...] = ()) -> str:
        name = self.name(role)
        docker("rm", "-f", name, check=False)
        docker(
            "run",
            "-d",
            "--name",
            name,
            "--label",
            f"{TEST_LABEL}={self.run_id}",
            *options,
            image,
            *args,
        )
        self.names.append(name)
        return name

    def volume(self, role: str) -> str:
        name = self.name(role)
        docker("volume", "create", "--label", f"{TEST_LABEL}={self.run_id}", name)
        self.volumes.append(name)
        return name

    def remove(self, name: str) -> None:
        docker("rm", "-f", "-v", name, check=False)
        if name in self.names:
            self.names.remove(name)

    def cleanup(self) -> None:
        for name in list(self.names):
            self.remove(name)
        for vol in self.volumes:
            docker("volume", "rm", "-f", vol, check=False)


@contextlib.contextmanager
def containers() -> Iterator[Containers]:
    box = Containers()
    try:
        yield box
    finally:
        box.cleanup()


def host_port(name: str, container_port: str) -> int:
    out = docker("port", name, container_port).stdout.strip().splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def logs(name: str) -> str:
    proc = docker("logs", name, check=False)
    return proc.stdout + proc.stderr


def wait_for(
    what: str,
    probe: Callable[[], object],
    deadline_s: float = 30,
    interval: float = 0.5,
    diagnose: Callable[[], str] | None = None,
) -> object:
    """Poll probe until it returns a truthy value; fail with `what` after the deadline."""
    end = time.monotonic() + deadline_s
    last_exc: Exception | None = None
    while time.monotonic() < end:
        try:
            result = probe()
        except Exception as exc:
            last_exc = exc
        else:
            if result:
                return result
        time.sleep(interval)
    detail = f"; last error: {last_exc}" if last_exc else ""
    if diagnose is not None:
        detail += f"\n{diagnose()}"
    raise AssertionError(f"timed out after {deadline_s}s waiting for {what}{detail}")


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
