"""Where Traefik's web entrypoint and API answer on the host, as the checkout says.

The container ports come from Traefik's own configuration in the service's `command` (list
or string) and `TRAEFIK_*` environment: the `web` entrypoint's address (`:80` by default) and,
with `--api.insecure=true`, the `traefik` entrypoint's (`:8080` by default). The host ports
come from the service's `ports:` (short and long syntax, ranges, host IPs; interpolated by the
project loader), or from the running container's published ports when the file does not say
(ports in a file not in the `-f` list, or published at random).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from afasa_ops.compose.project import environment_of
from afasa_ops.errors import UsageError
from afasa_ops.traefik.analysis import command_args

WEB = "web"
API_ENTRYPOINT = "traefik"
DEFAULT_WEB_PORT = 80
DEFAULT_API_PORT = 8080
# What the finding suggests publishing when the API is not: on loopback only, since an
# insecure API lists every route.
SUGGESTED_API_PORTS = '"127.0.0.1:8081:8080"'

_ALL_INTERFACES = {"", "0.0.0.0", "::"}
# What `docker port` says of a container: "80/tcp" -> [(host_ip, host_port), ...].
Published = Mapping[str, Sequence[tuple[str, str]]]
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class PortMapping:
    """One `ports:` entry: a container port range and where the host publishes it."""

    target: tuple[int, int]
    published: tuple[int, int] | None  # None: the engine picks a free host port
    host_ip: str = ""
    protocol: str = "tcp"
    raw: str = ""

    def host_port(self, container_port: int) -> int | None:
        """The host port this entry gives container_port; None when the engine chooses it."""
        first, last = self.target
        if not first <= container_port <= last or self.published is None:
            return None
        low, high = self.published
        if first == last:
            # One container port on a host range: the engine takes any free port of it.
            return low if low == high else None
        return low + (container_port - first)


@dataclass(frozen=True)
class Endpoint:
    """Where one of Traefik's listeners answers from the host."""

    role: str  # "entrypoint" or "API"
    container_port: int | None  # None: not served on a port (API without --api.insecure)
    url: str | None = None
    source: str = ""  # where the URL comes from, for the evidence
    problem: str = ""  # why there is no URL

    @property
    def unresolved(self) -> bool:
        """Served by the container, but the file does not say on which host port."""
        return self.url is None and self.container_port is not None


@dataclass(frozen=True)
class TraefikPorts:
    service: str
    entrypoint: Endpoint
    api: Endpoint

    def with_runtime(self, published: Published | None) -> TraefikPorts:
        """Fill in what the file left open from the container's published ports (None:
        no container is running)."""
        return replace(
            self,
            entrypoint=_from_runtime(self.entrypoint, published),
            api=_from_runtime(self.api, published),
        )

    def configured(self, api_url: str | None, entrypoint_url: str | None) -> TraefikPorts:
        """Explicit [traefik] keys win over anything derived."""
        api, web = self.api, self.entrypoint
        if api_url:
            api = replace(api, url=api_url, source="[traefik] api_url", problem="")
        if entrypoint_url:
            web = replace(web, url=entrypoint_url, source="[traefik] entrypoint_url", problem="")
        return replace(self, api=api, entrypoint=web)


# -- the container ports, from Traefik's configuration ----------------------------------------


def static_option(args: Sequence[str], env: Mapping[str, str | None], key: str) -> str | None:
    """A Traefik static option (`entrypoints.web.address`) from its flag or TRAEFIK_* variable.
    Traefik reads both case-insensitively (`--entryPoints.web.address` is common); a bare
    boolean flag means true. The command line wins, as in Traefik."""
    flag = "--" + key.lower()
    for i, arg in enumerate(args):
        name, sep, value = arg.partition("=")
        if name.lower() != flag:
            continue
        if sep:
            return value
        following = args[i + 1] if i + 1 < len(args) else None
        if following is not None and not following.startswith("-"):
            return following
        return "true"
    wanted = "TRAEFIK_" + key.upper().replace(".", "_")
    for var, setting in env.items():
        if var.upper() == wanted:
            return "true" if setting is None else setting
    return None


def entrypoint_names(args: Sequence[str], env: Mapping[str, str | None]) -> list[str]:
    names: list[str] = []
    for arg in args:
        match = re.match(r"^--entrypoints\.([^.=]+)\.address(?:=|$)", arg, re.IGNORECASE)
        if match and match.group(1).lower() not in names:
            names.append(match.group(1).lower())
    for key in env:
        match = re.match(r"^TRAEFIK_ENTRYPOINTS_([^_]+)_ADDRESS$", key, re.IGNORECASE)
        if match and match.group(1).lower() not in names:
            names.append(match.group(1).lower())
    return names


def address_port(address: str, where: str) -> int:
    """The port of a Traefik entrypoint address: `:80`, `0.0.0.0:80`, `[::]:80`, `:80/tcp`."""
    host_port = address.strip().split("/", 1)[0]
    port = host_port.rsplit(":", 1)[-1]
    if not port.isdigit():
        raise UsageError(f"{where}: cannot read a port from the address {address!r}")
    return int(port)


def web_port(args: Sequence[str], env: Mapping[str, str | None], service: str) -> int:
    """The container port of the entrypoint routes are requested on: `web`, else the only
    entrypoint besides `traefik`, else Traefik's default :80."""
    names = [n for n in entrypoint_names(args, env) if n != API_ENTRYPOINT]
    name = WEB if WEB in names else (names[0] if len(names) == 1 else None)
    if name is None:
        return DEFAULT_WEB_PORT
    address = static_option(args, env, f"entrypoints.{name}.address") or ""
    return address_port(address, f"service {service}: entrypoint {name}")


def api_port(args: Sequence[str], env: Mapping[str, str | None], service: str) -> int | None:
    """The container port of the API, when `--api.insecure=true` serves it on the `traefik`
    entrypoint; None when the API is not served on a port of its own."""
    insecure = static_option(args, env, "api.insecure")
    if insecure is None or insecure.strip().lower() != "true":
        return None
    address = static_option(args, env, f"entrypoints.{API_ENTRYPOINT}.address")
    if not address:
        return DEFAULT_API_PORT
    return address_port(address, f"service {service}: entrypoint {API_ENTRYPOINT}")


# -- the host ports, from `ports:` -------------------------------------------------------------


def parse_ports(entries: Any, service: str) -> list[PortMapping]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise UsageError(f"service {service}: `ports` must be a list")
    out: list[PortMapping] = []
    for i, entry in enumerate(entries):
        where = f"service {service}: ports[{i}]"
        if isinstance(entry, dict):
            out.append(_long_syntax(entry, where))
        elif isinstance(entry, (str, int)) and not isinstance(entry, bool):
            out.append(_short_syntax(str(entry), where))
        else:
            raise UsageError(f"{where}: {entry!r} is neither a port string nor a mapping")
    return out


def _short_syntax(raw: str, where: str) -> PortMapping:
    """`[[HOST_IP:]HOST:]CONTAINER[/PROTOCOL]`, each port a number or a range, as Docker's
    own parser splits it (an IPv6 host IP in brackets or bare)."""
    text, _, protocol = raw.strip().partition("/")
    parts = text.split(":")
    container = parts[-1]
    published = parts[-2] if len(parts) >= 2 else ""
    host_ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
    return PortMapping(
        target=_port_range(container, where, raw),
        published=_port_range(published, where, raw) if published else None,
        host_ip=host_ip.strip("[]"),
        protocol=(protocol or "tcp").lower(),
        raw=raw,
    )


def _long_syntax(entry: Mapping[str, Any], where: str) -> PortMapping:
    if entry.get("target") in (None, ""):
        raise UsageError(f"{where}: the long syntax needs `target` (the container port)")
    published = entry.get("published")
    raw = ", ".join(f"{k}: {v}" for k, v in entry.items())
    return PortMapping(
        target=_port_range(str(entry["target"]), where, raw),
        published=_port_range(str(published), where, raw) if published not in (None, "") else None,
        host_ip=str(entry.get("host_ip") or "").strip("[]"),
        protocol=str(entry.get("protocol") or "tcp").lower(),
        raw=raw,
    )


def _port_range(text: str, where: str, raw: str) -> tuple[int, int]:
    match = _RANGE.match(text.strip())
    if not match:
        raise UsageError(f"{where}: {raw!r}: {text!r} is not a port or a port range")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 0 < low <= high <= 65535:
        raise UsageError(f"{where}: {raw!r}: {text!r} is not a port range within 1-65535")
    return low, high


def url_host(host_ip: str) -> str:
    """The host to request: loopback for "all interfaces", brackets around IPv6."""
    if host_ip in _ALL_INTERFACES:
        return "127.0.0.1"
    return f"[{host_ip}]" if ":" in host_ip else host_ip


def resolve(mappings: Sequence[PortMapping], container_port: int) -> tuple[str, str] | None:
    """(url, the entry it comes from) for a TCP container port, or None."""
    for mapping in mappings:
        if mapping.protocol != "tcp":
            continue
        host_port = mapping.host_port(container_port)
        if host_port is not None:
            return f"http://{url_host(mapping.host_ip)}:{host_port}", mapping.raw
    return None


# -- both together -----------------------------------------------------------------------------


def from_compose(spec: Mapping[str, Any], service: str, files: str) -> TraefikPorts:
    """The endpoints as the merged compose model of the Traefik service says."""
    args = command_args(dict(spec), service)
    env = environment_of(spec)
    web = web_port(args, env, service)
    api = api_port(args, env, service)
    host_network = str(spec.get("network_mode") or "") == "host"
    mappings = [] if host_network else parse_ports(spec.get("ports"), service)
    return TraefikPorts(
        service,
        _endpoint("entrypoint", web, mappings, host_network, service, files),
        _endpoint("API", api, mappings, host_network, service, files),
    )


def resolve_endpoints(
    spec: Mapping[str, Any],
    service: str,
    files: str,
    *,
    api_url: str | None,
    entrypoint_url: str | None,
    published: Callable[[], Published | None],
) -> TraefikPorts:
    """Explicit URLs, else the compose files, else the running container's published ports
    (asked only when a URL is still open; None from `published`: no container)."""
    ports = from_compose(spec, service, files)
    open_api = api_url is None and ports.api.unresolved
    open_web = entrypoint_url is None and ports.entrypoint.unresolved
    if open_api or open_web:
        ports = ports.with_runtime(published())
    return ports.configured(api_url, entrypoint_url)


def _endpoint(
    role: str,
    port: int | None,
    mappings: Sequence[PortMapping],
    host_network: bool,
    service: str,
    files: str,
) -> Endpoint:
    if port is None:
        return Endpoint(
            role, None, problem="not served on a port of its own (no --api.insecure=true)"
        )
    if host_network:
        return Endpoint(role, port, f"http://127.0.0.1:{port}", f"network_mode: host, :{port}")
    found = resolve(mappings, port)
    if found is not None:
        return Endpoint(role, port, found[0], f"ports {found[1]!r} of {service} in {files}")
    mentioned = any(m.protocol == "tcp" and m.target[0] <= port <= m.target[1] for m in mappings)
    problem = (
        f"container port {port} is published on a host port the engine picks"
        if mentioned
        else f"container port {port} is not published in {files}"
    )
    return Endpoint(role, port, problem=problem)


def _from_runtime(endpoint: Endpoint, published: Published | None) -> Endpoint:
    if not endpoint.unresolved:
        return endpoint
    if published is None:
        return replace(endpoint, problem=f"{endpoint.problem}, and no Traefik container runs")
    bindings = list(published.get(f"{endpoint.container_port}/tcp") or [])
    # IPv4 first: "0.0.0.0" and "::" both mean every interface, 127.0.0.1 answers for both.
    bindings.sort(key=lambda b: ":" in b[0])
    for host_ip, host_port in bindings:
        if host_port.isdigit():
            return replace(
                endpoint,
                url=f"http://{url_host(host_ip)}:{host_port}",
                source=f"the running container publishes {endpoint.container_port}/tcp "
                f"on {host_ip or '0.0.0.0'}:{host_port}",
                problem="",
            )
    return replace(
        endpoint,
        problem=f"{endpoint.problem}, and the running container does not publish it either",
    )


def unpublished_api_advice(ports: TraefikPorts) -> str:
    """What to add so that afasa-ops can list Traefik's routers."""
    api = ports.api
    where = f"under the {ports.service} service"
    if api.container_port is None:
        return (
            f'add "--api.insecure=true" to its command and ports: [{SUGGESTED_API_PORTS}] '
            f"{where}, or set [traefik] api_url"
        )
    publish = SUGGESTED_API_PORTS.replace(":8080", f":{api.container_port}")
    return f"add ports: [{publish}] {where}, or set [traefik] api_url"


def unpublished_entrypoint_advice(ports: TraefikPorts) -> str:
    port = ports.entrypoint.container_port
    return (
        f'add ports: ["{port}:{port}"] under the {ports.service} service, '
        "or set [traefik] entrypoint_url"
    )
