"""worker commands: afasa.device.command.requested -> ThingsBoard shared attribute `enabled`
-> reported state, command status, audit row and completed event, once."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from afasa_ops.platform import devices, events, reconcile
from afasa_ops.platform.thingsboard import ThingsboardClient, ThingsboardError
from afasa_ops.workers.runtime import Job, PermanentError, Runtime, RuntimeOptions, WorkerSpec

if TYPE_CHECKING:
    from sqlalchemy import Engine

PRODUCER = "afasa-ops-worker-commands"
NO_MAPPING = "device has no ThingsBoard mapping; recorded locally, not applied remotely"


def build(options: RuntimeOptions, engine: Engine, tb: ThingsboardClient | None) -> Runtime:
    runtime: Runtime

    def finish(job: Job, command_id: str, **kw: object) -> bool:
        return devices.finish_command(
            engine,
            job.envelope.tenant_id,
            command_id,
            producer=PRODUCER,
            **kw,  # type: ignore[arg-type]
        )

    async def handle(job: Job) -> None:
        tenant = job.envelope.tenant_id
        command_id = job.envelope.data.get("command_id")
        if not command_id:
            raise PermanentError("event data has no command_id")
        target = await runtime.in_thread(devices.command_target, engine, tenant, str(command_id))
        if target is None:
            raise PermanentError(f"command {command_id} is not visible to tenant {tenant}")
        if target.command.status != "requested":
            return  # already finished by an earlier delivery
        enabled = target.command.command == "enable"
        tb_id = target.device.thingsboard_id
        if not tb_id:
            await runtime.in_thread(
                finish,
                job,
                str(command_id),
                status="completed",
                result={"applied": "local", "remote": False, "reason": NO_MAPPING},
            )
            return
        if tb is None:
            raise PermanentError("ThingsBoard is not configured ([thingsboard] base_url)")
        try:
            await runtime.in_thread(tb.set_shared_attributes, tb_id, {"enabled": enabled})
        except ThingsboardError as exc:
            if exc.retryable:
                raise  # the runtime retries, then fails it on the last delivery
            raise PermanentError(exc.message) from None
        await runtime.in_thread(
            finish,
            job,
            str(command_id),
            status="completed",
            result={
                "applied": "remote",
                "remote": True,
                "thingsboard_id": tb_id,
                "attribute": {"enabled": enabled},
            },
            reported_enabled=enabled,
        )

    async def on_dead(job: Job, error: str) -> None:
        command_id = job.envelope.data.get("command_id")
        if command_id:
            await runtime.in_thread(
                finish,
                job,
                str(command_id),
                status="failed",
                result={"applied": "none", "remote": False},
                error=error,
            )

    def sweep(live_since: datetime | None, max_attempts: int) -> tuple[int, int]:
        return reconcile.sweep_all(
            engine,
            reconcile.COMMANDS,
            live_since=live_since,
            after_s=options.reconcile_after_s,
            max_attempts=max_attempts,
        )

    spec = WorkerSpec(
        "commands", events.DEVICE_COMMAND_REQUESTED, handle, None, on_dead, reconcile=sweep
    )
    runtime = Runtime(spec, options, engine)
    return runtime
