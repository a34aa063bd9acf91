"""Prove routing: the Traefik API lists the expected `@docker` routers, and a request through
the entrypoint to each route gets an answer from the service, not Traefik's 404 or a 502/504."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from afasa_ops.compose.project import ComposeProject, labels_of, route_prefixes, router_names

TRAEFIK_404 = "404 page not found"


@dataclass(frozen=True)
class Expected:
    routers: list[str]  # names as the API shows them: report@docker
    routes: list[str]  # path prefixes to request through the entrypoint


def expected_routing(
    project: ComposeProject,
    extra_routes: list[str] | None = None,
    created: set[str] | None = None,
) -> Expected:
    """The routers and routes Traefik should have for the project's labelled services: only
    what a plain `up` starts (a service under an inactive profile has no container), and of
    those, when `created` is given, only services that have a container, running or stopped
    (phase 3 first creates services added to the project since, such as the adoption
    override's: no router can exist for them before; a stopped one is a real problem)."""
    routers: list[str] = []
    routes: list[str] = []
    for name, spec in project.active_services.items():
        if created is not None and name not in created:
            continue
        labels = labels_of(spec) if isinstance(spec, dict) else {}
        if labels.get("traefik.enable", "").lower() != "true":
            continue
        routers += [f"{name}@docker" for name in router_names(labels)]
        routes += route_prefixes(labels)
    for route in extra_routes or []:
        if route not in routes:
            routes.append(route)
    return Expected(sorted(set(routers)), routes)


@dataclass
class Probe:
    path: str
    status: int | None
    ok: bool
    detail: str


@dataclass
class RoutingReport:
    expected: Expected
    routers: dict[str, str] = field(default_factory=dict)  # name -> status
    probes: list[Probe] = field(default_factory=list)
    api_error: str | None = None
    # Why the routers were not listed (the API is not published): the entrypoint alone judges.
    api_skipped: str | None = None

    @property
    def missing(self) -> list[str]:
        if self.api_skipped is not None:
            return []
        return [r for r in self.expected.routers if r not in self.routers]

    @property
    def not_enabled(self) -> list[str]:
        return [r for r, s in self.routers.items() if r in self.expected.routers and s != "enabled"]

    @property
    def failed_probes(self) -> list[Probe]:
        return [p for p in self.probes if not p.ok]

    @property
    def unverifiable(self) -> bool:
        """No routers listed and no route to request: nothing proves routing."""
        return self.api_skipped is not None and not self.probes

    @property
    def ok(self) -> bool:
        return (
            self.api_error is None
            and not self.missing
            and not self.not_enabled
            and not self.failed_probes
            and not self.unverifiable
        )

    def problems(self) -> list[str]:
        out = []
        if self.api_error:
            out.append(self.api_error)
        if self.unverifiable:
            out.append(f"no route to request and no routers list ({self.api_skipped})")
        if self.missing:
            out.append("routers missing from the Traefik API: " + ", ".join(self.missing))
        if self.not_enabled:
            out.append("routers not enabled: " + ", ".join(self.not_enabled))
        out += [f"GET {p.path}: {p.detail}" for p in self.failed_probes]
        return out


def check_routing(
    api_url: str | None,
    entrypoint_url: str,
    expected: Expected,
    timeout_s: float = 5.0,
    *,
    api_skipped: str = "the Traefik API is not published",
) -> RoutingReport:
    """Routers from the API at api_url (None: skipped, saying why), then every route
    requested through the entrypoint."""
    from afasa_ops.infra import http

    report = RoutingReport(expected)
    with http.client(timeout_s) as client:
        if api_url is None:
            report.api_skipped = api_skipped
        else:
            _list_routers(client, api_url, report, timeout_s)
        for path in expected.routes:
            report.probes.append(_probe(client, entrypoint_url.rstrip("/") + path, path, timeout_s))
    return report


def _list_routers(client: Any, api_url: str, report: RoutingReport, timeout_s: float) -> None:
    from afasa_ops.infra import http

    what = f"Traefik API at {api_url}"
    try:
        with http.translated(what, timeout_s):
            response = client.get(
                api_url.rstrip("/") + "/api/http/routers", params={"search": "@docker"}
            )
            response.raise_for_status()
        data: Any = response.json()
        report.routers = {
            str(r.get("name")): str(r.get("status")) for r in data if isinstance(r, dict)
        }
    except http.HttpFailure as exc:
        report.api_error = exc.message
    except ValueError as exc:
        report.api_error = f"{what}: {type(exc).__name__}: {exc}"


def _probe(client: Any, url: str, path: str, timeout_s: float) -> Probe:
    from afasa_ops.infra import http

    try:
        response = http.request("GET", url, timeout_s=timeout_s, using=client)
    except http.HttpFailure as exc:
        return Probe(path, None, False, f"no answer from the entrypoint ({exc.reason})")
    body = response.text[:200]
    if response.status_code == 404 and body.strip() == TRAEFIK_404:
        return Probe(path, 404, False, "Traefik's own 404: no router matched")
    if response.status_code in (502, 503, 504):
        return Probe(path, response.status_code, False, f"{response.status_code} from Traefik")
    # A matched router whose backend answers 404 (or 401) is routing that works.
    return Probe(
        path, response.status_code, True, f"routed; backend answered {response.status_code}"
    )


def docker_routers(api_url: str, timeout_s: float = 2.0) -> dict[str, str] | None:
    """The `@docker` routers Traefik's API lists now (name -> status); None when the API
    gave no usable answer. Any router here proves the docker provider reached the engine:
    Traefik builds them only from a container list the engine returned."""
    from afasa_ops.infra import http

    report = RoutingReport(Expected([], []))
    with http.client(timeout_s) as client:
        _list_routers(client, api_url, report, timeout_s)
    if report.api_error is not None:
        return None
    return {name: status for name, status in report.routers.items() if name.endswith("@docker")}
