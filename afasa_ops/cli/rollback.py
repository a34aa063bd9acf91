from __future__ import annotations

from typing import Annotated, Optional

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption


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
    from afasa_ops.errors import AfasaOpsError, ExitCode
    from afasa_ops.rollback import rollback

    app = app_of(ctx)
    context = app.context()
    # The runbook's `tag` template tells which tag names are pre-audit tags.
    context.params = dict(app.runbook().parameters)
    if not yes and not (
        app.interactive
        and app.confirm("Roll back to the pre-audit tag and recreate changed services?")
    ):
        app.abort(
            "rollback commits the tag's state and recreates containers: re-run with --yes",
            ExitCode.BLOCKED,
        )
    try:
        result = rollback(context, tag)
    except AfasaOpsError as exc:
        app.fail(exc)
    if json:
        app.print_json(result.to_json())
        raise typer.Exit(int(ExitCode.FAILED) if result.recreate_failed else 0)
    out = app.out
    out.print(f"pre-audit tag: {result.tag} ({result.tag_commit[:12]}, found by {result.found_by})")
    out.print(result.message)
    if result.files:
        out.print("files restored: " + ", ".join(result.files))
    if result.services_changed:
        out.print("services changed: " + ", ".join(result.services_changed))
    if result.recreated:
        out.print("recreated: " + ", ".join(result.recreated))
    if result.services_removed:
        out.print(
            "services no longer defined (stop them with `up -d --remove-orphans`): "
            + ", ".join(result.services_removed)
        )
    if result.not_running:
        out.print("changed but not running (left alone): " + ", ".join(result.not_running))
    if result.recreate_skipped:
        out.print(f"containers not recreated: {result.recreate_skipped}")
    if result.recreate_failed:
        raise typer.Exit(int(ExitCode.FAILED))
