"""Phase 1 step kinds `traefik.*`: the compose fix, recreating Traefik, its provider's health
(with the two fallbacks), and routing verified through the API and the entrypoint. The
engine's facts are `docker.engine` (steps/docker.py)."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from afasa_ops.compose.project import ComposeProject, environment_of
from afasa_ops.errors import BlockedError, DriverError
from afasa_ops.files import atomic_write
from afasa_ops.findings import Finding
from afasa_ops.infra.docker import ContainerInfo
from afasa_ops.runbook.commits import commit_change, required_message
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.files import replace_file
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.step import Params, Step, register
from afasa_ops.traefik.analysis import Analysis, EngineApi, analyse, command_args
from afasa_ops.traefik.fallback import (
    PACKAGES,
    PIN_FILE,
    PIN_TEXT,
    DowngradePlan,
    daemon_config_text,
    downgrade_plan,
    read_os_release,
)
from afasa_ops.traefik.fix import compose_changes
from afasa_ops.traefik.logs import LogScan, scan
from afasa_ops.traefik.ports import (
    TraefikPorts,
    resolve_endpoints,
    unpublished_api_advice,
    unpublished_entrypoint_advice,
)
from afasa_ops.traefik.routing import (
    RoutingReport,
    check_routing,
    docker_routers,
    expected_routing,
)

# How often the provider's wait asks the API for routers (one local request; the repair waits
# on nothing else), and how often it scans Traefik's logs meanwhile (the engine's log stream
# costs more; the logs are scanned once more before the routers end the wait).
_SETTLE_POLL_S = 0.05
_LOG_SCAN_S = 0.25
# How often the routing wait asks again (routers and one request per route, all local): the
# routes usually answer within a poll or two of the routers appearing, not a second later.
_ROUTING_POLL_S = 0.1

# -- shared helpers -----------------------------------------------------------------------


def traefik_service(ctx: Context, proj: ComposeProject) -> str:
    from afasa_ops.traefik.analysis import find_traefik_service

    return find_traefik_service(proj, ctx.settings.compose.traefik_service)


def recreate_traefik(ctx: Context, proj: ComposeProject, service: str) -> datetime:
    """`up -d --force-recreate --no-deps <traefik>`; returns when it was started."""
    # A second's margin: the engine's clock and `since` have one-second resolution.
    started = datetime.now(UTC) - timedelta(seconds=1)
    ctx.compose.run("up", "-d", "--force-recreate", "--no-deps", service, timeout_s=300, check=True)
    ctx.facts.traefik_recreated_at = started
    return started


def analyse_compose(ctx: Context, target_image: str | None) -> tuple[Analysis, list[Finding]]:
    """The compose file judged against the engine (when it answers)."""
    notes: list[Finding] = []
    api: EngineApi | None = None
    try:
        facts = ctx.engine_facts()
        api = EngineApi(facts.version, facts.api_version, facts.min_api_version)
    except BlockedError as exc:
        notes.append(
            Finding.info(
                "traefik.engine_unknown",
                f"compatibility with the engine not judged: {exc}",
            )
        )
    explicit = ctx.params.get("target_image")
    analysis = analyse(
        ctx.project(),
        target_image=target_image or ctx.settings.traefik.target_image,
        traefik_service=ctx.settings.compose.traefik_service,
        engine=api,
        # Only the operator's --param target_image may cross a major version.
        explicit_target=str(explicit) if explicit else None,
    )
    return analysis, notes


def container_drift_now(ctx: Context) -> tuple[str, ContainerInfo | None, list[str]]:
    """Traefik's service, its container, and how that container differs from the file."""
    proj = ctx.project()
    service = traefik_service(ctx, proj)
    info = ctx.docker.service_container(proj.name, service)
    return service, info, container_drift(proj.services[service], service, info)


# -- the compose fix ----------------------------------------------------------------------


class ComposeFixParams(Params):
    target_image: str | None = Field(
        default=None, description="Pin target; [traefik] target_image when unset."
    )
    message: str | None = Field(
        default=None, description="The commit message of the fix (the runbook gives it)."
    )


@register
class ComposeFix(Step[ComposeFixParams]):
    """Pin Traefik, drop DOCKER_API_VERSION, point the provider at the real network."""

    kind = "traefik.compose"
    Params = ComposeFixParams

    def _analyse(self, ctx: Context) -> tuple[Analysis, list[Finding]]:
        return analyse_compose(ctx, self.params.target_image)

    def check(self, ctx: Context) -> Assessment:
        analysis, notes = self._analyse(ctx)
        findings = analysis.findings + notes
        if analysis.unfixable:
            return Assessment.blocked("; ".join(f.message for f in analysis.unfixable), findings)
        changes = compose_changes(analysis, ctx.repo)
        if not changes:
            return Assessment.ok(
                f"{analysis.service} runs {analysis.image}; nothing to fix", findings
            )
        diff = "".join(c.diff for c in changes)
        fixing = sorted({f.code for f in analysis.findings if f.severity == "error"})
        why = f"fix {', '.join(fixing)}" if fixing else "pin the requested image"
        return Assessment.pending(
            f"edit {', '.join(c.rel for c in changes)} to {why}",
            findings,
            diff,
        )

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        analysis, _ = self._analyse(ctx)
        changes = compose_changes(analysis, ctx.repo)
        for change in changes:
            replace_file(ctx, change.path, change.new)
        message = required_message(self.id, p.message)
        record = commit_change(ctx, [c.rel for c in changes], message)
        where = f"committed {record.commit[:12]}" if record.commit else "staged (--no-commit)"
        return Outcome(
            True,
            f"edited {', '.join(c.rel for c in changes)}; {where}",
            artifacts={"commit": record.commit, "files": [c.rel for c in changes]},
        )


# -- recreate Traefik ---------------------------------------------------------------------


def container_drift(spec: dict[str, Any], service: str, info: ContainerInfo | None) -> list[str]:
    """How the running container differs from its compose definition (empty: in line)."""
    if info is None:
        return ["no container"]
    drift = []
    if not info.running:
        drift.append(f"container {info.name} is {info.status}")
    if spec.get("image") and info.image != str(spec["image"]):
        drift.append(f"runs {info.image}, compose says {spec['image']}")
    wanted_env = environment_of(spec)
    for key in ("DOCKER_API_VERSION",):
        if (key in info.env) != (key in wanted_env):
            drift.append(f"{key} {'set' if key in info.env else 'unset'} in the container")
    args = command_args(spec, service)
    if args and info.cmd != args:
        drift.append("its command differs from the compose file")
    return drift


class RecreateParams(Params):
    services: list[str] = Field(default_factory=list, description="Services for the incident.")


@register
class Recreate(Step[RecreateParams]):
    """Recreate only Traefik when its container does not match the compose file."""

    kind = "traefik.recreate"
    Params = RecreateParams
    needs_confirmation = True

    def services(self, ctx: Context, outcome: Outcome | None = None) -> list[str]:
        return [traefik_service(ctx, ctx.project())]

    def check(self, ctx: Context) -> Assessment:
        service, info, drift = container_drift_now(ctx)
        proj = ctx.project()
        if drift:
            return Assessment.pending(
                f"recreate {service} (project {proj.name}): " + "; ".join(drift),
                [Finding.info("traefik.container_drift", "; ".join(drift), service=service)],
            )
        assert info is not None
        return Assessment.ok(f"{info.name} runs {info.image} as the compose file says")

    def apply(self, ctx: Context) -> Outcome:
        proj = ctx.project()
        service = traefik_service(ctx, proj)
        recreate_traefik(ctx, proj, service)
        return Outcome(True, f"recreated {service} (project {proj.name})")


# -- the provider's health, with the fallbacks --------------------------------------------


class ProviderParams(Params):
    target_image: str | None = Field(
        default=None,
        description="The compose fix's pin target ([traefik] target_image when unset): the "
        "provider is judged only once the fix it implies is in place.",
    )
    settle_s: float = Field(
        default=8.0, description="How long Traefik must run before its logs are judged."
    )
    os_release: str = Field(default="/etc/os-release", description="Distribution facts.")
    daemon_json: str = Field(default="/etc/docker/daemon.json", description="dockerd config.")
    min_api_version: str = Field(
        default="1.24", description="API floor set by the daemon-config fallback."
    )


@register
class ProviderHealth(Step[ProviderParams]):
    """Traefik's docker provider connected: no API-version failure in its logs since the
    recreate. When the pin alone does not clear it, the fallbacks are offered (blocked) and
    run only with --allow-daemon-config or --allow-engine-downgrade plus --yes."""

    kind = "traefik.provider"
    Params = ProviderParams
    needs_confirmation = True

    def confirms(self, ctx: Context) -> bool:
        # Its apply is a host-level fallback, run only under --allow-daemon-config or
        # --allow-engine-downgrade; without them the step only judges.
        return ctx.options.allow_daemon_config or ctx.options.allow_engine_downgrade

    def services(self, ctx: Context, outcome: Outcome | None = None) -> list[str]:
        return [traefik_service(ctx, ctx.project())]

    def _scan(self, ctx: Context) -> tuple[ContainerInfo | None, LogScan, int]:
        """Traefik's container, the scan of its logs since it started, and how many @docker
        routers its API listed (0: none, or not asked)."""
        p = self.params
        proj = ctx.project()
        service = traefik_service(ctx, proj)
        drv = ctx.docker
        info = drv.service_container(proj.name, service)
        if info is None or not info.running:
            return info, LogScan(), 0
        since = ctx.facts.traefik_recreated_at or _parse_started(info.started_at)
        # Let the provider try to connect before judging (a deadline, not a measurement).
        deadline = since + timedelta(seconds=p.settle_s + 1)
        api_url: str | None = None
        next_scan = 0.0
        while True:
            if time.monotonic() >= next_scan:
                result = scan(drv.logs_since(info.id, since))
                next_scan = time.monotonic() + _LOG_SCAN_S
                if result.broken or datetime.now(UTC) >= deadline:
                    return info, result, 0
            # Proof that ends the wait early: routers only the docker provider can have built,
            # from a container list the engine gave it. Without them (no API published, no
            # labelled container) the provider is judged at the deadline, as before.
            api_url = api_url or traefik_ports(ctx).api.url
            left = (deadline - datetime.now(UTC)).total_seconds()
            routers = docker_routers(api_url, min(2.0, max(0.2, left))) if api_url else None
            if routers:
                # Judged on every line logged until now, not on the last scan's.
                return info, scan(drv.logs_since(info.id, since)), len(routers)
            time.sleep(_SETTLE_POLL_S)

    def check(self, ctx: Context) -> Assessment:
        p = self.params
        info, result, routers = self._scan(ctx)
        if info is None or not info.running:
            return Assessment.pending(
                "Traefik is not running yet; its logs are judged after the recreate",
                [Finding.info("traefik.not_running", "no running Traefik container")],
            )
        findings = [
            Finding.warning("traefik.network_not_found", line) for line in result.network_warnings
        ]
        if not result.broken:
            started = " (docker provider started)" if result.started else ""
            if routers:
                plural = "s" if routers != 1 else ""
                started = f" (docker provider connected: {routers} @docker router{plural} listed)"
            return Assessment.ok(f"no provider errors in {info.name}'s logs{started}", findings)
        findings += [Finding.error("traefik.provider_error", line) for line in result.failures[:5]]
        if self._fix_pending(ctx):
            return Assessment.pending(
                "the docker provider fails now; judged again after the fix and the recreate",
                findings,
            )
        if not result.api_version_failure:
            return Assessment.blocked(
                f"Traefik's docker provider fails: {result.failures[0]}", findings
            )
        remedies = self._remedies(ctx, p)
        findings += remedies
        opts = ctx.options
        if opts.allow_daemon_config or opts.allow_engine_downgrade:
            chosen = "daemon-config" if opts.allow_daemon_config else "engine-downgrade"
            return Assessment.pending(
                f"the pin did not clear the API-version failure; fallback {chosen} will run",
                findings,
                diff=self._fallback_text(ctx, p),
            )
        return Assessment.blocked(
            "the pin did not clear the API-version failure "
            f"({result.failures[0][:160]}); remedies: (a) lower the daemon's API floor "
            "(--allow-daemon-config), (b) Docker Engine 28.5.2 (--allow-engine-downgrade); "
            "either with --yes",
            findings,
        )

    def _fix_pending(self, ctx: Context) -> bool:
        """Whether the compose fix or the recreate is still to come: the provider is judged
        after them. Asked here, not read from those steps' checks, so `--only` and a full run
        (where they have been applied by now) judge alike."""
        analysis, _ = analyse_compose(ctx, self.params.target_image)
        if compose_changes(analysis, ctx.repo):
            return True
        _, _, drift = container_drift_now(ctx)
        return bool(drift)

    def _remedies(self, ctx: Context, p: ProviderParams) -> list[Finding]:
        out = [
            Finding.info(
                "docker.remedy_daemon_config",
                "(a) " + daemon_config_text(p.min_api_version, Path(p.daemon_json)),
            )
        ]
        try:
            plan = self._downgrade(ctx, p)
            out.append(
                Finding.info(
                    "docker.remedy_engine_downgrade",
                    f"(b) Docker Engine 28.5.2 for {plan.os.label}:\n{plan.shell_text()}",
                    commands=plan.shell_text().splitlines(),
                )
            )
        except BlockedError as exc:
            out.append(Finding.info("docker.remedy_engine_downgrade", f"(b) {exc}"))
        return out

    def _downgrade(self, ctx: Context, p: ProviderParams) -> DowngradePlan:
        others: dict[str, str | None] = {}
        for name in PACKAGES[2:]:
            rec = ctx.shell.run(["dpkg-query", "-W", "-f=${Version}", name], timeout_s=30)
            others[name] = rec.stdout.strip() if rec.exit_code == 0 and rec.stdout.strip() else None
        return downgrade_plan(read_os_release(Path(p.os_release)), others)

    def _fallback_text(self, ctx: Context, p: ProviderParams) -> str:
        if ctx.options.allow_daemon_config:
            return daemon_config_text(p.min_api_version, Path(p.daemon_json)) + "\n"
        return self._downgrade(ctx, p).shell_text() + "\n"

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        if ctx.options.allow_daemon_config:
            outcome = self._lower_floor(ctx, p)
        else:
            outcome = self._engine_downgrade(ctx, p)
        if ctx.journal is not None:
            ctx.journal.write(
                "fallback_applied", summary=outcome.summary, packages=outcome.packages
            )
        proj = ctx.project()
        ctx.forget_engine()
        recreate_traefik(ctx, proj, traefik_service(ctx, proj))
        return outcome

    def _lower_floor(self, ctx: Context, p: ProviderParams) -> Outcome:
        facts = ctx.engine_facts()
        if facts.major < 29:
            raise BlockedError(
                f"min-api-version in daemon.json needs Docker 29+; this engine is {facts.version}"
            )
        path = Path(p.daemon_json)
        current: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        if path.exists():
            shutil.copy2(path, path.with_name(path.name + ".afasa-ops.bak"))
        current["min-api-version"] = p.min_api_version
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(current, indent=2) + "\n")
        _restart_docker(ctx)
        return Outcome(
            True,
            f'set "min-api-version": "{p.min_api_version}" in {path} and restarted dockerd',
            artifacts={"daemon_json": str(path)},
        )

    def _engine_downgrade(self, ctx: Context, p: ProviderParams) -> Outcome:
        plan = self._downgrade(ctx, p)
        update, madison, install, hold = plan.commands()
        ctx.shell.run(update, timeout_s=600, check=True)
        listed = ctx.shell.run(madison, timeout_s=60, check=True)
        if plan.version not in listed.stdout:
            raise DriverError(
                f"docker-ce {plan.version} is not offered by the configured apt sources",
                hint="add the download.docker.com repository for this distribution",
            )
        ctx.shell.run(install, timeout_s=1800, check=True)
        ctx.shell.run(hold, timeout_s=60, check=True)
        atomic_write(Path(PIN_FILE), PIN_TEXT)
        _restart_docker(ctx)
        installed = ctx.shell.run(
            ["dpkg-query", "-W", "-f=${Package}=${Version}\\n", *PACKAGES], timeout_s=30
        )
        packages = [ln for ln in installed.stdout.splitlines() if ln.strip()]
        packages.append(" ".join(hold))
        packages.append(f"{PIN_FILE}: Pin: version 5:28.5.2-1*")
        return Outcome(
            True, f"Docker Engine 28.5.2 installed and held on {plan.os.label}", packages=packages
        )


def _restart_docker(ctx: Context) -> None:
    if Path("/run/systemd/system").is_dir():
        ctx.shell.run(["systemctl", "restart", "docker"], timeout_s=300, check=True)
    else:
        ctx.shell.run(["service", "docker", "restart"], timeout_s=300, check=True)


def _parse_started(text: str) -> datetime:
    # Docker reports nanoseconds (2026-11-28T22:01:02.123456789Z); seconds are enough.
    try:
        return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC) - timedelta(minutes=5)


# -- routing ------------------------------------------------------------------------------


class RoutingParams(Params):
    routes: list[str] = Field(default_factory=list, description="Extra path prefixes to request.")
    wait_s: float | None = Field(default=None, description="[traefik] wait_s when unset.")


@register
class Routing(Step[RoutingParams]):
    """The Traefik API lists the expected @docker routers; each route answers from its service."""

    kind = "traefik.routing"
    # It only judges (apply waits or probes): a plan lists it as "will run".
    verification_only = True
    Params = RoutingParams
    verification = True

    def services(self, ctx: Context, outcome: Outcome | None = None) -> list[str]:
        return [traefik_service(ctx, ctx.project())]

    def _report(self, ctx: Context) -> tuple[TraefikPorts, RoutingReport | None]:
        """Where Traefik answers, and what it answers there (None: the entrypoint cannot
        be reached from here, so nothing was asked)."""
        p = self.params
        ports = traefik_ports(ctx)
        if ports.entrypoint.url is None:
            return ports, None
        proj = ctx.project()
        configured = [r for s in ctx.settings.services for r in s.routes]
        created = ctx.docker.services_with_containers(proj.name)
        expected = expected_routing(proj, [*configured, *p.routes], created)
        skipped = f"Traefik's API: {ports.api.problem}"
        return ports, check_routing(
            ports.api.url, ports.entrypoint.url, expected, api_skipped=skipped
        )

    def _assess(self, ports: TraefikPorts, report: RoutingReport | None) -> Assessment:
        findings = _endpoint_findings(ports)
        if report is None:
            web = ports.entrypoint
            return Assessment.blocked(
                f"Traefik's web entrypoint cannot be reached ({web.problem}): "
                f"{unpublished_entrypoint_advice(ports)}",
                findings,
            )
        if report.ok:
            shown = ", ".join(f"{p.path} {p.detail}" for p in report.probes)
            if report.api_skipped:
                head = "routers list skipped (the API is not published)"
            else:
                head = f"{len(report.expected.routers)} @docker routers enabled"
                findings.append(Finding.info("traefik.routers", ", ".join(sorted(report.routers))))
            return Assessment.ok(f"{head}; {shown}", findings)
        findings += [Finding.error("traefik.routing", problem) for problem in report.problems()]
        return Assessment.pending(
            "routing is not working: " + "; ".join(report.problems()), findings
        )

    def check(self, ctx: Context) -> Assessment:
        return self._assess(*self._report(ctx))

    def apply(self, ctx: Context) -> Outcome:
        """Wait (up to wait_s) for the routers to appear; verify() then judges."""
        p = self.params
        deadline = time.monotonic() + (p.wait_s or ctx.settings.traefik.wait_s)
        while time.monotonic() < deadline:
            _, report = self._report(ctx)
            if report is None or report.ok:
                break
            time.sleep(_ROUTING_POLL_S)
        return Outcome(False)  # verify's word on the routers is the summary

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        # Anything but ok after the wait fails the step (and writes the incident bundle).
        return self._assess(*self._report(ctx))


def traefik_ports(ctx: Context) -> TraefikPorts:
    """[traefik] api_url/entrypoint_url when set, else the Traefik service's published ports
    in the compose files, else those of its running container."""
    proj = ctx.project()
    service = traefik_service(ctx, proj)
    t = ctx.settings.traefik

    def published() -> dict[str, list[tuple[str, str]]] | None:
        info = ctx.docker.service_container(proj.name, service)
        return info.ports if info is not None and info.running else None

    files = ", ".join(ctx.settings.compose.files)
    return resolve_endpoints(
        proj.services[service],
        service,
        files,
        api_url=t.api_url,
        entrypoint_url=t.entrypoint_url,
        published=published,
    )


def _endpoint_findings(ports: TraefikPorts) -> list[Finding]:
    web, api = ports.entrypoint, ports.api
    findings = [
        Finding.info(
            "traefik.endpoints",
            f"entrypoint {web.url or 'unknown'} ({web.source or web.problem}); "
            f"API {api.url or 'not published'} ({api.source or api.problem})",
            entrypoint_url=web.url,
            api_url=api.url,
        )
    ]
    if api.url is None:
        findings.append(
            Finding.warning(
                "traefik.api_unpublished",
                f"Traefik's API cannot be reached ({api.problem}), so its routers are not "
                "listed: "
                f"{unpublished_api_advice(ports)}; routing is verified through the entrypoint "
                "alone",
                service=ports.service,
            )
        )
    return findings
