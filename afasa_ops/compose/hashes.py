"""Compose's config hash of every service, remembered between runs.

`compose config --hash=*` says whether a container still matches its definition; with
Compose v1 that is a Python process of 0.3-0.6 s on every run, the largest cost of a
converged rerun. Its answer depends only on inputs that are cheap to fingerprint: the
compose files, `.env` and every `env_file`, the environment Compose runs in, the ids of the
services' images and the Compose binary. While none of them changes, the last answer stands
(`compose-config-hashes.json` in the user's cache directory, runbook/context.py). A project using a feature whose inputs are not
fingerprinted here (`extends`, `include`, `ipc: service:...`) is always asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from afasa_ops.compose.project import ComposeProject
from afasa_ops.errors import DriverError
from afasa_ops.infra.compose import ComposeCli
from afasa_ops.infra.docker import DockerEngine
from afasa_ops.infra.shell import last_line

CACHE = "compose-config-hashes.json"


def config_hashes(
    compose: ComposeCli,
    project: ComposeProject,
    cache: Path | None,
    engine: DockerEngine,
) -> dict[str, str]:
    """service -> the config hash Compose labels its container with (active services only).
    `cache` is the file the last answer is kept in (None: a read-only checkout, always ask)."""
    key = fingerprint(engine, compose, project) if cache is not None else None
    if cache is not None and key is not None:
        remembered = _read(cache)
        if remembered.get("key") == key and isinstance(remembered.get("hashes"), dict):
            return {str(k): str(v) for k, v in remembered["hashes"].items()}
    hashes = ask(compose)
    if not compose.is_v1:
        hashes = _v2_env_file_services(engine, compose, project, hashes)
    if cache is not None and key is not None:
        with contextlib.suppress(OSError):  # a read-only checkout only loses the shortcut
            cache.write_text(json.dumps({"key": key, "hashes": hashes}))
    return hashes


def ask(compose: ComposeCli) -> dict[str, str]:
    record = compose.run("config", "--hash=*", timeout_s=120)
    if record.exit_code != 0:
        raise DriverError(
            f"compose config --hash exited {record.exit_code}: {last_line(record.stderr)}"
        )
    pairs = (line.split() for line in record.stdout.splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def _v2_env_file_services(
    engine: DockerEngine, compose: ComposeCli, project: ComposeProject, hashes: dict[str, str]
) -> dict[str, str]:
    """Compose v2 from 2.22 hashes a service for `config --hash` without merging its
    `env_file` into its environment, while `up` labels the container with the merged one
    (docker/compose#14001, fixed upstream by #14002): for such a service the two never match.
    There, Compose's own convergence decides: `--dry-run up` says whether it would recreate
    the container, and when it would not, the container's label is what is expected."""
    affected = [s for s in hashes if (project.services.get(s) or {}).get("env_file")]
    if not affected:
        return hashes
    out = dict(hashes)
    for service in affected:
        info = engine.service_container(project.name, service)
        if info is None or info.config_hash is None:
            continue  # no container: out of date whatever the hash says
        record = compose.run(
            "--dry-run", "up", "-d", "--no-build", "--no-deps", service, timeout_s=120
        )
        output = record.stderr + record.stdout
        said = re.findall(rf"Container {re.escape(info.name)}\s+(\w+)", output)
        if record.exit_code == 0 and said and not any(w.startswith("Recreate") for w in said):
            out[service] = info.config_hash
    return out


def fingerprint(engine: DockerEngine, compose: ComposeCli, project: ComposeProject) -> str | None:
    """A digest of everything Compose's answer depends on; None when that cannot be known."""
    if project.model.get("include") or any(_dynamic(spec) for spec in project.services.values()):
        return None
    images = _image_ids(engine, compose, project)
    if images is None:
        return None
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + data + b"\0")

    add("compose", json.dumps([compose.binary(), compose.version(), compose.project_name]).encode())
    add("docker_host", (compose.docker_host or "").encode())
    add("environment", json.dumps(sorted(os.environ.items())).encode())
    for path in [*project.files, project.directory / ".env", *_env_files(project)]:
        add(str(path), path.read_bytes() if path.is_file() else b"<absent>")
    add("images", json.dumps(images).encode())
    return digest.hexdigest()


def _dynamic(spec: Any) -> bool:
    """`extends` reads files not fingerprinted here; `ipc: service:x` hashes in the running
    container's id (compose/service.py config_dict)."""
    spec = spec if isinstance(spec, dict) else {}
    return "extends" in spec or str(spec.get("ipc") or "").startswith("service:")


def _env_files(project: ComposeProject) -> list[Path]:
    found: list[Path] = []
    for spec in project.services.values():
        given: Any = (spec or {}).get("env_file") or []
        for item in [given] if isinstance(given, (str, dict)) else given:
            path = item.get("path") if isinstance(item, dict) else item
            if path:
                found.append(project.directory / str(path))
    return found


def _image_ids(
    engine: DockerEngine, compose: ComposeCli, project: ComposeProject
) -> list[str] | None:
    """The id of every service's image (Compose hashes it in), or None when one is absent."""
    sep = "_" if compose.is_v1 else "-"
    names = sorted(
        {
            str((spec or {}).get("image") or f"{project.name}{sep}{service}")
            for service, spec in project.services.items()
        }
    )
    ids = engine.image_ids(names)
    if ids is None:
        return None
    return [f"{name}={image_id}" for name, image_id in zip(names, ids, strict=True)]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
