"""`afasa-ops doctor`: read-only checks by area, run through the same step contract as a plan.

Each area is a list of (step id, kind, params). Areas are added by the domains that own them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afasa_ops.errors import UsageError
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.loader import Phase, Runbook
from afasa_ops.runbook.model import RunResult
from afasa_ops.runbook.runner import Reporter, Runner, Selection
from afasa_ops.runbook.step import resolve_kind

AREAS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "config": [("config.secrets", "doctor.config", {})],
    "repo": [("repo.layout", "doctor.repo", {})],
    "db": [
        ("db.preflight", "schema.preflight", {}),
        ("db.migrations", "schema.migrate", {}),
        ("db.app_role", "schema.app_role", {}),
        ("db.rls", "schema.rls_audit", {}),
        ("db.init_replay", "schema.init_replay", {}),
    ],
    "tools": [
        ("tools.git", "shell.check", {"argv": ["git", "--version"]}),
        ("tools.docker", "shell.check", {"argv": ["docker", "--version"]}),
    ],
    "docker": [("docker.engine", "docker.engine", {})],
    "traefik": [
        ("traefik.compose", "traefik.compose", {}),
        ("traefik.container", "traefik.recreate", {}),
        ("traefik.provider", "traefik.provider", {"settle_s": 0}),
        ("traefik.routing", "traefik.routing", {}),
    ],
    "api": [("api.config", "api.config", {})],
    "services": [
        ("services.healthy", "compose.wait", {}),
        ("services.stub_sync", "probe.sync", {}),
        ("services.stub_device_state", "probe.device_state", {}),
        ("services.sync_report", "probe.report", {}),
    ],
}
# Probes that write through the deployment's API: they run only with --probe-writes.
WRITE_PROBES = ("probe.sync", "probe.device_state", "probe.report")


def doctor_runbook(areas: list[str], *, probe_writes: bool = False) -> Runbook:
    chosen = areas or list(AREAS)
    unknown = [a for a in chosen if a not in AREAS]
    if unknown:
        raise UsageError(f"unknown doctor area {unknown[0]!r}; areas: {', '.join(AREAS)}")
    phases = []
    for area in chosen:
        phase = Phase(area, f"doctor {area}")
        for step_id, kind, params in AREAS[area]:
            if kind in WRITE_PROBES:
                params = {**params, "writes": probe_writes}
            cls = resolve_kind(kind)
            assert cls is not None, kind
            phase.steps.append(
                cls(f"doctor.{step_id}", area, step_id, cls.Params.model_validate(params))
            )
        phases.append(phase)
    return Runbook("doctor", Path("<doctor>"), phases)


def doctor(
    ctx: Context,
    areas: list[str],
    reporter: Reporter | None = None,
    *,
    probe_writes: bool = False,
) -> RunResult:
    """The chosen areas (all when none) checked as a plan: records nothing, and changes
    nothing unless `probe_writes` lets the service probes write (and restore) through the
    API."""
    runbook = doctor_runbook(areas, probe_writes=probe_writes)
    result = Runner(runbook, ctx, reporter).plan(Selection())
    result.mode = "doctor"
    return result
