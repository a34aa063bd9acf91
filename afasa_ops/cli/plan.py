from __future__ import annotations

from typing import Annotated

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption, PhasesArg


def command(
    ctx: typer.Context,
    phases: PhasesArg = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Runbook parameter NAME=VALUE, as `run` takes it."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Show what `run` would change, with diffs. Changes nothing. Exit 3 when changes are pending."""
    from afasa_ops.cli.options import parse_params
    from afasa_ops.cli.render_run import finish
    from afasa_ops.commands.plan import plan
    from afasa_ops.runbook.runner import Selection

    app = app_of(ctx)
    context = app.context()
    context.params.update(parse_params(param or []))
    result = plan(app.runbook(), context, Selection(phases or []), app.reporter("checking", json))
    finish(app, result, json)
