"""Compose analysis for Traefik on Docker: findings, and the edits that fix what can be fixed.

Works on the merged, interpolated model (what Compose runs) and maps each fix back to the
file of the `-f` list that defines the value, so an override file is edited where it says so.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afasa_ops.compose.edit import Edit, Key
from afasa_ops.compose.project import ComposeProject, environment_of, labels_of
from afasa_ops.errors import UsageError
from afasa_ops.findings import Finding
from afasa_ops.traefik.compat import judge
from afasa_ops.traefik.images import is_traefik, parse_image
from afasa_ops.traefik.pins import PinTarget, choose

NETWORK_FLAG = "--providers.docker.network"
NETWORK_LABEL = "traefik.docker.network"
SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class EngineApi:
    version: str
    api_version: str
    min_api_version: str


@dataclass
class Analysis:
    service: str
    image: str
    findings: list[Finding] = field(default_factory=list)
    edits: dict[Path, list[Edit]] = field(default_factory=dict)
    # Problems the edits cannot fix (no provider, no network to point at...).
    unfixable: list[Finding] = field(default_factory=list)
    network: str | None = None

    def add_edit(self, path: Path, edit: Edit) -> None:
        bucket = self.edits.setdefault(path, [])
        if edit not in bucket:
            bucket.append(edit)


def find_traefik_service(project: ComposeProject, configured: str | None) -> str:
    services = project.services
    if configured:
        if configured not in services:
            raise UsageError(
                f"[compose] traefik_service = {configured!r}: no such service in "
                f"{', '.join(str(f) for f in project.files)}; services: {', '.join(services)}"
            )
        return configured
    found = [
        name
        for name, spec in services.items()
        if isinstance(spec, dict) and is_traefik(str(spec.get("image") or ""))
    ]
    if not found:
        raise UsageError(
            f"no Traefik service in {', '.join(str(f) for f in project.files)} "
            "(no service runs a traefik image)",
            hint="set [compose] traefik_service to its service name",
        )
    if len(found) > 1:
        raise UsageError(
            f"several services run Traefik ({', '.join(found)})",
            hint="set [compose] traefik_service to the one that routes the stack",
        )
    return found[0]


def analyse(
    project: ComposeProject,
    *,
    target_image: str,
    traefik_service: str | None = None,
    engine: EngineApi | None = None,
    explicit_target: str | None = None,
) -> Analysis:
    """`target_image` is the configured pin target, used within its major line;
    `explicit_target` (the operator's --param target_image) is used as given, and is pinned
    even where the image needs no pin."""
    name = find_traefik_service(project, traefik_service)
    spec = project.services[name]
    image = str(spec.get("image") or "")
    result = Analysis(name, image)
    _check_image(project, result, target_image, engine, explicit_target)
    _check_api_env(project, result)
    _check_provider(project, result, spec)
    _check_networks(project, result)
    _check_other_images(project, result)
    return result


# -- the image ------------------------------------------------------------------------------


def _check_image(
    project: ComposeProject,
    result: Analysis,
    configured: str,
    engine: EngineApi | None,
    explicit: str | None,
) -> None:
    ref = parse_image(result.image)
    args = command_args(project.services[result.service], result.service)
    pin = choose(
        result.image, configured=configured, explicit=explicit, engine=engine, command=args
    )
    needs_pin = False
    if not ref.pinned:
        shown = ref.tag or "no tag"
        result.findings.append(
            Finding.error(
                "traefik.unpinned",
                f"service {result.service} runs {result.image!r} ({shown}): a floating tag "
                f"can move to any release; {_pin_text(pin)}",
                service=result.service,
                image=result.image,
                target=pin.image,
            )
        )
        needs_pin = True
    elif ref.release and engine is not None:
        verdict = judge(ref.release, engine.min_api_version, engine.api_version)
        if verdict.compatible is False:
            result.findings.append(
                Finding.error(
                    "traefik.incompatible",
                    f"{verdict.reason} (engine {engine.version}); {_pin_text(pin)}",
                    service=result.service,
                    image=result.image,
                    fixed_api=verdict.fixed_api,
                    engine_min_api=engine.min_api_version,
                    source=verdict.source,
                    target=pin.image,
                )
            )
            needs_pin = True
    if explicit and result.image != explicit:
        result.findings.append(
            Finding.info(
                "traefik.pin_requested",
                f"pin {explicit} as given with --param target_image",
                service=result.service,
                image=result.image,
                target=explicit,
            )
        )
        needs_pin = True
    if not needs_pin:
        return
    if pin.blocked is not None:
        result.findings.append(pin.blocked)
        result.unfixable.append(pin.blocked)
        return
    result.findings += pin.findings
    if result.image != pin.image:
        path = _defining_file(project, ("services", result.service, "image"))
        result.add_edit(path, Edit("set", ("services", result.service, "image"), pin.image))


def _pin_text(pin: PinTarget) -> str:
    if pin.blocked is not None:
        return "no pin target in its release line"
    return f"pin {pin.image} ({pin.why}" + (f": {pin.source})" if pin.source else ")")


# -- DOCKER_API_VERSION ---------------------------------------------------------------------


def _check_api_env(project: ComposeProject, result: Analysis) -> None:
    env = environment_of(project.services[result.service])
    if "DOCKER_API_VERSION" not in env:
        return
    result.findings.append(
        Finding.error(
            "traefik.docker_api_version_env",
            f"service {result.service} sets DOCKER_API_VERSION={env['DOCKER_API_VERSION']}: "
            "ignored by traefik <= v3.6.0, and on later releases it turns negotiation off; "
            "remove it",
            service=result.service,
            value=env["DOCKER_API_VERSION"],
        )
    )
    for path, doc in zip(project.files, project.raw_docs, strict=True):
        raw_env = _get(doc, ("services", result.service, "environment"))
        base: tuple[Key, ...] = ("services", result.service, "environment")
        if isinstance(raw_env, dict) and "DOCKER_API_VERSION" in raw_env:
            edit_path: tuple[Key, ...] = (*base, "DOCKER_API_VERSION")
            result.add_edit(path, Edit("delete", base if len(raw_env) == 1 else edit_path))
        elif isinstance(raw_env, list):
            hits = [
                i for i, v in enumerate(raw_env) if str(v).partition("=")[0] == "DOCKER_API_VERSION"
            ]
            if hits and len(hits) == len(raw_env):
                result.add_edit(path, Edit("delete", base))
            else:
                for i in hits:
                    result.add_edit(path, Edit("delete", (*base, i)))


# -- the docker provider --------------------------------------------------------------------


def command_args(spec: dict[str, Any], service: str) -> list[str]:
    command = spec.get("command")
    if command is None:
        return []
    if isinstance(command, str):
        try:
            return shlex.split(command)
        except ValueError as exc:
            raise UsageError(f"service {service}: cannot parse `command` ({exc})") from None
    if isinstance(command, list):
        return [str(c) for c in command]
    raise UsageError(f"service {service}: `command` must be a list or a string")


def flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args) and not args[i + 1].startswith("--"):
            return args[i + 1]
    return None


def _provider_enabled(args: list[str], env: dict[str, str | None]) -> bool | None:
    """True/False when the flags or TRAEFIK_* variables say; None when they say nothing."""
    for arg in args:
        if arg in ("--providers.docker", "--providers.docker=true"):
            return True
        if arg == "--providers.docker=false":
            return False
        if arg.startswith("--providers.docker."):
            return True
    for key, value in env.items():
        if key == "TRAEFIK_PROVIDERS_DOCKER":
            return (value or "true").lower() == "true"
        if key.startswith("TRAEFIK_PROVIDERS_DOCKER_"):
            return True
    return None


def _check_provider(project: ComposeProject, result: Analysis, spec: dict[str, Any]) -> None:
    args = command_args(spec, result.service)
    env = environment_of(spec)
    enabled = _provider_enabled(args, env)
    endpoint = flag_value(args, "--providers.docker.endpoint") or ""
    socket_mounted = any(_volume_target(v) == SOCKET for v in spec.get("volumes") or [])
    reasons = []
    if enabled is False:
        reasons.append("the docker provider is switched off (--providers.docker=false)")
    elif enabled is None:
        reasons.append("no --providers.docker flag or TRAEFIK_PROVIDERS_DOCKER variable")
    if not socket_mounted and not endpoint.startswith(("tcp://", "http://", "https://", "ssh://")):
        reasons.append(f"no Docker socket is mounted at {SOCKET}")
    if reasons:
        finding = Finding.error(
            "traefik.no_docker_provider",
            f"service {result.service}: " + "; ".join(reasons),
            service=result.service,
        )
        result.findings.append(finding)
        result.unfixable.append(finding)


def _volume_target(volume: Any) -> str | None:
    if isinstance(volume, dict):
        return str(volume.get("target") or "") or None
    parts = str(volume).split(":")
    return parts[1] if len(parts) >= 2 else None


# -- networks -------------------------------------------------------------------------------


def _check_networks(project: ComposeProject, result: Analysis) -> None:
    attached = project.service_networks(result.service)
    spec = project.services[result.service]
    args = command_args(spec, result.service)
    configured = flag_value(args, NETWORK_FLAG)
    if configured is not None:
        _check_one_network(project, result, configured, attached, "flag")
    for svc, svc_spec in project.services.items():
        label = labels_of(svc_spec).get(NETWORK_LABEL) if isinstance(svc_spec, dict) else None
        if label is not None:
            _check_one_network(project, result, label, attached, svc)


def _check_one_network(
    project: ComposeProject, result: Analysis, value: str, attached: list[str], where: str
) -> None:
    if value in attached:
        result.network = result.network or value
        return
    wanted = _derive_network(project, value, attached)
    source = f"{NETWORK_FLAG}" if where == "flag" else f"label {NETWORK_LABEL} on {where}"
    shown = ", ".join(attached) or "none"
    finding = Finding.error(
        "traefik.network_mismatch",
        f"{source} names {value!r}, but {result.service} is attached to: {shown} "
        f"(project {project.name!r} from {project.name_source})"
        + (f"; set it to {wanted!r}" if wanted else ""),
        service=result.service,
        configured=value,
        attached=attached,
        wanted=wanted,
        project=project.name,
    )
    result.findings.append(finding)
    if wanted is None:
        result.unfixable.append(finding)
        return
    result.network = wanted
    if where == "flag":
        _fix_flag(project, result, value, wanted)
    else:
        _fix_label(project, result, where, wanted)


def _derive_network(project: ComposeProject, value: str, attached: list[str]) -> str | None:
    if len(attached) == 1:
        return attached[0]
    real = project.network_names()
    for key, name in real.items():
        if name in attached and (value == key or value.endswith("_" + key)):
            return name
    return None


def _fix_flag(project: ComposeProject, result: Analysis, old: str, wanted: str) -> None:
    base: tuple[Key, ...] = ("services", result.service, "command")
    path = _defining_file(project, base)
    raw = _get(project.raw_docs[project.files.index(path)], base)
    if isinstance(raw, list):
        for i, item in enumerate(raw):
            text = str(item)
            if text.startswith(NETWORK_FLAG + "="):
                result.add_edit(path, Edit("set", (*base, i), f"{NETWORK_FLAG}={wanted}"))
                return
            if text == NETWORK_FLAG and i + 1 < len(raw):
                result.add_edit(path, Edit("set", (*base, i + 1), wanted))
                return
    elif isinstance(raw, str):
        words = shlex.split(raw)
        for i, word in enumerate(words):
            if word.startswith(NETWORK_FLAG + "="):
                words[i] = f"{NETWORK_FLAG}={wanted}"
            elif word == NETWORK_FLAG and i + 1 < len(words):
                words[i + 1] = wanted
        result.add_edit(path, Edit("set", base, shlex.join(words)))


def _fix_label(project: ComposeProject, result: Analysis, service: str, wanted: str) -> None:
    base: tuple[Key, ...] = ("services", service, "labels")
    for path, doc in zip(project.files, project.raw_docs, strict=True):
        raw = _get(doc, base)
        if isinstance(raw, dict) and NETWORK_LABEL in raw:
            result.add_edit(path, Edit("set", (*base, NETWORK_LABEL), wanted))
        elif isinstance(raw, list):
            for i, item in enumerate(raw):
                if str(item).partition("=")[0] == NETWORK_LABEL:
                    result.add_edit(path, Edit("set", (*base, i), f"{NETWORK_LABEL}={wanted}"))


# -- other images ---------------------------------------------------------------------------


def _check_other_images(project: ComposeProject, result: Analysis) -> None:
    floating = []
    for svc, spec in project.services.items():
        if svc == result.service or not isinstance(spec, dict) or not spec.get("image"):
            continue
        if parse_image(str(spec["image"])).is_latest:
            floating.append(f"{svc} ({spec['image']})")
    if floating:
        result.findings.append(
            Finding.warning(
                "images.unpinned",
                "services on a floating `latest` image: " + ", ".join(floating),
                services=[f.split(" ")[0] for f in floating],
            )
        )


# -- helpers --------------------------------------------------------------------------------


def _get(doc: Any, path: tuple[Key, ...]) -> Any:
    node = doc
    for part in path:
        in_map = isinstance(node, dict) and part in node
        in_seq = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_map or in_seq):
            return None
        node = node[part]
    return node


def _defining_file(project: ComposeProject, path: tuple[Key, ...]) -> Path:
    """The last -f file that sets `path` (Compose replaces these keys file by file)."""
    for file, doc in reversed(list(zip(project.files, project.raw_docs, strict=True))):
        if _get(doc, path) is not None:
            return file
    raise UsageError(f"{'.'.join(map(str, path))} is not set in any compose file")
