from __future__ import annotations

from typing import Annotated

import typer

from afasa_ops.cli.application import app_of


def command(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Listen address (default: the api host setting).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Listen port (default: the api port setting).")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Run the reference AFASA HTTP service (devices, reports, health) on uvicorn."""
    from afasa_ops.commands.serve import serve

    app = app_of(ctx)
    serve(app.settings(), host=host, port=port, log_level=log_level, say=app.say)
