"""`afasa-ops daemon start|stop|status`: the user's command server (docs/commands.md)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from afasa_ops.cli.application import app_of
from afasa_ops.cli.options import JsonOption

app = typer.Typer(
    help="A resident process commands are forked from, their imports done (opt-in).",
    no_args_is_help=True,
)


@app.command("start")
def start(
    ctx: typer.Context,
    idle: Annotated[
        float,
        typer.Option("--idle", help="Leave after this many seconds without a command (0: never)."),
    ] = 900.0,
    json: JsonOption = False,
) -> None:
    """Start the command server (or keep the running one); later commands go through it."""
    from afasa_ops.daemon import control

    if idle < 0:
        raise typer.BadParameter(f"--idle {idle}: give seconds, 0 or more", param_hint="--idle")
    _show(ctx, control.start(idle_s=idle), json)


@app.command("stop")
def stop(ctx: typer.Context, json: JsonOption = False) -> None:
    """Stop the command server once the commands it is running have finished."""
    from afasa_ops.daemon import control

    _show(ctx, control.stop(), json)


@app.command("status")
def status(ctx: typer.Context, json: JsonOption = False) -> None:
    """Say whether commands go through a command server, and which."""
    from afasa_ops.daemon import control

    _show(ctx, control.status(), json)


def _show(ctx: typer.Context, state: object, as_json: bool) -> None:
    from afasa_ops.daemon.control import DaemonStatus

    assert isinstance(state, DaemonStatus)
    app = app_of(ctx)

    def render() -> None:
        if not state.running:
            app.say(f"command server: not running ({state.socket})")
        else:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.started_at or 0))
            idle = f"leaves after {state.idle_s:.0f} s idle" if state.idle_s else "never idles out"
            fresh = (
                ""
                if state.fresh
                else "; the installed code changed, it restarts on the next command"
            )
            app.say(
                f"command server: running, pid {state.pid}, since {since}, {idle},"
                f" {state.commands_running} command(s) running{fresh}"
            )
            app.say(f"  socket {state.socket}; log {state.log}")
        if state.note:
            app.say(f"  {state.note}")

    app.emit(as_json, state.to_json, render)
