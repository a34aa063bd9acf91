"""`afasa-ops patch plan|apply BUNDLE`: the operators' patch bundle as grouped commits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption
from afasa_ops.errors import ExitCode

app = typer.Typer(
    name="patch",
    help="Apply the operators' patch bundle (zip or folder) as reviewed, grouped commits.",
    no_args_is_help=True,
)

BundleArg = Annotated[Path, typer.Argument(help="The patched repository copy: a zip or a folder.")]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        "--tag",
        help="Tag or commit to detect conflicts against (default: the newest pre-audit-* tag).",
    ),
]


@app.command("plan")
def plan_command(
    ctx: typer.Context, bundle: BundleArg, since: SinceOption = None, json: JsonOption = False
) -> None:
    """Show each file as added, modified, unchanged or only-in-repo, with diffs and commit
    groups. Changes nothing. Exit 3 when there is something to apply."""
    from afasa_ops.commands.patch import plan_patch

    application = app_of(ctx)
    result = plan_patch(application.context(), application.runbook(), bundle, since)
    from afasa_ops.render.patch import render_plan

    code = ExitCode.PENDING if result.writes else ExitCode.OK
    application.emit(
        json,
        lambda: {**result.to_json(), "exit_code": int(code)},
        lambda: render_plan(result, application.out),
        code,
    )


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    bundle: BundleArg,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply every group without asking.")
    ] = False,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete repo files the bundle does not have.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that conflict with the tag.")
    ] = False,
    no_commit: Annotated[
        bool, typer.Option("--no-commit", help="Stage each group instead of committing it.")
    ] = False,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Proceed with unrelated uncommitted changes.")
    ] = False,
    since: SinceOption = None,
    json: JsonOption = False,
) -> None:
    """Write the bundle's changes and commit each group on the current (fix) branch, showing
    each group's diff first; then verify every applied path byte for byte."""
    from afasa_ops.commands.patch import apply_patch
    from afasa_ops.runbook.context import Options

    application = app_of(ctx)
    context = application.context(Options(yes=yes, no_commit=no_commit, allow_dirty=allow_dirty))
    result = apply_patch(
        context, application.runbook(), bundle, since=since, delete=delete, force=force
    )
    from afasa_ops.render.patch import render_apply

    code = ExitCode.BLOCKED if result.conflicts_skipped else ExitCode.OK
    application.emit(
        json,
        lambda: {**result.to_json(), "exit_code": int(code)},
        lambda: render_apply(result, application.out),
        code,
    )
