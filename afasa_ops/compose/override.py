"""The Compose override that puts afasa-ops' own implementations in front of AFASA's stubbed
routes (`phase2.services.adopt`). Pure: it reads a parsed project and returns YAML text, so
the same inputs always give the same bytes (a second run changes nothing; a new version or
setting is a diff)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from afasa_ops.compose.project import ComposeProject, labels_of

OVERRIDE_FILE = "docker-compose.afasa-ops.yml"
BUILD_DIR = "afasa-ops-services"
DEFAULT_BASE_IMAGE = "python:3.11.10-slim-bookworm"
ROUTER_PREFIX = "afasa-ops"
SERVICE_PREFIX = "afasa-ops"

# Routes afasa-ops repairs: (router suffix, Traefik v3 rule, v2 rule). Everything else stays
# with AFASA. v3 matches a path by regexp with PathRegexp; v2 with a {name:regexp} in Path.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("discovery-sync", "Method(`POST`) && Path(`/api/discovery/ubibot/sync`)", ""),
    ("tb-sync", "Method(`POST`) && Path(`/api/tb/integrations/ubibot/sync`)", ""),
    ("devices", "Method(`GET`) && Path(`/api/devices`)", ""),
    (
        "device",
        "Method(`GET`) && PathRegexp(`^/api/devices/[^/]+$`)",
        "Method(`GET`) && Path(`/api/devices/{id:[^/]+}`)",
    ),
    (
        "device-state",
        "Method(`POST`) && PathRegexp(`^/api/(tb/)?devices/[^/]+/(enable|disable)$`)",
        "Method(`POST`) && (Path(`/api/devices/{id:[^/]+}/{op:enable|disable}`)"
        " || Path(`/api/tb/devices/{id:[^/]+}/{op:enable|disable}`))",
    ),
    ("report-generate", "Method(`POST`) && Path(`/api/report/generate`)", ""),
    ("report-reports", "PathPrefix(`/api/report/reports`)", ""),
)
# Traefik orders routers by rule length unless `priority` is set; AFASA's prefix rules can be
# longer than ours (an OR of five prefixes), so ours carry an explicit priority above any
# rule length a compose file plausibly holds.
ROUTE_PRIORITY = 10_000

WORKERS = ("report", "sync", "commands")
_CONSTRAINT_LABEL = re.compile(r"Label\(`([^`]+)`\s*,\s*`([^`]+)`\)")
_IMAGE_HINTS = {
    "postgres": ("postgres", "timescale", "postgis"),
    "nats": ("nats",),
    "s3": ("minio", "seaweedfs", "s3"),
}


@dataclass(frozen=True)
class OverrideInputs:
    """What the override depends on, derived from the checkout and the installed afasa-ops."""

    version: str
    network: str
    # What the packed afasa-ops wheel is made of (wheelhouse.source_fingerprint): new code of
    # the same version is a diff of the override, so phase 3 rebuilds the image.
    source: str
    entrypoints: str | None
    required_labels: dict[str, str]
    hosts: dict[str, str]
    base_image: str = DEFAULT_BASE_IMAGE
    traefik_major: int = 3
    main_files: list[str] = field(default_factory=lambda: ["docker-compose.yml"])


def traefik_service(project: ComposeProject) -> str | None:
    for name, spec in project.services.items():
        if "traefik" in str(spec.get("image") or "").split("/")[-1]:
            return name
    return None


def traefik_major(project: ComposeProject) -> int:
    """Traefik's major version from its image tag (v3 when it cannot be told)."""
    name = traefik_service(project)
    image = str((project.services.get(name or "") or {}).get("image") or "")
    tag = image.rpartition(":")[2].lstrip("v")
    return 2 if tag.startswith("2") else 3


def route_rules(major: int) -> list[tuple[str, str]]:
    """(router suffix, rule) for the Traefik major version the checkout runs."""
    return [(name, v2 if major == 2 and v2 else v3) for name, v3, v2 in ROUTES]


def _command_args(spec: Mapping[str, Any]) -> list[str]:
    command = spec.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def required_labels(project: ComposeProject) -> dict[str, str]:
    """Labels Traefik's docker provider needs to see a container: traefik.enable (harmless
    when exposedByDefault is true) and every `Label(k, v)` of its constraints."""
    labels = {"traefik.enable": "true"}
    name = traefik_service(project)
    if name is None:
        return labels
    for arg in _command_args(project.services[name]):
        if "constraints" in arg:
            labels.update(dict(_CONSTRAINT_LABEL.findall(arg)))
    return labels


def routed_network(project: ComposeProject) -> str:
    """The network key Traefik and AFASA's services share: Traefik's first network."""
    name = traefik_service(project)
    spec = project.services.get(name or "") or {}
    keys = spec.get("networks") or ["default"]
    return str(next(iter(keys)))


def entrypoints(project: ComposeProject) -> str | None:
    """The entrypoints AFASA's own routers use, so ours listen where theirs do."""
    for spec in project.services.values():
        for key, value in labels_of(spec).items():
            if key.startswith("traefik.http.routers.") and key.endswith(".entrypoints"):
                return value
    return None


def service_hosts(project: ComposeProject) -> dict[str, str]:
    """postgres / nats -> the checkout's service name for it (by image); s3 -> host:port."""
    hosts: dict[str, str] = {}
    for kind, hints in _IMAGE_HINTS.items():
        for name, spec in project.services.items():
            image = str(spec.get("image") or "").split("/")[-1].split(":")[0]
            if any(h in image for h in hints) and not name.startswith(SERVICE_PREFIX):
                # S3 is host:port: SeaweedFS' gateway listens on 8333, MinIO on 9000.
                port = ":8333" if "seaweedfs" in image else ":9000"
                hosts[kind] = name + port if kind == "s3" else name
                break
        hosts.setdefault(kind, "s3:9000" if kind == "s3" else kind)
    return hosts


def inputs_from(
    project: ComposeProject, version: str, main_files: list[str], base_image: str, source: str
) -> OverrideInputs:
    return OverrideInputs(
        version=version,
        source=source,
        network=routed_network(project),
        entrypoints=entrypoints(project),
        required_labels=required_labels(project),
        hosts=service_hosts(project),
        base_image=base_image,
        traefik_major=traefik_major(project),
        main_files=[f for f in main_files if f != OVERRIDE_FILE],
    )


def _environment(hosts: Mapping[str, str]) -> dict[str, str]:
    """Settings from variables AFASA's .env already has; the app role, never the owner."""
    return {
        "AFASA_OPS_DATABASE_APP_DSN": "postgresql://${AFASA_APP_ROLE:-afasa_app}:"
        "${AFASA_APP_PASSWORD}@" + hosts["postgres"] + ":5432/${POSTGRES_DB:-afasa}",
        "AFASA_OPS_NATS_URL": f"nats://{hosts['nats']}:4222",
        "AFASA_OPS_STORAGE_URL": "s3://${S3_BUCKET:-afasa-reports}",
        "AFASA_OPS_STORAGE_ENDPOINT": "${S3_ENDPOINT:-http://" + hosts["s3"] + "}",
        "AFASA_OPS_STORAGE_ACCESS_KEY": "${S3_ACCESS_KEY:-}",
        "AFASA_OPS_STORAGE_SECRET_KEY": "${S3_SECRET_KEY:-}",
        "AFASA_OPS_API_OIDC_ISSUER_URL": "${KEYCLOAK_ISSUER:-}",
        # A stack without Keycloak (a lab, the reference stack) opts into development tokens.
        "AFASA_OPS_API_ENVIRONMENT": "${AFASA_OPS_API_ENVIRONMENT:-production}",
        "AFASA_OPS_API_DEV_HS256_SECRET": "${AFASA_OPS_API_DEV_HS256_SECRET:-}",
        "AFASA_MASTER_KEY_BASE64": "${AFASA_MASTER_KEY_BASE64}",
        "AFASA_OPS_UBIBOT_BASE_URL": "${UBIBOT_BASE_URL:-https://webapi.ubibot.com}",
        # A single-tenant key serves UBIBOT_TENANT_ID only; other tenants' keys are secrets.
        "AFASA_OPS_UBIBOT_ACCOUNT_KEY": "${UBIBOT_ACCOUNT_KEY:-}",
        "AFASA_OPS_UBIBOT_TENANT_ID": "${UBIBOT_TENANT_ID:-}",
        "AFASA_OPS_UBIBOT_INTERVAL_S": "${UBIBOT_SYNC_INTERVAL_S:-300}",
        "AFASA_OPS_THINGSBOARD_BASE_URL": "${TB_BASE_URL:-}",
        "AFASA_OPS_THINGSBOARD_USERNAME": "${TB_USERNAME:-}",
        "AFASA_OPS_THINGSBOARD_PASSWORD": "${TB_PASSWORD:-}",
    }


def _healthcheck(port: int) -> dict[str, Any]:
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=3)"
    return {
        "test": ["CMD", "python3", "-c", probe],
        "interval": "5s",
        "timeout": "4s",
        "retries": 12,
    }


def _labels(inputs: OverrideInputs) -> dict[str, str]:
    labels = dict(inputs.required_labels)
    service = f"{ROUTER_PREFIX}-api"
    for suffix, rule in route_rules(inputs.traefik_major):
        router = f"traefik.http.routers.{ROUTER_PREFIX}-{suffix}"
        # Compose interpolates `$` in labels: `$$` is a literal one (the regexps' anchors).
        labels[f"{router}.rule"] = rule.replace("$", "$$")
        labels[f"{router}.priority"] = str(ROUTE_PRIORITY)
        labels[f"{router}.service"] = service
        if inputs.entrypoints:
            labels[f"{router}.entrypoints"] = inputs.entrypoints
    labels[f"traefik.http.services.{service}.loadbalancer.server.port"] = "8000"
    return labels


def _service(inputs: OverrideInputs, command: list[str], port: int) -> dict[str, Any]:
    return {
        "image": f"afasa-ops-services:{inputs.version}",
        # Every service carries the build (one image, cached after the first): an image with
        # no build would be pulled by phase 3, and no registry has it.
        "build": {
            "context": BUILD_DIR,
            "args": {
                "BASE_IMAGE": "${AFASA_OPS_BASE_IMAGE:-" + inputs.base_image + "}",
                "AFASA_OPS_VERSION": inputs.version,
                "AFASA_OPS_SOURCE": inputs.source,
            },
        },
        "command": command,
        "environment": _environment(inputs.hosts),
        "healthcheck": _healthcheck(port),
        "networks": [inputs.network],
        "restart": "unless-stopped",
    }


def build_override(inputs: OverrideInputs) -> dict[str, Any]:
    api = _service(inputs, ["afasa-ops", "serve", "--host", "0.0.0.0", "--port", "8000"], 8000)
    api["labels"] = _labels(inputs)
    services: dict[str, Any] = {f"{SERVICE_PREFIX}-api": api}
    for worker in WORKERS:
        spec = _service(inputs, ["afasa-ops", "worker", worker], 9102)
        spec["labels"] = {"traefik.enable": "false"}
        services[f"{SERVICE_PREFIX}-worker-{worker}"] = spec
    return {"services": services}


HEADER = (
    "# Written by afasa-ops (phase2.services.adopt): afasa-ops' API and workers in front of\n"
    "# AFASA's stubbed routes. Remove: delete this file and its name from COMPOSE_FILE in .env\n"
    "# (or `afasa-ops rollback`). See docs/patch.md.\n"
)


def render_override(inputs: OverrideInputs) -> str:
    body = yaml.safe_dump(build_override(inputs), sort_keys=False, width=200)
    return HEADER + body


def render_dockerfile(version: str) -> str:
    """The image: a Python base (a build ARG) plus the installed afasa-ops, from the wheels
    the step puts beside it, so no package index is needed. A venv, so any Debian-like
    Python 3.11 base works, with or without pip of its own."""
    return (
        f"ARG BASE_IMAGE={DEFAULT_BASE_IMAGE}\n"
        "FROM ${BASE_IMAGE}\n"
        f"ARG AFASA_OPS_VERSION={version}\n"
        "ARG AFASA_OPS_SOURCE=unknown\n"
        'LABEL org.afasa-ops.source="${AFASA_OPS_SOURCE}"\n'
        "ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \\\n"
        "    VIRTUAL_ENV=/opt/afasa-ops PATH=/opt/afasa-ops/bin:$PATH\n"
        "COPY wheels /wheels\n"
        "RUN python3 -m venv /opt/afasa-ops \\\n"
        '    && pip install -q --no-index --find-links /wheels "afasa-ops[service]==${AFASA_OPS_VERSION}" \\\n'
        "    && rm -rf /wheels && afasa-ops --help >/dev/null\n"
        "USER 10001\n"
        "WORKDIR /tmp\n"
        'CMD ["afasa-ops", "serve", "--host", "0.0.0.0", "--port", "8000"]\n'
    )


# The build context's wheels are made per run from the installed afasa-ops, never committed.
BUILD_GITIGNORE = "wheels/\n"


def compose_file_value(files: list[str], sep: str = ":") -> str:
    """COMPOSE_FILE for .env: every file, the override last, in path-separator form."""
    ordered = [f for f in files if f != OVERRIDE_FILE] + [OVERRIDE_FILE]
    return sep.join(ordered)


ADDED_MARK = "# COMPOSE_FILE added by afasa-ops (phase2.services.adopt)"


def with_compose_file(env_text: str, value: str) -> str:
    """.env text with COMPOSE_FILE set to value: replaced in place, else appended under a
    mark, so a rollback knows to drop the line rather than leave it behind."""
    lines = env_text.splitlines()
    out = [f"COMPOSE_FILE={value}" if ln.startswith("COMPOSE_FILE=") else ln for ln in lines]
    if not any(ln.startswith("COMPOSE_FILE=") for ln in lines):
        out += [ADDED_MARK, f"COMPOSE_FILE={value}"]
    return "\n".join(out) + "\n"


def without_override(env_text: str, sep: str = ":") -> str:
    """.env text with the override taken out of COMPOSE_FILE (the line dropped when nothing
    else is left), for rollback: .env is usually ignored by git, so no checkout restores it."""
    out: list[str] = []
    for line in env_text.splitlines():
        if line.startswith("COMPOSE_FILE=") and out and out[-1] == ADDED_MARK:
            out.pop()  # the line was ours: drop it whole
            continue
        if line.startswith("COMPOSE_FILE="):
            kept = [f for f in line.partition("=")[2].split(sep) if f and f != OVERRIDE_FILE]
            if kept == [f for f in line.partition("=")[2].split(sep) if f]:
                out.append(line)
                continue
            if kept:
                out.append("COMPOSE_FILE=" + sep.join(kept))
            continue
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def is_adopted_service(name: str) -> bool:
    return name.startswith(f"{SERVICE_PREFIX}-")
