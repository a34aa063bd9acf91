"""Step kinds `probe.sync`, `probe.device_state`, `probe.report` (doctor services): is the
service behind a route a stub? Judged by effects (afasa_ops/platform/probes/).

The probes write through the deployment's API (a sync, a disable, a report request), so they
run only with `writes: true` (`afasa-ops doctor services --probe-writes`); otherwise each says
it was skipped and why. A stub is pending (adopting afasa-ops' services fixes it); a probe
that cannot judge is blocked with its evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from afasa_ops.config import require
from afasa_ops.errors import ConfigError
from afasa_ops.findings import Finding
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment
from afasa_ops.runbook.step import Params, ReadOnlyStep, register

if TYPE_CHECKING:
    from afasa_ops.platform.probes import ProbeTarget


class ProbeParams(Params):
    writes: bool = Field(
        default=False,
        description="Run the probe (it writes through the API); false: skipped, saying why.",
    )
    settle_s: float = Field(default=3.0, gt=0, description="How long to watch for an effect.")
    slow_s: float = Field(default=5.0, gt=0, description="probe.report: a slower answer rendered.")
    event_wait_s: float = Field(
        default=10.0, gt=0, description="probe.report: how long to wait for the event."
    )


class _Probe(ReadOnlyStep[ProbeParams]):
    Params = ProbeParams
    # Its check is the probe: pending means a stub was found, a problem to fix (exit 3),
    # not a verification the run will get to.
    verification_only: ClassVar[bool] = False
    probe: ClassVar[str] = ""
    code: ClassVar[str] = ""
    # What the probe writes, for the skip message.
    writes_what: ClassVar[str] = ""

    def check(self, ctx: Context) -> Assessment:
        from afasa_ops.platform.probes import run_probe

        if not self.params.writes:
            return Assessment.skipped(f"it {self.writes_what}: run only with --probe-writes")
        try:
            target = _target(ctx, self.params)
        except ConfigError as exc:
            return Assessment.blocked(
                exc.message, [Finding.error("service.probe_config", exc.message)]
            )
        result = run_probe(self.probe, target)
        data = {"route": result.route, "evidence": result.evidence, "restored": result.restored}
        evidence = "; ".join(result.evidence)
        restored = f" Restored: {'; '.join(result.restored)}." if result.restored else ""
        if result.stub:
            message = f"{result.route} is a stub: {evidence}.{restored}"
            return Assessment.pending(message, [Finding.error(self.code, message, **data)])
        if result.verdict == "working":
            message = f"{result.route} works: {evidence}.{restored}"
            return Assessment.ok(message, [Finding.info("service.working", message, **data)])
        message = f"{result.route}: cannot judge: {evidence}.{restored}"
        return Assessment.blocked(
            message, [Finding.warning("service.probe_inconclusive", message, **data)]
        )


def _target(ctx: Context, params: ProbeParams) -> ProbeTarget:
    from afasa_ops.infra.postgres import Timeouts
    from afasa_ops.platform.probes import ProbeTarget
    from afasa_ops.steps.check import resolve_token

    settings = ctx.settings
    checks = settings.checks
    return ProbeTarget(
        base_url=checks.base_url,
        token=resolve_token(settings),
        tenant_id=checks.tenant_id,
        admin_dsn=require(settings, "database", "admin_dsn", "the probes read what changed"),
        nats_url=settings.nats.url,
        sync_route=checks.sync_route,
        disable_route=checks.disable_route,
        enable_route=checks.enable_route,
        generate_route=checks.generate_route,
        http_timeout_s=checks.http_timeout_s,
        db_timeouts=Timeouts.of(settings.database),
        settle_s=params.settle_s,
        slow_s=params.slow_s,
        event_wait_s=params.event_wait_s,
    )


@register
class ProbeSync(_Probe):
    """Does the UbiBot sync save anything? A 2xx that leaves the tenant's devices as they
    were is a stub. Restores: deletes the rows it inserted, puts updated rows back."""

    kind = "probe.sync"
    probe = "sync"
    code = "service.stub_sync"
    writes_what = "POSTs the UbiBot sync, which upserts the tenant's devices"


@register
class ProbeDeviceState(_Probe):
    """Does disable record anything? A 2xx with no change of desired_enabled and no command
    row is a stub. Restores: switches the device back through the opposite route."""

    kind = "probe.device_state"
    probe = "device_state"
    code = "service.stub_device_state"
    writes_what = "disables (or enables) one of the tenant's devices, then switches it back"


@register
class ProbeReport(_Probe):
    """Is report generation asynchronous? 200 instead of 202, a slow answer, or no
    afasa.report.requested event is a synchronous (stub) report service."""

    kind = "probe.report"
    probe = "report"
    code = "service.sync_report"
    writes_what = "requests a daily csv report for the tenant"
