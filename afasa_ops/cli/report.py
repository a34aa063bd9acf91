from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from afasa_ops.cli.application import app_of


class Format(str, Enum):
    md = "md"
    json = "json"
    junit = "junit"


def command(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Argument(help="Run id, or `latest` (the default).")] = None,
    format: Annotated[
        Format, typer.Option("--format", "-f", help="md, json or junit.")
    ] = Format.md,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """The summary report of a run: what changed, what was tested, what passed and failed."""
    import json

    from afasa_ops.commands.report import report
    from afasa_ops.redact import redactor

    app = app_of(ctx)
    run = report(app.context(), run_id)
    if format is Format.md:
        from afasa_ops.render.markdown import render_markdown

        text = render_markdown(run)
    elif format is Format.junit:
        from afasa_ops.render.junit import render_junit

        text = render_junit(run)
    else:
        from afasa_ops.render.jsonout import run_document

        text = json.dumps(redactor.redact_obj(run_document(run)), indent=2, default=str) + "\n"
    if output:
        output.write_text(text)
        app.say(f"wrote {output}")
    else:
        typer.echo(text, nl=False)
