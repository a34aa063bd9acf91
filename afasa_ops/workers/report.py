"""worker report: afasa.report.requested {report_id} -> file in storage -> ready, once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from afasa_ops.platform import events, reports
from afasa_ops.platform.scratch import prepare_workdir
from afasa_ops.workers.runtime import Job, PermanentError, Runtime, RuntimeOptions, WorkerSpec

if TYPE_CHECKING:
    from sqlalchemy import Engine

PRODUCER = "afasa-ops-worker-report"


def _report_id(job: Job) -> str:
    rid = job.envelope.data.get("report_id")
    if not rid:
        raise PermanentError("event data has no report_id")
    return str(rid)


def build(
    options: RuntimeOptions, engine: Engine, storage: Any, workdir: Path | None = None
) -> Runtime:
    # Private (0700, ours), and swept of what dead workers left, before the first job.
    scratch = prepare_workdir(workdir)
    runtime: Runtime

    async def handle(job: Job) -> None:
        tenant = job.envelope.tenant_id
        report = await runtime.in_thread(reports.claim, engine, tenant, _report_id(job))
        if report is None:
            raise PermanentError(f"report {_report_id(job)} is not visible to tenant {tenant}")
        if report.status == "ready":
            return  # a duplicate or a redelivery after success: nothing to do
        unreadable = reports.unreadable_range(report)
        if unreadable is not None:
            raise PermanentError(unreadable)  # no retry can read it back either
        key = await runtime.in_thread(reports.render_to_storage, engine, report, storage, scratch)
        await runtime.in_thread(reports.mark_ready, engine, tenant, report, key, PRODUCER)

    async def on_retry(job: Job, error: str) -> None:
        rid = job.envelope.data.get("report_id")
        if rid:
            await runtime.in_thread(
                reports.record_failure, engine, job.envelope.tenant_id, str(rid), error, final=False
            )

    async def on_dead(job: Job, error: str) -> None:
        rid = job.envelope.data.get("report_id")
        if rid:
            await runtime.in_thread(
                reports.record_failure, engine, job.envelope.tenant_id, str(rid), error, final=True
            )

    spec = WorkerSpec("report", events.REPORT_REQUESTED, handle, on_retry, on_dead)
    runtime = Runtime(spec, options, engine)
    return runtime
