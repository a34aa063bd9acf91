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
    from afasa_ops.commands import status

    app = app_of(ctx)
    result = status(app.context(), limit)
    if json:
        from afasa_ops.render.jsonout import status_document

        app.print_json(status_document(result.runs))
        return
    from rich.table import Table

    table = Table(title="afasa-ops runs")
    for col in ("run", "mode", "status", "phases", "started", "steps"):
        table.add_column(col)
    for r in result.runs:
        done = sum(1 for s in r.steps if s.status.value in ("ok", "changed", "skipped"))
        table.add_row(
            r.run_id, r.mode, r.status, ",".join(r.phases), r.started_at, f"{done}/{len(r.steps)}"
        )
    app.out.print(table)
    if not result.runs:
        app.say("no runs recorded yet")
