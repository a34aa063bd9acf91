"""`afasa-ops schema status|migrate|verify|sql|baseline`: the database schema, over a connection."""

from __future__ import annotations

from typing import Annotated

import typer

from afasa_ops.cli.application import Application, app_of
from afasa_ops.cli.options import JsonOption
from afasa_ops.errors import AfasaOpsError, ExitCode

app = typer.Typer(
    help="Schema migrations for the AFASA database: ledger, baseline, RLS.",
    no_args_is_help=True,
)


def _settings(app_: Application):  # type: ignore[no-untyped-def]
    from afasa_ops.schema.settings import SchemaSettings

    return SchemaSettings.from_settings(app_.settings())


def _findings(app_: Application, findings: list) -> None:  # type: ignore[type-arg]
    for f in findings:
        app_.say(f"  {f.severity} {f.code}: {f.message}")


@app.command("status")
def status(ctx: typer.Context, json: JsonOption = False) -> None:
    """Applied and pending migrations; exits 3 when some are pending, 4 when blocked."""
    from afasa_ops.schema import service

    app_ = app_of(ctx)
    try:
        report = service.status(_settings(app_))
    except AfasaOpsError as exc:
        app_.fail(exc)
    if json:
        app_.print_json(report.to_json())
    else:
        app_.out.print(f"database {report.database}: {report.state}", markup=False)
        for row in report.applied:
            app_.out.print(
                f"  applied {row['version']:04d}_{row['name']}  {row['applied_at']}  "
                f"by {row['applied_by']}  {row['duration_ms']} ms  sha256 {row['checksum'][:12]}",
                markup=False,
            )
            adopted = row.get("adopted") or []
            if adopted:
                app_.out.print(
                    f"    adopted {len(adopted)} difference(s) from the baseline:", markup=False
                )
            for drift in adopted:
                app_.out.print(f"      {drift['code']}: {drift['message']}", markup=False)
        for name in report.pending:
            app_.out.print(f"  pending {name}", markup=False)
        _findings(app_, report.findings)
        if report.blocked:
            app_.say(f"blocked: {report.blocked}")
    raise typer.Exit(int(report.exit_code))


@app.command("sql")
def sql(ctx: typer.Context) -> None:
    """Print exactly the SQL `migrate` would run; changes nothing."""
    from afasa_ops.redact import redact
    from afasa_ops.schema import service

    app_ = app_of(ctx)
    try:
        text = service.sql(_settings(app_))
    except AfasaOpsError as exc:
        app_.fail(exc)
    typer.echo(redact(text), nl=False)


@app.command("migrate")
def migrate(ctx: typer.Context, json: JsonOption = False) -> None:
    """Apply pending migrations under an advisory lock, then re-apply the app role's grants."""
    from afasa_ops.schema import service

    app_ = app_of(ctx)
    try:
        result = service.migrate(_settings(app_))
    except AfasaOpsError as exc:
        app_.fail(exc)
    if json:
        app_.print_json({"applied": result.applied, "extensions": result.extensions})
    elif result.applied:
        app_.say(f"applied {', '.join(result.applied)}")
    else:
        app_.say("nothing to apply: the database is up to date")


@app.command("verify")
def verify(ctx: typer.Context, json: JsonOption = False) -> None:
    """Every migration applied, unchanged, and its verify query true (a CI gate)."""
    from afasa_ops.schema import service

    app_ = app_of(ctx)
    try:
        report = service.verify(_settings(app_))
    except AfasaOpsError as exc:
        app_.fail(exc)
    if json:
        app_.print_json(report.to_json())
    else:
        _findings(app_, report.findings)
        if report.blocked:
            app_.say(f"blocked: {report.blocked}")
        elif report.pending:
            app_.say(f"pending: {', '.join(report.pending)}")
        elif report.exit_code == ExitCode.OK:
            app_.say(f"database {report.database}: every migration applied and verified")
    raise typer.Exit(int(report.exit_code))


@app.command("baseline")
def baseline(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Only report differences; record nothing.")
    ] = False,
) -> None:
    """Adopt a database made by the AFASA init SQL: check tables and columns, record the baseline."""
    from afasa_ops.schema import service

    app_ = app_of(ctx)
    try:
        report = service.baseline(_settings(app_), record=not check)
    except AfasaOpsError as exc:
        app_.fail(exc)
    _findings(app_, report.findings)
    if report.recorded:
        adopted = f", adopting {len(report.drift)} difference(s)" if report.drift else ""
        app_.say(f"recorded {report.migration.path.name} as the baseline{adopted}")
    elif check and report.blocking:
        app_.say(f"blocked: {report.blocked_reason()}")
        raise typer.Exit(int(ExitCode.BLOCKED))
    elif check and report.drift:
        app_.say(
            f"nothing the later migrations need is missing: baseline would adopt "
            f"{len(report.drift)} difference(s) from {report.migration.path.name}"
        )
    elif check:
        app_.say("the database matches the baseline")
    else:
        app_.say("the baseline was recorded earlier: nothing to do")
