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
    probe_writes: Annotated[
        bool,
        typer.Option(
            "--probe-writes",
            help="Let `services` probe the sync, disable and report routes by their effects "
            "(writes through the API, restores what it changed).",
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Read-only health checks by area; changes nothing."""
    from afasa_ops.cli.render_run import finish
    from afasa_ops.commands.doctor import doctor

    app = app_of(ctx)
    reporter = app.reporter("checking", json)
    result = doctor(app.context(), areas or [], reporter, probe_writes=probe_writes)
    finish(app, result, json)
