"""`afasa-ops init`: inspect an AFASA checkout and write an afasa-ops.toml that describes it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from afasa_ops.compose.project import (
    ComposeProject,
    labels_of,
    load_project,
    route_prefixes,
)
from afasa_ops.errors import UsageError
from afasa_ops.files import atomic_write
from afasa_ops.traefik.ports import (
    TraefikPorts,
    from_compose,
    unpublished_api_advice,
    unpublished_entrypoint_advice,
)

COMPOSE_CANDIDATES = ("docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml")
OVERRIDE_CANDIDATES = (
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
    "compose.override.yaml",
    "compose.override.yml",
)


@dataclass
class ServiceInfo:
    name: str
    routes: list[str]
    health: str | None


@dataclass
class InitResult:
    config_path: Path
    repo: Path
    compose_files: list[str]
    project_name: str
    project_name_source: str
    networks: list[str]
    init_sql_dir: str | None
    traefik_service: str | None
    services: list[ServiceInfo] = field(default_factory=list)
    # Where Traefik's entrypoint and API answer, from the service's `ports:`.
    traefik_ports: TraefikPorts | None = None
    text: str = ""


def init(repo: Path, config_path: Path, *, force: bool = False) -> InitResult:
    """Inspect `repo` and write the config describing it to `config_path`."""
    result = inspect(repo, config_path)
    write(result, force)
    return result


def inspect(repo: Path, config_path: Path) -> InitResult:
    repo = repo.resolve()
    if not repo.is_dir():
        raise UsageError(f"{repo}: no such directory", hint="give the path of an AFASA checkout")
    files = [n for n in COMPOSE_CANDIDATES if (repo / n).exists()][:1]
    if not files:
        raise UsageError(
            f"{repo}: no docker-compose.yml or compose.yaml",
            hint="is this an AFASA checkout? pass its path to `afasa-ops init`",
        )
    files += [n for n in OVERRIDE_CANDIDATES if (repo / n).exists()][:1]
    # The project name must not depend on whoever runs init: only .env and the files count.
    project = load_project(repo, files, environ={})
    init_dir = project.init_sql_dir()
    traefik = _traefik_service(project)
    result = InitResult(
        config_path=config_path,
        repo=repo,
        compose_files=files,
        project_name=project.name,
        project_name_source=project.name_source,
        networks=sorted(set(project.network_names().values())),
        init_sql_dir=str(init_dir.relative_to(repo))
        if init_dir and init_dir.is_relative_to(repo)
        else None,
        traefik_service=traefik,
        services=_services(project),
        traefik_ports=from_compose(project.services[traefik], traefik, ", ".join(files))
        if traefik
        else None,
    )
    result.text = render_config(result)
    return result


def write(result: InitResult, force: bool) -> None:
    if result.config_path.exists() and not force:
        raise UsageError(
            f"{result.config_path} exists; not overwriting it", hint="pass --force to replace it"
        )
    result.config_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(result.config_path, result.text)


def _traefik_service(project: ComposeProject) -> str | None:
    for name, spec in project.services.items():
        image = str(spec.get("image") or "")
        if image.split("/")[-1].split(":")[0].split("@")[0] == "traefik":
            return name
    return None


def _services(project: ComposeProject) -> list[ServiceInfo]:
    out = []
    for name, spec in project.services.items():
        labels = labels_of(spec)
        routes = route_prefixes(labels)
        if not routes:
            continue
        # AFASA services expose /healthz and /readyz; a compose healthcheck wins when present.
        health = None if spec.get("healthcheck") else "/readyz"
        out.append(ServiceInfo(name, routes, health))
    return out


def _q(value: str) -> str:
    return json.dumps(value)


def _traefik_lines(r: InitResult) -> list[str]:
    """[traefik] URLs as the compose file publishes them; what it leaves open is derived at
    run time (the running container's ports), and a comment says so."""
    ports = r.traefik_ports
    if ports is None:
        return []
    web, api = ports.entrypoint, ports.api
    lines = ["", "[traefik]", f"# From the {ports.service} service's ports: in the compose files."]
    lines.append("# Remove a URL to derive it again at run time.")
    for key, endpoint in (("entrypoint_url", web), ("api_url", api)):
        if endpoint.url:
            lines.append(f"{key} = {_q(endpoint.url)}  # {endpoint.source}")
    if web.url is None:
        lines.append(f"# entrypoint_url: {web.problem}; taken from the running container, else")
        lines.append(f"# {unpublished_entrypoint_advice(ports)}.")
    if api.url is None:
        lines.append(f"# api_url: {api.problem}; taken from the running container if it")
        lines.append("# publishes it, else routing is verified through the entrypoint alone:")
        lines.append(f"# {unpublished_api_advice(ports)}.")
    if web.url:
        # The functional checks go through the same entrypoint.
        lines += ["", "[checks]", f"base_url = {_q(web.url)}"]
    return lines


def render_config(r: InitResult) -> str:
    try:
        repo_value = str(r.repo.relative_to(r.config_path.parent.resolve())) or "."
    except ValueError:
        repo_value = str(r.repo)
    lines = [
        "# afasa-ops configuration, written by `afasa-ops init`.",
        "# Every key is documented in docs/configuration.md. Secrets are references:",
        '#   admin_dsn = { env = "AFASA_ADMIN_DSN" }   or   { file = "/run/secrets/admin_dsn" }',
        "# and any key can be overridden with AFASA_OPS_<SECTION>_<KEY>.",
        "",
        "[repo]",
        f"path = {_q(repo_value or '.')}",
        "",
        "[compose]",
        f"files = [{', '.join(_q(f) for f in r.compose_files)}]",
        f"# Derived from {r.project_name_source}, as Compose does.",
        f"project_name = {_q(r.project_name)}",
        f"networks = [{', '.join(_q(n) for n in r.networks)}]",
    ]
    if r.traefik_service:
        lines.append(f"traefik_service = {_q(r.traefik_service)}")
    if r.init_sql_dir:
        lines.append(f"init_sql_dir = {_q(r.init_sql_dir)}")
    lines += _traefik_lines(r)
    lines += [
        "",
        "[database]",
        "# The admin DSN carries a password: set AFASA_OPS_DATABASE_ADMIN_DSN, or reference it.",
        'admin_dsn = { env = "AFASA_ADMIN_DSN" }',
        'app_dsn = { env = "AFASA_APP_DSN" }',
        "",
        "[nats]",
        'url = "nats://127.0.0.1:4222"',
    ]
    for svc in r.services:
        lines += [
            "",
            "[[services]]",
            f"name = {_q(svc.name)}",
            f"routes = [{', '.join(_q(x) for x in svc.routes)}]",
        ]
        if svc.health:
            lines.append(f"health = {_q(svc.health)}")
    return "\n".join(lines) + "\n"
