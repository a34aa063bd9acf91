"""The Docker engine driver: engine facts, Compose containers, their logs.

The Engine API is spoken directly over httpx (its Unix-socket transport): the few calls a
run makes do not need the docker SDK, whose import (requests, urllib3, websocket) cost a
run a tenth of a second before its first step. httpx is imported inside methods so
`afasa-ops --help` never loads it. Every engine error is translated here into a one-line
BlockedError (no engine, socket missing, permission denied) or DriverError.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from afasa_ops.errors import BlockedError, DriverError
from afasa_ops.findings import CommandRecord
from afasa_ops.infra import http as http_driver  # first: httpx without its CLI
from afasa_ops.infra.shell import Shell
from afasa_ops.redact import redactor

if TYPE_CHECKING:
    import httpx

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class EngineFacts:
    host: str
    version: str
    api_version: str
    min_api_version: str
    os: str
    arch: str
    kernel: str
    operating_system: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @property
    def major(self) -> int:
        head = self.version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    image: str
    status: str
    started_at: str
    env: dict[str, str]
    cmd: list[str]
    config_hash: str | None
    # What `docker port` shows: "80/tcp" -> [(host_ip, host_port), ...], published ports only.
    ports: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


def resolve_host(configured: str | None, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return configured or env.get("DOCKER_HOST") or DEFAULT_HOST


class EngineHttpError(Exception):
    """The engine answered with an error status; `explanation` is its own message."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(f"{status}: {explanation}")
        self.status = status
        self.explanation = explanation


class DockerEngine:
    def __init__(self, host: str | None = None, timeout_s: float = 30.0) -> None:
        self.host = resolve_host(host)
        self.timeout_s = timeout_s
        self._client: httpx.Client | None = None
        # Whether a container has a terminal cannot change while it exists: asked once.
        self._tty: dict[str, bool] = {}

    # -- connection --------------------------------------------------------------------------
    def _socket_problem(self) -> str | None:
        if not self.host.startswith("unix://"):
            return None
        path = self.host[len("unix://") :]
        if not os.path.exists(path):
            return f"socket {path} is missing (is dockerd running?)"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"permission denied on {path} (add the user to the docker group, or run as root)"
        return None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            problem = self._socket_problem()
            if problem:
                raise BlockedError(f"Docker engine at {self.host}: {problem}")
            import httpx

            # Paths carry no /vX.Y prefix: the engine answers in its own API version, the one
            # the docker SDK negotiated (it asked /version first) for the same calls.
            if self.host.startswith("unix://"):
                # A socket: no TLS (no CA bundle to load), and no proxy from the environment.
                transport = httpx.HTTPTransport(uds=self.host[len("unix://") :], verify=False)
                self._client = httpx.Client(
                    base_url="http://docker",
                    transport=transport,
                    timeout=self.timeout_s,
                    trust_env=False,
                )
            elif self.host.startswith(("tcp://", "http://")):
                base_url = "http://" + self.host.split("://", 1)[1]
                self._client = httpx.Client(base_url=base_url, timeout=self.timeout_s)
            elif self.host.startswith("https://"):
                self._client = http_driver.client(self.timeout_s, base_url=self.host)
            else:
                raise BlockedError(
                    f"Docker engine at {self.host}: unsupported scheme"
                    " (use unix://, tcp:// or https://)"
                )
        return self._client

    def _get(self, action: str, path: str, params: dict[str, str] | None = None) -> Any:
        """GET an Engine API path: its JSON, or its bytes for a non-JSON answer."""
        import httpx

        with self._translated(action):
            try:
                resp = self.client.get(path, params=params)
            except httpx.HTTPError as exc:
                raise ConnectionError(str(exc) or type(exc).__name__) from exc
            if resp.status_code >= 400:
                raise EngineHttpError(resp.status_code, _message(resp))
            if resp.headers.get("content-type", "").startswith("application/json"):
                return resp.json()
            return resp.content

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except EngineHttpError as exc:
            if exc.status == 404:
                raise DriverError(f"docker {action}: not found: {_explain(exc)}") from exc
            raise DriverError(f"docker {action}: {_explain(exc)}") from exc
        except PermissionError as exc:
            raise BlockedError(f"Docker engine at {self.host}: permission denied") from exc
        except (ConnectionError, OSError) as exc:
            raise BlockedError(f"Docker engine at {self.host}: {_reason(exc)}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- facts -------------------------------------------------------------------------------
    def facts(self) -> EngineFacts:
        data = self._get("version", "/version")
        info = self._get("info", "/info")
        return EngineFacts(
            host=self.host,
            version=str(data.get("Version", "")),
            api_version=str(data.get("ApiVersion", "")),
            min_api_version=str(data.get("MinAPIVersion", "")),
            os=str(data.get("Os", "")),
            arch=str(data.get("Arch", "")),
            kernel=str(data.get("KernelVersion", "")),
            operating_system=str(info.get("OperatingSystem", "")),
        )

    # -- images ------------------------------------------------------------------------------
    def image_ids(self, names: list[str]) -> list[str] | None:
        """The ids of these local images, in the order given; None when any is absent (what
        `docker image inspect --format {{.Id}}` answers, without a CLI process)."""
        ids = []
        for name in names:
            try:
                attrs = self._get("image inspect", f"/images/{name}/json")
            except DriverError as exc:
                if str(exc).startswith("docker image inspect: not found"):
                    return None
                raise
            ids.append(str(attrs.get("Id", "")))
        return ids

    # -- compose containers ---------------------------------------------------------------------
    def _list(self, labels: list[str]) -> list[dict[str, Any]]:
        """The containers (running or not) carrying all these labels, as `docker ps` lists them."""
        filters = json.dumps({"label": labels})
        found = self._get("ps", "/containers/json", {"all": "1", "filters": filters})
        return [c for c in found if isinstance(c, dict)]

    def _inspect(self, container_id: str, action: str = "inspect") -> dict[str, Any]:
        attrs: dict[str, Any] = self._get(action, f"/containers/{container_id}/json")
        return attrs

    def service_container(self, project: str, service: str) -> ContainerInfo | None:
        """The newest container Compose (v1 or v2) created for this project's service."""
        listed = self._list(
            [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]
        )
        if not listed:
            return None
        # Inspected, as the docker SDK did, so "newest" compares the full creation times.
        found = [self._inspect(str(c.get("Id", "")), "ps") for c in listed]
        newest = max(found, key=lambda attrs: str(attrs.get("Created", "")))
        return _info(newest)

    def services_with_containers(self, project: str) -> set[str]:
        """The project's services that have a container, running or not (one `ps` for all)."""
        found = self._list([f"com.docker.compose.project={project}"])
        return {str((c.get("Labels") or {}).get("com.docker.compose.service")) for c in found}

    def project_listing(self, project: str) -> dict[str, dict[str, Any]]:
        """service -> its newest container as the engine's list gives it (`State`, `Labels`,
        `Status`; no inspect), one-off containers left out: one request for the project."""
        out: dict[str, dict[str, Any]] = {}
        for c in sorted(self._list([f"com.docker.compose.project={project}"]), key=_created):
            labels = c.get("Labels") or {}
            if labels.get("com.docker.compose.oneoff") == "True":
                continue
            service = labels.get("com.docker.compose.service")
            if service:
                out[str(service)] = c
        return out

    def project_containers(self, project: str) -> list[dict[str, Any]]:
        """`docker inspect` of each of the project's containers, running or not, one-off
        containers (`compose run`) left out: what the health and up-to-date checks read. A
        container removed between the list and its inspect is left out too."""
        listed = self._list([f"com.docker.compose.project={project}"])
        out = []
        for c in listed:
            if (c.get("Labels") or {}).get("com.docker.compose.oneoff") == "True":
                continue
            try:
                out.append(self._inspect(str(c.get("Id", ""))))
            except DriverError as exc:
                if not str(exc).startswith("docker inspect: not found"):
                    raise
        return out

    def logs_since(self, container_id: str, since: datetime) -> str:
        if container_id not in self._tty:
            config = self._inspect(container_id, "logs").get("Config") or {}
            self._tty[container_id] = bool(config.get("Tty"))
        # Whole seconds, as the docker SDK sent them; a naive time is UTC.
        stamp = since if since.tzinfo else since.replace(tzinfo=UTC)
        params = {
            "stdout": "1",
            "stderr": "1",
            "since": str(int(stamp.timestamp())),
            "timestamps": "0",
            "tail": "all",
        }
        raw = self._get("logs", f"/containers/{container_id}/logs", params)
        data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
        if not self._tty[container_id]:
            data = _demultiplexed(data)
        return redactor.redact(data.decode(errors="replace"))


def _demultiplexed(buf: bytes) -> bytes:
    """The payload of the engine's multiplexed stream (an 8-byte header before each frame:
    stream, 3 zero bytes, big-endian length), stdout and stderr in the order written."""
    out, at = [], 0
    while len(buf) - at >= 8:
        (length,) = struct.unpack_from(">L", buf, at + 4)
        out.append(buf[at + 8 : at + 8 + length])
        at += 8 + length
    return b"".join(out)


def _message(resp: httpx.Response) -> str:
    """The engine's own explanation of an error answer: its JSON `message`, else the body."""
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])
    return resp.text.strip() or resp.reason_phrase


def _info(attrs: dict[str, Any]) -> ContainerInfo:
    config = attrs.get("Config") or {}
    state = attrs.get("State") or {}
    env = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    labels = config.get("Labels") or {}
    return ContainerInfo(
        id=str(attrs.get("Id", "")),
        name=str(attrs.get("Name", "")).lstrip("/"),
        image=str(config.get("Image", "")),
        status=str(state.get("Status", "")),
        started_at=str(state.get("StartedAt", "")),
        env=env,
        cmd=[str(c) for c in config.get("Cmd") or []],
        config_hash=labels.get("com.docker.compose.config-hash"),
        ports=_published(attrs),
    )


def _published(attrs: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    out: dict[str, list[tuple[str, str]]] = {}
    for port, bindings in ports.items():
        if bindings:  # None: exposed, not published
            out[str(port)] = [
                (str(b.get("HostIp") or ""), str(b.get("HostPort") or "")) for b in bindings
            ]
    return out


def _explain(exc: Any) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return redactor.redact(str(text).strip().splitlines()[0] if str(text).strip() else repr(exc))


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "FileNotFoundError" in text or "No such file" in text:
        return "socket missing (is dockerd running?)"
    if "PermissionError" in text or "Permission denied" in text:
        return "permission denied on the socket (docker group, or root)"
    if "Connection refused" in text or "ConnectionRefused" in text:
        return "connection refused (is dockerd running?)"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return "no engine answering: " + redactor.redact(first)[:300]


def _created(listed: dict[str, Any]) -> int:
    return int(listed.get("Created") or 0)


class DockerCli:
    """The docker CLI, where a recorded command is the point: the table of a Compose project's
    containers found by their labels (`docker ps` answers in milliseconds where a Compose v1
    process takes a second to start), kept as a step's evidence. Calls go through a Shell, so
    they are recorded and redacted like every other command."""

    def __init__(self, shell: Shell, host: str | None = None) -> None:
        self.shell = shell
        self.host = host

    def env(self) -> dict[str, str]:
        """The environment of a docker CLI call: the configured engine, when there is one."""
        return {"DOCKER_HOST": self.host} if self.host else {}

    def run(self, *args: str, timeout_s: float = 60) -> CommandRecord:
        return self.shell.run(["docker", *args], env=self.env(), timeout_s=timeout_s)

    def project_table(self, project: str) -> str:
        """The project's containers as `docker ps` shows them (name, image, status with
        health, ports): what `compose ps` says, without a Compose v1 process."""
        record = self.run(
            "ps", "-a", *_project_filters(project),
            "--format", "table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}",
        )  # fmt: skip
        return record.stdout.strip() or record.stderr.strip()


def _project_filters(project: str) -> list[str]:
    return [
        "--filter", f"label=com.docker.compose.project={project}",
        "--filter", "label=com.docker.compose.oneoff=False",
    ]  # fmt: skip
