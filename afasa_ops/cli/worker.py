"""`afasa-ops worker report|sync|commands`: the platform's long-running JetStream workers."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption

app = typer.Typer(
    help="Run a platform worker (report, sync, commands) on NATS JetStream.",
    no_args_is_help=True,
)

ConcurrencyOption = Annotated[
    Optional[int],  # noqa: UP045 - typer reads the annotation at runtime
    typer.Option("--concurrency", "-j", help="Jobs in flight (default: [workers] concurrency)."),
]
PortOption = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--port", help="/healthz and /metrics port (default: [workers] metrics_port)."),
]


@app.command("report")
def report(
    ctx: typer.Context, concurrency: ConcurrencyOption = None, port: PortOption = None
) -> None:
    """Generate requested reports (csv, xlsx, pdf) into storage; mark them ready once."""
    from afasa_ops.extras import require

    require("service", "worker report")
    from afasa_ops.workers.main import run_report

    a = app_of(ctx)
    raise typer.Exit(run_report(a.settings(), concurrency=concurrency, port=port))


@app.command("commands")
def commands(
    ctx: typer.Context, concurrency: ConcurrencyOption = None, port: PortOption = None
) -> None:
    """Apply device enable/disable commands to ThingsBoard and record the outcome."""
    from afasa_ops.extras import require

    require("service", "worker commands")
    from afasa_ops.workers.main import run_commands

    a = app_of(ctx)
    raise typer.Exit(run_commands(a.settings(), concurrency=concurrency, port=port))


@app.command("sync")
def sync(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="One pass over all tenants, then exit.")
    ] = False,
    port: PortOption = None,
    json: JsonOption = False,
) -> None:
    """Sync every tenant's UbiBot channels into devices, on an interval with jitter."""
    from afasa_ops.extras import require

    require("service", "worker sync")
    from afasa_ops.workers.main import run_sync

    a = app_of(ctx)
    code, last = run_sync(a.settings(), once=once, port=port)
    if once and last is not None:
        if json:
            a.print_json(last.as_dict())
        else:
            for t in last.tenants:
                if t.error:
                    a.say(f"tenant {t.tenant_id}: FAILED: {t.error}")
                elif t.counts:
                    c = t.counts
                    a.say(
                        f"tenant {t.tenant_id}: {c.devices_found} channels, {c.inserted} inserted, "
                        f"{c.updated} updated, {c.unchanged} unchanged"
                    )
            if not last.tenants:
                a.say("no tenant has a UbiBot account key")
    raise typer.Exit(code)
