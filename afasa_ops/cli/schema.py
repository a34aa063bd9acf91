"""`afasa-ops schema status|migrate|verify|sql|baseline`: the database schema, over a connection."""

from __future__ import annotations

from typing import Annotated

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption
from afasa_ops.errors import ExitCode

app = typer.Typer(
    help="Schema migrations for the AFASA database: ledger, baseline, RLS.",
    no_args_is_help=True,
)


@app.command("status")
def status(ctx: typer.Context, json: JsonOption = False) -> None:
    """Applied and pending migrations; exits 3 when some are pending, 4 when blocked."""
    from afasa_ops.commands import schema
    from afasa_ops.render.schema import render_status

    app_ = app_of(ctx)
    report = schema.status(app_.settings())
    app_.emit(
        json, report.to_json, lambda: render_status(report, app_.out, app_.say), report.exit_code
    )


@app.command("sql")
def sql(ctx: typer.Context) -> None:
    """Print exactly the SQL `migrate` would run; changes nothing."""
    from afasa_ops.commands import schema
    from afasa_ops.redact import redact

    typer.echo(redact(schema.sql(app_of(ctx).settings())), nl=False)


@app.command("migrate")
def migrate(ctx: typer.Context, json: JsonOption = False) -> None:
    """Apply pending migrations under an advisory lock, then re-apply the app role's grants."""
    from afasa_ops.commands import schema
    from afasa_ops.render.schema import render_migrate

    app_ = app_of(ctx)
    result = schema.migrate(app_.settings())
    app_.emit(
        json,
        lambda: {"applied": result.applied, "extensions": result.extensions},
        lambda: render_migrate(result, app_.say),
    )


@app.command("verify")
def verify(ctx: typer.Context, json: JsonOption = False) -> None:
    """Every migration applied, unchanged, and its verify query true (a CI gate)."""
    from afasa_ops.commands import schema
    from afasa_ops.render.schema import render_verify

    app_ = app_of(ctx)
    report = schema.verify(app_.settings())
    app_.emit(json, report.to_json, lambda: render_verify(report, app_.say), report.exit_code)


@app.command("baseline")
def baseline(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Only report differences; record nothing.")
    ] = False,
) -> None:
    """Adopt a database made by the AFASA init SQL: check tables and columns, record the baseline."""
    from afasa_ops.commands import schema
    from afasa_ops.render.schema import render_baseline

    app_ = app_of(ctx)
    report = schema.baseline(app_.settings(), record=not check)
    render_baseline(report, check, app_.say)
    if check and not report.recorded and report.blocking:
        raise typer.Exit(int(ExitCode.BLOCKED))
