"""Phase 3 step kinds `compose.*`: rebuild and boot. `compose pull` (images only), `compose up -d --build`, then wait
until every service is healthy: its compose healthcheck where it has one, else its configured
/readyz over HTTP, else simply running. A service still unhealthy at the deadline fails the
step and is named by services(), so its logs go into the incident bundle.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from afasa_ops.compose import hashes
from afasa_ops.compose.project import ComposeProject
from afasa_ops.errors import DriverError
from afasa_ops.findings import Finding
from afasa_ops.infra.compose import failure_line
from afasa_ops.infra.git import clean_tree_hash
from afasa_ops.infra.shell import last_line
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.step import Params, Step, register

CONFIG_HASH_CACHE = "compose-config-hashes.json"


class ServicesParams(Params):
    services: list[str] = Field(
        default_factory=list,
        description="Compose services; when empty, those a plain `up` starts (profiles applied).",
    )


def _selected(project: ComposeProject, wanted: list[str]) -> list[str]:
    unknown = [s for s in wanted if s not in project.services]
    if unknown:
        raise DriverError(
            f"services {', '.join(unknown)} are not in the compose project "
            f"(it has {', '.join(project.services)})"
        )
    # All of them means what a plain `compose up` starts: a service under a profile that
    # COMPOSE_PROFILES does not enable (the reference stack's stubs) is never started, so
    # never pulled, built or waited for.
    return wanted or list(project.active_services)


# -- pull --------------------------------------------------------------------------------------
@register
class ComposePull(Step[ServicesParams]):
    """Pull the images of services that are not built locally; ok when all are present."""

    kind = "compose.pull"
    Params = ServicesParams

    def _images(self, ctx: Context) -> dict[str, str]:
        p = self.params
        project = ctx.project()
        out = {}
        for name in _selected(project, p.services):
            spec = project.services[name] or {}
            # Build-only services (and built ones that also name an image) are never pulled.
            if spec.get("build") or not spec.get("image"):
                continue
            out[name] = str(spec["image"])
        return out

    def check(self, ctx: Context) -> Assessment:
        images = self._images(ctx)
        if not images:
            return Assessment.skipped("every selected service is built locally: nothing to pull")
        absent = _absent(ctx, images)
        missing = [f"{svc} ({image})" for svc, image in images.items() if image in absent]
        if not missing:
            unique = sorted(set(images.values()))
            return Assessment.ok(f"images present for {len(images)} services: {', '.join(unique)}")
        return Assessment.pending(
            f"images to pull: {', '.join(missing)}",
            [Finding.info("compose.image_missing", m) for m in missing],
        )

    def apply(self, ctx: Context) -> Outcome:
        images = self._images(ctx)
        ctx.say(f"pulling {len(images)} images: {', '.join(images.values())}")
        record = ctx.compose.run("pull", *images, timeout_s=ctx.settings.phase3.pull_timeout_s)
        if record.exit_code != 0:
            raise DriverError(
                f"compose pull exited {record.exit_code}: {last_line(record.stderr or record.stdout)}"
            )
        return Outcome(True, f"pulled {', '.join(images.values())}")

    def services(self, ctx: Context, outcome: Outcome | None = None) -> list[str]:
        return []


def _absent(ctx: Context, images: dict[str, str]) -> set[str]:
    """The images not present locally (the engine's API, one inspect per image)."""
    return {image for image in set(images.values()) if ctx.docker.image_ids([image]) is None}


# -- up ----------------------------------------------------------------------------------------
class UpParams(ServicesParams):
    build: bool = Field(default=True, description="Pass --build: rebuild local images.")


BUILD_STATE = "compose-build.json"


@register
class ComposeUp(Step[UpParams]):
    """`compose up -d --build`, when needed: a service without a running container, one whose
    definition changed (Compose's config hash against the container's label), or a built
    service whose build context changed in git since the last build (or is dirty)."""

    kind = "compose.up"
    Params = UpParams
    # Recreating a production stack's containers: --yes or an interactive confirmation.
    needs_confirmation = True

    def check(self, ctx: Context) -> Assessment:
        p = self.params
        names = _selected(ctx.project(), p.services)
        reasons = self._out_of_date(ctx, names)
        flags = "-d --build" if p.build else "-d"
        if not reasons:
            return Assessment.ok(f"all {len(names)} services up; definitions and builds current")
        return Assessment.pending(
            f"will run `compose up {flags}`: {len(reasons)} service(s) out of date",
            [Finding.info("compose.out_of_date", r) for r in reasons],
        )

    def _out_of_date(self, ctx: Context, names: list[str]) -> list[str]:
        expected = config_hashes(ctx)
        # The list's state and labels are all this needs: no inspect per container.
        containers = ctx.docker.project_listing(ctx.compose.project_name)
        p = self.params
        built = _build_inputs(ctx, names) if p.build else {}
        recorded = _read_build_state(ctx)
        reasons = []
        # Compose's own list of active services (profiles applied) decides what is judged.
        for name in [n for n in names if n in expected]:
            found = containers.get(name)
            if found is None:
                reasons.append(f"{name}: no container")
                continue
            state = found.get("State")
            labels = found.get("Labels") or {}
            if state != "running":
                reasons.append(f"{name}: container is {state}")
            elif labels.get("com.docker.compose.config-hash") != expected[name]:
                reasons.append(f"{name}: service definition changed")
            elif name in built and (built[name] is None or recorded.get(name) != built[name]):
                reasons.append(f"{name}: build context changed since the last build")
        return reasons

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        compose = ctx.compose
        names = _selected(ctx.project(), p.services)
        probe = HealthProbe(ctx)
        before = probe.snapshot(names)
        args = ["up", "-d"] + (["--build"] if p.build else []) + list(p.services)
        ctx.say(f"running compose {' '.join(args)} (project {compose.project_name})")
        record = compose.run(*args, timeout_s=ctx.settings.phase3.up_timeout_s)
        if record.exit_code != 0:
            raise DriverError(f"compose up exited {record.exit_code}: {failure_line(record)}")
        if p.build:
            _write_build_state(ctx, _build_inputs(ctx, names))
        # Remember the hashes of what Compose just converged to, so the next run's check
        # needs no Compose process (the images now exist, so they can be fingerprinted).
        config_hashes(ctx)
        # Changed when a container was created, recreated or (re)started; `--build` prints
        # "Building" even when every layer is cached, so the output says nothing.
        after = probe.snapshot(names)
        moved = sorted(n for n in names if before.get(n) != after.get(n))
        if not moved:
            return Outcome(False, f"all {len(names)} services up to date")
        return Outcome(True, f"created or restarted: {', '.join(moved)}")

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        return Assessment.ok("compose up finished; health is the next step's job")


def config_hashes(ctx: Context) -> dict[str, str]:
    """service -> the config hash Compose labels its container with, remembered between runs
    (compose/hashes.py says when the remembered answer still stands)."""
    return hashes.config_hashes(
        ctx.compose,
        ctx.project(),
        ctx.cache_file(CONFIG_HASH_CACHE),
        ctx.docker,
    )


def _build_inputs(ctx: Context, names: list[str]) -> dict[str, str | None]:
    """service -> git tree hash of its build context at HEAD of the repository holding it
    (None when it has uncommitted changes or is not in git) and a digest of its `build:`
    (args, target, dockerfile: Compose's config hash leaves them out): what decides whether
    a rebuild could change the image."""
    project = ctx.project()
    out: dict[str, str | None] = {}
    trees: dict[Path, str | None] = {}  # services often share one context (three git calls)
    for name in names:
        build = (project.services.get(name) or {}).get("build")
        if build:
            context = build.get("context", ".") if isinstance(build, dict) else str(build)
            folder = (project.directory / context).resolve()
            if folder not in trees:
                trees[folder] = clean_tree_hash(folder)
            tree = trees[folder]
            spec = json.dumps(build, sort_keys=True, default=str).encode()
            out[name] = f"{tree}:{hashlib.sha256(spec).hexdigest()[:16]}" if tree else None
    return out


def _read_build_state(ctx: Context) -> dict[str, str]:
    path = ctx.state_dir / BUILD_STATE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_build_state(ctx: Context, inputs: dict[str, str | None]) -> None:
    known = {k: v for k, v in inputs.items() if v is not None}
    ctx.state_file(BUILD_STATE).write_text(json.dumps({**_read_build_state(ctx), **known}))


# -- wait --------------------------------------------------------------------------------------
@dataclass
class Health:
    service: str
    ok: bool
    state: str  # healthy | running | completed | starting | unhealthy | readyz 503 | missing ...
    how: str  # healthcheck | readyz | running


class WaitParams(ServicesParams):
    timeout_s: float | None = Field(default=None, description="Overrides [phase3] timeout_s.")


@register
class ComposeWait(Step[WaitParams]):
    """Wait for each service to be healthy, with backoff, until the deadline."""

    kind = "compose.wait"
    # It only judges (apply waits or probes): a plan lists it as "will run".
    verification_only = True
    Params = WaitParams
    verification = True

    def check(self, ctx: Context) -> Assessment:
        results = HealthProbe(ctx).round(self._names(ctx))
        waiting = [h for h in results if not h.ok]
        if not waiting:
            # Already converged: the ps summary and the states still go into the report.
            return Assessment.ok(
                f"all {len(results)} services healthy: {_states(results)}",
                _evidence(HealthProbe(ctx).table(), results),
            )
        return Assessment.pending(f"not healthy yet: {_states(waiting)}")

    def _names(self, ctx: Context) -> list[str]:
        p = self.params
        return _selected(ctx.project(), p.services)

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        cfg = ctx.settings.phase3
        timeout_s = p.timeout_s or cfg.timeout_s
        probe = HealthProbe(ctx)
        names = self._names(ctx)
        started = time.monotonic()
        delay = cfg.poll_initial_s
        while True:
            results = probe.round(names)
            waiting = [h for h in results if not h.ok]
            elapsed = time.monotonic() - started
            if not waiting or elapsed >= timeout_s:
                break
            ctx.say(f"waiting {elapsed:.0f}s/{timeout_s:.0f}s: {_states(waiting)}")
            time.sleep(min(delay, max(0.0, timeout_s - elapsed)))
            delay = min(delay * cfg.backoff, cfg.poll_max_s)
        ps = probe.table()
        findings = _evidence(ps, results)
        findings += [
            Finding.error(
                "compose.unhealthy",
                f"{h.service} still {h.state} after {timeout_s:.0f}s ({h.how})",
                service=h.service,
            )
            for h in waiting
        ]
        summary = (
            f"all {len(results)} services healthy after {elapsed:.0f}s: {_states(results)}"
            if not waiting
            else f"still unhealthy after {timeout_s:.0f}s: {_states(waiting)}"
        )
        return Outcome(
            changed=False,
            summary=summary,
            findings=findings,
            artifacts={
                "compose_ps": ps,
                "health": {h.service: f"{h.state} ({h.how})" for h in results},
            },
        )

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        unhealthy = _unhealthy(outcome)
        if unhealthy:
            return Assessment.blocked(f"unhealthy at the deadline: {', '.join(unhealthy)}")
        return Assessment.ok("all services healthy")

    def services(self, ctx: Context, outcome: Outcome | None = None) -> list[str]:
        unhealthy = _unhealthy(outcome) if outcome is not None else []
        if unhealthy:
            return unhealthy
        try:
            return self._names(ctx)
        except Exception:
            return []


def _unhealthy(outcome: Outcome) -> list[str]:
    """The services apply's wait left unhealthy at the deadline."""
    return [str(f.data["service"]) for f in outcome.findings if f.code == "compose.unhealthy"]


def _evidence(ps_output: str, results: list[Health]) -> list[Finding]:
    return [
        Finding.info("compose.ps", ps_output.strip()),
        Finding.info(
            "compose.health",
            _states(results),
            health={h.service: f"{h.state} ({h.how})" for h in results},
        ),
    ]


def _states(results: list[Health]) -> str:
    return ", ".join(f"{h.service} {h.state}" for h in results)


class HealthProbe:
    """One round: the engine's API lists the containers by Compose's labels and inspects them
    (unjournaled: polling is not worth a record per round), and services without a healthcheck
    get a GET of their configured /readyz."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.readyz = {s.name: s.health for s in self.settings.services if s.health}

    def round(self, names: list[str]) -> list[Health]:
        containers = self.containers()
        return [self._health(name, containers.get(name)) for name in names]

    def snapshot(self, names: list[str]) -> dict[str, str]:
        """service -> container id and start time: what `up` changes when it does anything."""
        containers = self.containers()
        out = {}
        for name in names:
            found = containers.get(name)
            state = (found or {}).get("State") or {}
            out[name] = f"{found.get('Id')}@{state.get('StartedAt')}" if found else "none"
        return out

    def table(self) -> str:
        """The stack's containers as `docker ps` shows them. Journaled, unlike the polling:
        it is the step's evidence, and a failed wait's incident names it."""
        return self.ctx.docker_cli.project_table(self.ctx.compose.project_name)

    def containers(self) -> dict[str, dict[str, Any]]:
        """service -> its container's `docker inspect`, from the engine's API (no docker CLI
        process per poll). The containers are found by the labels Compose (v1 and v2) puts
        on them."""
        out: dict[str, dict[str, Any]] = {}
        for item in self.ctx.docker.project_containers(self.ctx.compose.project_name):
            service = ((item.get("Config") or {}).get("Labels") or {}).get(
                "com.docker.compose.service"
            )
            if service:
                out[str(service)] = item
        return out

    def _health(self, name: str, container: dict[str, Any] | None) -> Health:
        if container is None:
            return Health(name, False, "no container", "running")
        state = container.get("State") or {}
        status = str(state.get("Status", "unknown"))
        health = state.get("Health")
        if status == "exited" and state.get("ExitCode") == 0 and not health:
            return Health(name, True, "completed", "running")
        if status != "running":
            return Health(name, False, f"{status} (exit {state.get('ExitCode')})", "running")
        if health:
            current = str(health.get("Status", "unknown"))
            return Health(name, current == "healthy", current, "healthcheck")
        if name in self.readyz:
            return self._readyz(name, container, str(self.readyz[name]))
        return Health(name, True, "running", "running")

    def _readyz(self, name: str, container: dict[str, Any], path: str) -> Health:
        from afasa_ops.infra import http

        url = path if "://" in path else self._container_url(container, path)
        if url is None:
            return Health(name, False, "no container address", "readyz")
        try:
            response = http.request("GET", url, timeout_s=self.settings.phase3.http_timeout_s)
        except http.HttpFailure as exc:
            return Health(name, False, f"readyz {exc.reason}", "readyz")
        return Health(name, response.status_code == 200, f"readyz {response.status_code}", "readyz")

    def _container_url(self, container: dict[str, Any], path: str) -> str | None:
        networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
        for net in networks.values():
            address = (net or {}).get("IPAddress")
            if address:
                port = self.settings.phase3.readyz_port
                return f"http://{address}:{port}{path if path.startswith('/') else '/' + path}"
        return None
