from __future__ import annotations

from typing import Annotated

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption, NoCommitOption, PhasesArg, YesOption


def command(
    ctx: typer.Context,
    phases: PhasesArg = None,
    yes: YesOption = False,
    step: Annotated[bool, typer.Option("--step", help="Ask before each step.")] = False,
    from_step: Annotated[str | None, typer.Option("--from", help="Start at this step id.")] = None,
    only: Annotated[str | None, typer.Option("--only", help="Run only this step id.")] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Proceed with uncommitted changes.")
    ] = False,
    no_commit: NoCommitOption = False,
    allow_engine_downgrade: Annotated[
        bool,
        typer.Option("--allow-engine-downgrade", help="Permit fallback B: Docker Engine 28.5.2."),
    ] = False,
    allow_daemon_config: Annotated[
        bool,
        typer.Option("--allow-daemon-config", help="Permit lowering the daemon's min API version."),
    ] = False,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Runbook parameter NAME=VALUE.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Converge the target: check each step, apply what is pending, verify. Journaled."""
    from afasa_ops.cli.options import parse_params
    from afasa_ops.cli.render_run import finish
    from afasa_ops.commands.run import run
    from afasa_ops.runbook.context import Options
    from afasa_ops.runbook.runner import Selection

    app = app_of(ctx)
    options = Options(
        yes=yes,
        step_by_step=step,
        allow_dirty=allow_dirty,
        no_commit=no_commit,
        allow_engine_downgrade=allow_engine_downgrade,
        allow_daemon_config=allow_daemon_config,
    )
    context = app.context(options)
    context.params.update(parse_params(param or []))
    selection = Selection(phases or [], from_step=from_step, only_step=only)
    result = run(app.runbook(), context, selection, app.reporter("running", json))
    finish(app, result, json)
