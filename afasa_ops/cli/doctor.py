from __future__ import annotations

from typing import Annotated

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption


def command(
    ctx: typer.Context,
    areas: Annotated[
        list[str] | None, typer.Argument(help="Areas to check (default: all).", show_default=False)
    ] = None,
    json: JsonOption = False,
) -> None:
    """Read-only health checks by area; changes nothing."""
    from afasa_ops.cli.render_run import finish
    from afasa_ops.commands import plan
    from afasa_ops.doctor import doctor_runbook
    from afasa_ops.runbook.runner import Selection

    app = app_of(ctx)
    runbook = doctor_runbook(areas or [])
    result = plan(runbook, app.context(), Selection(), app.reporter("checking", json))
    result.mode = "doctor"
    finish(app, result, json)
