"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
PhasesArg = Annotated[
    list[str] | None, typer.Argument(help="Phases to include (default: all).", show_default=False)
]
