from __future__ import annotations

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption, PhasesArg


def command(ctx: typer.Context, phases: PhasesArg = None, json: JsonOption = False) -> None:
    """Show what `run` would change, with diffs. Changes nothing. Exit 3 when changes are pending."""
    from afasa_ops.cli.render_run import finish
    from afasa_ops.commands.plan import plan
    from afasa_ops.runbook.runner import Selection

    app = app_of(ctx)
    result = plan(
        app.runbook(), app.context(), Selection(phases or []), app.reporter("checking", json)
    )
    finish(app, result, json)
