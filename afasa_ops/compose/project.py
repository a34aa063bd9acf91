"""Load a Compose project as Compose itself would: files in -f order, .env interpolation,
override merging, and the project and network names Compose derives."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from afasa_ops.compose.interpolate import interpolate, interpolate_tree, read_env_file
from afasa_ops.errors import UsageError

INITDB_TARGET = "/docker-entrypoint-initdb.d"
_ROUTE_PATH = re.compile(r"(?:PathPrefix|Path)\(\s*[`'\"]([^`'\"]+)[`'\"]")
# Keys Compose replaces instead of merging when an override file sets them.
_REPLACED_KEYS = {"command", "entrypoint", "image", "healthcheck", "build"}


def normalize_project_name(name: str) -> str:
    """Compose's rule for names from a directory or `name:`: lower-case, [a-z0-9_-] only,
    no leading _ or -."""
    kept = re.sub(r"[^a-z0-9_-]", "", name.lower())
    return kept.lstrip("_-")


@dataclass
class ComposeProject:
    directory: Path
    files: list[Path]
    name: str
    name_source: str
    env: dict[str, str]
    model: dict[str, Any]
    raw_docs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services = self.model.get("services") or {}
        return services if isinstance(services, dict) else {}

    @property
    def active_profiles(self) -> set[str]:
        """COMPOSE_PROFILES (environment, then .env), as Compose reads it."""
        return {p.strip() for p in self.env.get("COMPOSE_PROFILES", "").split(",") if p.strip()}

    @property
    def active_services(self) -> dict[str, dict[str, Any]]:
        """The services a plain `compose up` starts: those without `profiles`, and those with
        a profile that COMPOSE_PROFILES enables."""
        active = self.active_profiles
        return {
            name: spec
            for name, spec in self.services.items()
            if not isinstance(spec, dict)
            or not spec.get("profiles")
            or active & {str(p) for p in spec["profiles"]}
        }

    def network_names(self) -> dict[str, str]:
        """Network key -> the real network name on the engine."""
        names: dict[str, str] = {}
        networks = self.model.get("networks") or {}
        for key, spec in networks.items():
            spec = spec or {}
            if spec.get("name"):
                names[key] = str(spec["name"])
            elif spec.get("external"):
                external = spec["external"]
                names[key] = (
                    str(external["name"])
                    if isinstance(external, dict) and external.get("name")
                    else key
                )
            else:
                names[key] = f"{self.name}_{key}"
        if not networks or any(not svc.get("networks") for svc in self.services.values()):
            names.setdefault("default", f"{self.name}_default")
        return names

    def service_networks(self, service: str) -> list[str]:
        """Real names of the networks a service is attached to."""
        spec = self.services.get(service) or {}
        keys = spec.get("networks")
        if spec.get("network_mode"):
            return []
        if not keys:
            keys = ["default"]
        if isinstance(keys, dict):
            keys = list(keys)
        real = self.network_names()
        return [real.get(str(k), f"{self.name}_{k}") for k in keys]

    def container_name(self, service: str, v1: bool = False) -> str:
        spec = self.services.get(service) or {}
        if spec.get("container_name"):
            return str(spec["container_name"])
        return f"{self.name}_{service}_1" if v1 else f"{self.name}-{service}-1"

    def init_sql_dir(self) -> Path | None:
        for spec in self.services.values():
            for volume in spec.get("volumes") or []:
                source, target = _volume_parts(volume)
                if target and target.rstrip("/") == INITDB_TARGET and source:
                    path = Path(source)
                    return path if path.is_absolute() else (self.directory / path).resolve()
        return None


def environment_of(spec: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's `environment`, list or mapping form, as a dict."""
    env = spec.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    out: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        out[key] = value if sep else None
    return out


def labels_of(spec: Mapping[str, Any]) -> dict[str, str]:
    labels = spec.get("labels") or {}
    if isinstance(labels, dict):
        return {str(k): str(v) for k, v in labels.items()}
    out: dict[str, str] = {}
    for item in labels:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def route_prefixes(labels: Mapping[str, str]) -> list[str]:
    prefixes: list[str] = []
    for key, value in labels.items():
        if key.startswith("traefik.http.routers.") and key.endswith(".rule"):
            prefixes.extend(_ROUTE_PATH.findall(value))
    return prefixes


def router_names(labels: Mapping[str, str]) -> list[str]:
    names = []
    for key in labels:
        parts = key.split(".")
        if len(parts) >= 5 and parts[:3] == ["traefik", "http", "routers"] and parts[4] == "rule":
            names.append(parts[3])
    return names


def load_project(
    directory: Path,
    files: list[str] | None = None,
    *,
    project_name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ComposeProject:
    directory = directory.resolve()
    paths = [directory / f for f in (files or ["docker-compose.yml"])]
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: compose file not found", hint="set [compose] files")
    dotenv = read_env_file(directory / ".env")
    env = {**dotenv, **(os.environ if environ is None else environ)}
    raw_docs = [_read_yaml(p) for p in paths]
    merged: dict[str, Any] = {}
    for path, doc in zip(paths, raw_docs, strict=True):
        merged = _merge(merged, interpolate_tree(doc, env, str(path)))
    name, source = _project_name(directory, merged, env, project_name)
    return ComposeProject(directory, paths, name, source, env, merged, raw_docs)


def _project_name(
    directory: Path, model: Mapping[str, Any], env: Mapping[str, str], explicit: str | None
) -> tuple[str, str]:
    if explicit:
        return explicit, "configuration (-p)"
    if env.get("COMPOSE_PROJECT_NAME"):
        return env["COMPOSE_PROJECT_NAME"], "COMPOSE_PROJECT_NAME"
    if model.get("name"):
        return normalize_project_name(str(model["name"])), "top-level name:"
    return normalize_project_name(directory.name), f"directory name {directory.name!r}"


# libyaml's loader when PyYAML has it: the same documents and error marks, ten times faster,
# and a run reads the compose file at nearly every step.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.load(path.read_text(), Loader=_SAFE_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise UsageError(f"{path}: invalid YAML at {where}: {exc.problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: a compose file is a mapping with `services`")
    services = doc.get("services")
    if services is not None and not isinstance(services, dict):
        raise UsageError(f"{path}: `services` must be a mapping of service names")
    return doc


def _merge(base: Any, over: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if k in out and k not in _REPLACED_KEYS:
                out[k] = _merge(out[k], v, str(k))
            else:
                out[k] = v
        return out
    if isinstance(base, list) and isinstance(over, list) and key not in _REPLACED_KEYS:
        if key in ("environment", "labels"):
            merged = {**_pairs(base), **_pairs(over)}
            return [f"{k}={v}" if v is not None else k for k, v in merged.items()]
        return base + [v for v in over if v not in base]
    return over


def _pairs(items: list[Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        k, sep, v = str(item).partition("=")
        out[k] = v if sep else None
    return out


def _volume_parts(volume: Any) -> tuple[str | None, str | None]:
    if isinstance(volume, dict):
        return volume.get("source"), volume.get("target")
    parts = str(volume).split(":")
    if len(parts) >= 2:
        return parts[0], parts[1]
    return None, parts[0]


__all__ = [
    "ComposeProject",
    "environment_of",
    "interpolate",
    "labels_of",
    "load_project",
    "normalize_project_name",
    "route_prefixes",
    "router_names",
]


def secret_values(project: ComposeProject) -> list[str]:
    """Values the redactor must hide: secret-named variables in .env and service environments,
    and passwords inside URLs there."""
    from afasa_ops.redact import Redactor

    collector = Redactor()
    collector.learn_mapping(read_env_file(project.directory / ".env"))
    for spec in project.services.values():
        collector.learn_mapping(environment_of(spec))
    return collector.values()
