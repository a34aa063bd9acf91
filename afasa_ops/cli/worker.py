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
    from afasa_ops.commands import worker

    raise typer.Exit(worker.report(app_of(ctx).settings(), concurrency=concurrency, port=port))


@app.command("commands")
def commands(
    ctx: typer.Context, concurrency: ConcurrencyOption = None, port: PortOption = None
) -> None:
    """Apply device enable/disable commands to ThingsBoard and record the outcome."""
    from afasa_ops.commands import worker

    raise typer.Exit(worker.commands(app_of(ctx).settings(), concurrency=concurrency, port=port))


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
    from afasa_ops.commands import worker

    a = app_of(ctx)
    code, last = worker.sync(a.settings(), once=once, port=port)
    if once and last is not None:
        if json:
            a.print_json(last.as_dict())
        else:
            from afasa_ops.render.worker import render_sync_pass

            render_sync_pass(last, a.say)
    raise typer.Exit(code)
