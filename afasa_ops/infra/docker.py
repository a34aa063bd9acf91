"""The Docker engine driver (docker SDK 7.x): engine facts, Compose containers, their logs.

The SDK is imported inside methods so `afasa-ops --help` never loads it. Every engine error is
translated here into a one-line BlockedError (no engine, socket missing, permission denied)
or DriverError.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from afasa_ops.errors import BlockedError, DriverError
from afasa_ops.findings import CommandRecord
from afasa_ops.infra.shell import Shell
from afasa_ops.redact import redactor

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


class DockerEngine:
    def __init__(self, host: str | None = None, timeout_s: float = 30.0) -> None:
        self.host = resolve_host(host)
        self.timeout_s = timeout_s
        self._client: Any = None

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
    def client(self) -> Any:
        if self._client is None:
            problem = self._socket_problem()
            if problem:
                raise BlockedError(f"Docker engine at {self.host}: {problem}")
            import docker

            with self._translated("connect"):
                self._client = docker.DockerClient(base_url=self.host, timeout=int(self.timeout_s))
        return self._client

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        import docker.errors
        import requests

        try:
            yield
        except docker.errors.NotFound as exc:
            raise DriverError(f"docker {action}: not found: {_explain(exc)}") from exc
        except docker.errors.APIError as exc:
            raise DriverError(f"docker {action}: {_explain(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise BlockedError(f"Docker engine at {self.host}: {_reason(exc)}") from exc
        except PermissionError as exc:
            raise BlockedError(f"Docker engine at {self.host}: permission denied") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- facts -------------------------------------------------------------------------------
    def facts(self) -> EngineFacts:
        with self._translated("version"):
            data = self.client.version()
        with self._translated("info"):
            info = self.client.info()
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

    # -- compose containers ---------------------------------------------------------------------
    def service_container(self, project: str, service: str) -> ContainerInfo | None:
        """The newest container Compose (v1 or v2) created for this project's service."""
        filters = {
            "label": [
                f"com.docker.compose.project={project}",
                f"com.docker.compose.service={service}",
            ]
        }
        with self._translated("ps"):
            found = self.client.containers.list(all=True, filters=filters)
        if not found:
            return None
        newest = max(found, key=lambda c: c.attrs.get("Created", ""))
        return _info(newest.attrs)

    def services_with_containers(self, project: str) -> set[str]:
        """The project's services that have a container, running or not (one `ps` for all)."""
        filters = {"label": [f"com.docker.compose.project={project}"]}
        with self._translated("ps"):
            found = self.client.containers.list(all=True, filters=filters, sparse=True)
        return {str((c.attrs.get("Labels") or {}).get("com.docker.compose.service")) for c in found}

    def logs_since(self, container_id: str, since: datetime) -> str:
        with self._translated("logs"):
            container = self.client.containers.get(container_id)
            raw = container.logs(stdout=True, stderr=True, since=since, timestamps=False)
        return redactor.redact(raw.decode(errors="replace"))


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


class DockerCli:
    """The docker CLI, for what it answers fastest: image ids, and the containers of a Compose
    project found by their labels (`docker ps` answers in milliseconds where a Compose v1
    process takes a second to start). Calls go through a Shell, so they are recorded and
    redacted like every other command."""

    def __init__(self, shell: Shell, host: str | None = None) -> None:
        self.shell = shell
        self.host = host

    def env(self) -> dict[str, str]:
        """The environment of a docker CLI call: the configured engine, when there is one."""
        return {"DOCKER_HOST": self.host} if self.host else {}

    def quiet(self) -> DockerCli:
        """The same CLI on a private, unrecorded shell: for polling not worth journaling."""
        return DockerCli(Shell(), self.host)

    def run(self, *args: str, timeout_s: float = 60) -> CommandRecord:
        return self.shell.run(["docker", *args], env=self.env(), timeout_s=timeout_s)

    def image_ids(self, names: list[str]) -> list[str] | None:
        """The ids of these local images, in the order given; None when any is absent. One
        `docker image inspect` for them all."""
        if not names:
            return []
        record = self.run("image", "inspect", "--format", "{{.Id}}", *names)
        ids = record.stdout.split()
        return ids if record.exit_code == 0 and len(ids) == len(names) else None

    def project_container_ids(self, project: str) -> list[str]:
        record = self.run("ps", "-a", "-q", "--no-trunc", *_project_filters(project))
        return [ln.strip() for ln in record.stdout.splitlines() if ln.strip()]

    def project_table(self, project: str) -> str:
        """The project's containers as `docker ps` shows them (name, image, status with
        health, ports): what `compose ps` says, without a Compose v1 process."""
        record = self.run(
            "ps", "-a", *_project_filters(project),
            "--format", "table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}",
        )  # fmt: skip
        return record.stdout.strip() or record.stderr.strip()

    def inspect_json(self, ids: list[str], fmt: str) -> list[dict[str, Any]]:
        """`docker inspect --format fmt` where fmt renders one JSON object per line."""
        if not ids:
            return []
        record = self.run("inspect", "--format", fmt, *ids)
        out = []
        for line in record.stdout.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                out.append(item)
        return out


def _project_filters(project: str) -> list[str]:
    return [
        "--filter", f"label=com.docker.compose.project={project}",
        "--filter", "label=com.docker.compose.oneoff=False",
    ]  # fmt: skip
