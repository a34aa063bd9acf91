"""The afasa-ops command line. One module per command; each is thin: parse, call, render.

Errors take one path whether the CLI runs as a program (`main()`) or under Typer's test
runner: the root group turns an AfasaOpsError into `error: ...` on stderr and its exit code,
and an unexpected exception into one line (its traceback with --verbose).
"""

from __future__ import annotations

import functools
import gc
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer
from typer.core import TyperGroup

from afasa_ops import __version__
from afasa_ops.cli import daemon, doctor, init, plan, report, run, serve, status, worker
from afasa_ops.cli import patch as patch_cli
from afasa_ops.cli import rollback as rollback_cmd
from afasa_ops.cli import schema as schema_cli
from afasa_ops.cli.application import Application
from afasa_ops.errors import AfasaOpsError, ExitCode


class _Root(TyperGroup):
    """The root command group: the one place errors become messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except AfasaOpsError as exc:
            raise typer.Exit(_report(ctx, exc)) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(int(ExitCode.FAILED)) from None
        except Exception as exc:
            raise typer.Exit(_report(ctx, exc)) from None


def _report(ctx: click.Context, exc: BaseException) -> int:
    from afasa_ops.errors import describe_error
    from afasa_ops.redact import redact

    obj = ctx.find_root().obj
    verbose = isinstance(obj, Application) and obj.verbose
    text, code = describe_error(exc, verbose=verbose)
    typer.echo(redact(text), err=True)
    return code


app = typer.Typer(
    name="afasa-ops",
    cls=_Root,
    help="The AFASA 2.0 repair runbook as software: check, plan, apply and verify, with a journal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain click help: rich's help renderer costs more start-up time than all of afasa-ops.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"afasa-ops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Optional[Path],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Option(
            "--config", "-c", help="Config file (default: ./afasa-ops.toml or $AFASA_OPS_CONFIG)."
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="On errors, show the chain of causes (and tracebacks)."
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if ctx.invoked_subcommand in RESIDENT_COMMANDS:
        gc.enable()  # main() turned it off for a short command; these run for days
    ctx.obj = Application(config_path=config, verbose=verbose)


# Commands that run until stopped: the cyclic garbage collector stays on for them.
RESIDENT_COMMANDS = frozenset({"serve", "worker"})


app.command("init")(init.command)
app.command("doctor")(doctor.command)
app.command("plan")(plan.command)
app.command("run")(run.command)
app.command("status")(status.command)
app.command("report")(report.command)
app.command("serve")(serve.command)
app.add_typer(schema_cli.app, name="schema")
app.add_typer(patch_cli.app, name="patch")
app.command("rollback")(rollback_cmd.command)
app.add_typer(worker.app, name="worker")
app.add_typer(daemon.app, name="daemon")


def main() -> None:
    """The program. A command is short-lived and leaves little cyclic garbage, while the
    collector's passes over the objects of the modules it imports, and the last one at exit,
    cost about a tenth of a converged run (docs/reference-stack.md): it runs without them,
    except the resident commands (serve, worker)."""
    gc.disable()
    try:
        command()()
    finally:
        gc.freeze()  # exit without a last pass over every object


@functools.cache
def command() -> click.Command:
    """The click command typer builds from `app`: what `app()` runs, built once per process
    (about 40 ms), so that the command server builds it before it forks (afasa_ops/daemon).
    `app()` would also install typer's exception hook, which only prettifies tracebacks, and
    pretty_exceptions_enable is off."""
    return typer.main.get_command(app)
