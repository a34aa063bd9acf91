from __future__ import annotations

from typing import Annotated, Optional

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption
from afasa_ops.errors import BlockedError, ExitCode


def command(
    ctx: typer.Context,
    tag: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Option("--tag", help="Pre-audit tag (default: from the journal, then pre-audit-*)."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before committing and recreating.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Restore the pre-audit tag's state as a new commit; recreate services that changed."""
    from afasa_ops.commands.rollback import rollback

    app = app_of(ctx)
    context = app.context()
    # The runbook's `tag` template tells which tag names are pre-audit tags.
    context.params = dict(app.runbook().parameters)
    if not yes and not (
        app.interactive
        and app.confirm("Roll back to the pre-audit tag and recreate changed services?")
    ):
        raise BlockedError(
            "rollback commits the tag's state and recreates containers: re-run with --yes"
        )
    from afasa_ops.render.rollback import render_rollback

    result = rollback(context, tag)
    code = ExitCode.FAILED if result.recreate_failed else ExitCode.OK
    app.emit(json, result.to_json, lambda: render_rollback(result, app.out), code)
