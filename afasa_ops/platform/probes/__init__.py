"""Tell a stubbed AFASA service from a working one by its effects, not by reading its code.

Each probe calls one route through the deployment (usually Traefik) as the checks' tenant and
looks at what changed where a working implementation leaves a trace: the tenant's device rows
after a sync, the device's desired state and a command row after a disable, a 202 and an
`afasa.report.requested` event after a report request. The probes write (that is how effects
are seen), so callers run them only when asked; the sync and disable probes restore what they
changed and say how in the result.
"""

from __future__ import annotations

from collections.abc import Callable

from afasa_ops.errors import AfasaOpsError
from afasa_ops.platform.probes.base import INCONCLUSIVE, Observer, ProbeResult, ProbeTarget
from afasa_ops.platform.probes.device_state import probe_device_state
from afasa_ops.platform.probes.report import probe_report
from afasa_ops.platform.probes.sync import probe_sync
from afasa_ops.redact import redactor

PROBES: dict[str, Callable[[ProbeTarget, Observer], ProbeResult]] = {
    "sync": probe_sync,
    "device_state": probe_device_state,
    "report": probe_report,
}


def run_probe(name: str, target: ProbeTarget) -> ProbeResult:
    """One probe; a driver failure (connection refused, database down) is inconclusive with
    the error as evidence, never an exception."""
    db = Observer(target)
    try:
        return PROBES[name](target, db)
    except AfasaOpsError as exc:
        route = {
            "sync": target.sync_route,
            "device_state": target.disable_route,
            "report": target.generate_route,
        }[name]
        return ProbeResult(name, route, INCONCLUSIVE, [redactor.redact(str(exc))])
    finally:
        db.close()


__all__ = ["PROBES", "ProbeResult", "ProbeTarget", "run_probe"]
