"""Options shared by several commands, and their parsing."""

from __future__ import annotations

from typing import Annotated

import typer

from afasa_ops.errors import UsageError

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
PhasesArg = Annotated[
    list[str] | None, typer.Argument(help="Phases to include (default: all).", show_default=False)
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Confirm destructive and host-level steps.")
]
NoCommitOption = Annotated[
    bool, typer.Option("--no-commit", help="Stage file changes instead of committing.")
]


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`--param NAME=VALUE` pairs as a dict."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out
