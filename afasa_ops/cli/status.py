from __future__ import annotations

from typing import Annotated

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption


def command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many recent runs.")] = 10,
    json: JsonOption = False,
) -> None:
    """Recent runs from the journal, newest first; interrupted runs are marked."""
    from afasa_ops.commands.status import status

    app = app_of(ctx)
    result = status(app.context(), limit)
    if json:
        from afasa_ops.render.jsonout import status_document

        app.print_json(status_document(result.runs))
        return
    from afasa_ops.render.status import render_status

    render_status(result, app.out)
    if not result.runs:
        app.say("no runs recorded yet")
