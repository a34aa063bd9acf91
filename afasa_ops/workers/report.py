"""worker report: afasa.report.requested {report_id} -> file in storage -> ready, once."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afasa_ops.platform import events, reconcile, reports
from afasa_ops.platform.availability import STORAGE
from afasa_ops.platform.scratch import prepare_workdir
from afasa_ops.workers.runtime import Job, PermanentError, Runtime, RuntimeOptions, WorkerSpec

if TYPE_CHECKING:
    from sqlalchemy import Engine

PRODUCER = "afasa-ops-worker-report"
log = logging.getLogger("afasa_ops.worker")


# A key that need not exist: a HEAD of it proves the storage answers.
PROBE_KEY = ".afasa-probe"


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
        report = await runtime.in_thread(
            reports.claim, engine, tenant, _report_id(job), count_attempt=not job.resumed
        )
        if report is None:
            raise PermanentError(f"report {_report_id(job)} is not visible to tenant {tenant}")
        if report.status == "ready":
            return  # a duplicate or a redelivery after success: nothing to do
        if report.status == "failed":
            # Decided once, in the database: a late delivery (a raised max_deliver, a replay
            # after a NATS restart) does not reopen it.
            log.info("report already failed for good; delivery ignored", extra=job.log_extra)
            return
        unreadable = reports.unreadable_range(report)
        if unreadable is not None:
            raise PermanentError(unreadable)  # no retry can read it back either
        key = await runtime.in_thread(
            reports.render_to_storage,
            engine,
            report,
            storage,
            scratch,
            runtime.check_abandoned,  # no upload once shutdown has given up on the job
        )
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

    def on_abandon(job: Job) -> None:
        rid = job.envelope.data.get("report_id")
        if rid:
            reports.release(engine, job.envelope.tenant_id, str(rid))

    def sweep(live_since: datetime | None, max_attempts: int) -> tuple[int, int]:
        return reconcile.sweep_all(
            engine,
            reconcile.REPORTS,
            live_since=live_since,
            after_s=options.reconcile_after_s,
            max_attempts=max_attempts,
        )

    def storage_answers() -> None:
        storage.exists(PROBE_KEY)

    spec = WorkerSpec(
        "report",
        events.REPORT_REQUESTED,
        handle,
        on_retry,
        on_dead,
        on_abandon=on_abandon,
        reconcile=sweep,
        probes={STORAGE: storage_answers},
    )
    runtime = Runtime(spec, options, engine)
    return runtime
