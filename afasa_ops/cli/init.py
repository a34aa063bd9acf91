from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from afasa_ops.cli.application import app_of


def command(
    ctx: typer.Context,
    repo: Annotated[Path, typer.Argument(help="The AFASA checkout to inspect.")] = Path("."),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Config to write (default: --config or ./afasa-ops.toml)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
) -> None:
    """Inspect an AFASA checkout and write a config describing it."""
    from afasa_ops.commands.init import init

    app = app_of(ctx)
    target = output or app.config_path or Path("afasa-ops.toml")
    result = init(repo, target, force=force)
    app.say(
        f"wrote {target}: project {result.project_name!r} ({result.project_name_source}), "
        f"networks {', '.join(result.networks)}, {len(result.services)} routed services"
    )
    if result.traefik_ports is not None:
        web, api = result.traefik_ports.entrypoint, result.traefik_ports.api
        app.say(
            f"Traefik: entrypoint {web.url or 'derived at run time'}, "
            f"API {api.url or 'derived at run time (' + api.problem + ')'}"
        )
